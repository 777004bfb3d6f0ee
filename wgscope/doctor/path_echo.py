"""Proving the whole path at full size: a ping through the tunnel, and its reply.

After a completed probe handshake, the probe's own Device sends ICMP echo requests through
the session to an address inside the peer's AllowedIPs: first a small one (does that address
answer pings through the tunnel at all?), then one exactly the interface MTU long, so its
WireGuard datagram is MTU + 60 (IPv4) or + 80 (IPv6) bytes on the wire, with Don't Fragment.
An echo reply the same size coming back proves the whole path, both ways, at that size;
a small reply without the large one proves large datagrams die somewhere along it, even when
no router said so (a path MTU black hole).
"""

from __future__ import annotations

import ipaddress
import select
import time

from ..protocol.actions import SendDatagram, WritePacket
from ..runtime.packets import echo, summarize

IDENT = 0x7764  # "wd": echo identifier of doctor's pings
HEADER = {4: 20 + 8, 6: 40 + 8}  # inner IP + ICMP echo header


def echo_through_tunnel(probe, destination: str, size: int, seq: int, timeout: float) -> dict:
    """Send one echo request of total length `size` to `destination` through `probe`'s session;
    wait up to `timeout` seconds for the echo reply. Returns what happened, measured."""
    version = ipaddress.ip_address(destination).version
    source = probe.inner_source or ("10.255.255.254" if version == 4 else "fd00::1")
    payload = bytes(max(0, size - HEADER[version]))
    request = echo(source, destination, seq, IDENT, payload)
    report = {"destination": destination, "size": len(request), "reply": False, "rtt": None}
    start = time.monotonic()
    actions = probe.device.send_packet(request, probe.clock.now())
    if not any(isinstance(a, SendDatagram) for a in actions):
        report["error"] = "the packet could not be sent through the session"
        return report
    report["outer_size"] = max(len(a.data) for a in actions if isinstance(a, SendDatagram)) + (28 if version == 4
                                                                                             else 48)
    try:
        probe._send(actions)
    except OSError as e:
        report["error"] = e.strerror or str(e)
        return report
    deadline = start + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([probe.sock], [], [], left)
        if not ready:
            break
        try:
            data, src = probe.sock.recvfrom(65535)
        except OSError as e:
            report["error"] = e.strerror or str(e)
            continue
        out = probe.device.receive_datagram(data, (src[0], src[1]), probe.clock.now())
        probe._send([a for a in out if isinstance(a, SendDatagram)])
        for a in out:
            if isinstance(a, WritePacket):
                s = summarize(a.packet)
                if s.get("icmp") == "echo_reply" and s.get("seq") == seq and s.get("src") == destination:
                    report.update(reply=True, rtt=time.monotonic() - start, reply_size=len(a.packet))
                    return report
    return report


def check_whole_path(probe, timeout: float) -> dict:
    """A small ping, then a full-size one, through the tunnel. See the module docstring."""
    dst = probe.inner_destination
    small = echo_through_tunnel(probe, dst, 84 if ":" not in dst else 104, seq=1, timeout=timeout)
    result = {"small": small, "full": None}
    if small["reply"]:
        result["full"] = echo_through_tunnel(probe, dst, probe.mtu, seq=2, timeout=timeout)
    return result
