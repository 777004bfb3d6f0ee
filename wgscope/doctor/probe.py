"""An active handshake probe: one real Noise_IKpsk2 initiation with the config's own identity.

A plain UDP socket on an ephemeral port, connected to the peer's endpoint (so an ICMP port
unreachable comes back as ECONNREFUSED), and a wgscope Device driven by hand: we send the
initiation, feed every datagram that comes back to `receive_datagram`, and read the verdict
from the events the core emits (EventRecorder on the bus). The core already knows every
way a handshake can fail; the probe only has to listen.

Outcomes (ProbeResult.outcome):
  handshake_ok           the response authenticated; rtt measured
  psk_mismatch           a response came but did not decrypt (handshake_response_rejected
                         reason=decryption_failed: the pre-shared keys differ)
  under_load_ok          a cookie reply came (peer under load); the retry with mac2 completed
  under_load_failed      a cookie reply came, but the retry with mac2 did not complete
  port_unreachable       ICMP port unreachable: nothing listens on that UDP port
  host_unreachable       ICMP host/network unreachable, or no route
  silence                nothing at all came back before the timeout
  endpoint_unresolved    the endpoint name does not resolve
  no_endpoint            the peer has no Endpoint to probe
  unexpected             something else came back (details in evidence)
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import time
from dataclasses import dataclass, field

from ..config import EndpointError, resolve_address
from ..events import DEBUG, EventBus, EventRecorder
from ..plural import counted
from ..protocol.actions import SendDatagram
from ..protocol.device import Device
from ..protocol.endpoint import endpoint_text

# Linux socket options Python does not name (linux/in.h, linux/in6.h).
IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU = 10, 2, 14
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_MTU = 23, 2, 24

# Outer overhead of a transport data message: IP + UDP (8) + WireGuard header 16 + tag 16 (WP §5.4.6).
WIREGUARD_OVERHEAD = 32
OUTER_OVERHEAD = {4: 20 + 8 + WIREGUARD_OVERHEAD, 6: 40 + 8 + WIREGUARD_OVERHEAD}


@dataclass
class ProbeResult:
    outcome: str
    endpoint: str | None = None  # host:port as probed
    rtt: float | None = None  # seconds, initiation to authenticated response
    initiations: int = 0
    cookie_replies: int = 0
    evidence: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    path_mtu: dict | None = None  # full-size packet check after a handshake, when asked

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "endpoint": self.endpoint, "rtt": self.rtt,
                "initiations": self.initiations, "cookie_replies": self.cookie_replies,
                "evidence": self.evidence, "path_mtu": self.path_mtu, "events": self.events}


class _Clock:
    """The protocol clock for the probe's Device: seconds since the probe started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def wall_offset(self) -> float:
        return time.time() - self.now()


class HandshakeProbe:
    def __init__(self, private_key: bytes, peer_public: bytes, preshared_key: bytes | None,
                 endpoint: tuple[str, int] | None, *, timeout: float = 3.0, mtu: int | None = None,
                 inner_source: str | None = None, inner_destination: str | None = None,
                 allowed_ips: list | None = None) -> None:
        self.private_key = private_key
        self.peer_public = peer_public
        self.preshared_key = preshared_key
        self.endpoint = endpoint
        self.timeout = timeout
        self.mtu = mtu
        self.inner_source = inner_source
        self.inner_destination = inner_destination
        self.allowed_ips = allowed_ips or []

    # ---------------------------------------------------------------- driving the core
    def _send(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, SendDatagram):
                self.sock.send(action.data)

    def _initiate(self) -> None:
        """One initiation, via the core's own send path (so mac1/mac2 and events are the real ones).
        A retry must not wait REKEY_TIMEOUT (the timers' one initiation per 5 s, WP §6.1): forced."""
        actions = self.device.force_handshake(self.peer, self.clock.now())
        sent = [a for a in actions if isinstance(a, SendDatagram)]
        self.result.initiations += len(sent)
        self._send(actions)

    def _seen(self, name: str, **match) -> list:
        return [e for e in self.recorder.of(name) if all(e.fields.get(k) == v for k, v in match.items())]

    # ---------------------------------------------------------------- the probe
    def run(self) -> ProbeResult:
        if self.endpoint is None:
            return ProbeResult("no_endpoint", evidence=["the peer has no Endpoint = line; it can only be reached "
                                                        "after it contacts us"])
        host, port = self.endpoint
        shown = endpoint_text((host, port))
        try:
            family, addr = resolve_address(host, port)  # as `wgscope up` resolves it
        except EndpointError:
            return ProbeResult("endpoint_unresolved", shown, evidence=[f"{host} does not resolve"])
        self.result = result = ProbeResult("silence", shown)
        self.clock = _Clock()
        self.recorder = EventRecorder()
        bus = EventBus(DEBUG)
        bus.subscribe(self.recorder, DEBUG)
        self.device = Device(self.private_key, bus=bus, wall_offset=self.clock.wall_offset(),
                             mtu=self.mtu or 1420, name="doctor-probe")
        peer_addr = (addr[0], addr[1])
        self.peer = self.device.add_peer(self.peer_public, preshared_key=self.preshared_key, endpoint=peer_addr,
                                         allowed_ips=self.allowed_ips, now=self.clock.now())
        if addr[0] != host:
            result.evidence.append(f"{host} resolves to {addr[0]}")
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            try:
                self.sock.connect(addr)  # connected: ICMP errors come back as ECONNREFUSED / EHOSTUNREACH
            except OSError as e:  # no route to the endpoint (ENETUNREACH) is a finding, not a crash
                if not self._icmp_error(e):
                    raise
            else:
                result.evidence.append(f"probing from UDP port {self.sock.getsockname()[1]}")
                self._loop()
            if result.outcome in ("handshake_ok", "under_load_ok") and self.mtu and self.inner_destination:
                result.path_mtu = self._check_path_mtu(family)
                if result.path_mtu.get("fits") is not False:  # the first hop takes it: now the whole path
                    from .path_echo import check_whole_path

                    result.path_mtu["echo"] = check_whole_path(self, timeout=max(1.0, min(3.0, self.timeout)))
        finally:
            self.sock.close()
        result.events = [e.as_dict() for e in self.recorder.events]
        return result

    def _loop(self) -> None:
        """Initiate, retry every third of the time limit (one lost datagram must not read as
        silence), and read answers until one settles the outcome or the time is up."""
        deadline = time.monotonic() + self.timeout
        self._retry_every = max(0.3, self.timeout / 3)
        self._next_initiation = time.monotonic()
        self._cookie_retry_done = False
        while (mono := time.monotonic()) < deadline:
            if mono >= self._next_initiation:
                try:
                    self._initiate()
                except OSError as e:
                    if self._icmp_error(e):
                        return
                    raise
                self._next_initiation = mono + self._retry_every
            wait = max(0.0, min(deadline, self._next_initiation) - time.monotonic())
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                continue
            try:
                data, src = self.sock.recvfrom(65535)
            except OSError as e:
                if self._icmp_error(e):
                    return
                raise
            self._send(self.device.receive_datagram(data, (src[0], src[1]), self.clock.now()))
            if self._settled():
                return
        self._out_of_time()

    def _settled(self) -> bool:
        """Whether what the core made of the last answer decides the outcome (a cookie reply
        is retried at once with mac2 instead)."""
        result = self.result
        if self._seen("handshake_completed"):
            completed = self._seen("handshake_completed")[0]
            result.rtt = completed.fields.get("rtt")
            result.outcome = "under_load_ok" if result.cookie_replies else "handshake_ok"
            result.evidence.append(f"the response authenticated; handshake round trip "
                                   f"{result.rtt * 1000:.1f} ms" if result.rtt is not None
                                   else "the response authenticated")
            return True
        if self._seen("handshake_response_rejected", reason="decryption_failed"):
            result.outcome = "psk_mismatch"
            result.evidence.append("a handshake response came back from the peer but did not authenticate "
                                   "(handshake_response_rejected reason=decryption_failed)")
            return True
        cookies = self._seen("cookie_reply_received")
        if len(cookies) > result.cookie_replies:
            result.cookie_replies = len(cookies)
            if self._cookie_retry_done:
                result.outcome = "under_load_failed"
                result.evidence.append("the retry carried mac2 from the cookie, yet the peer answered with "
                                       "another cookie reply")
                return True
            result.evidence.append("the peer answered with a cookie reply: it is under load and wants mac2")
            self._cookie_retry_done = True
            self._initiate()
            if not self._seen("cookie_used"):
                result.evidence.append("(the retry did not carry mac2)")
            result.evidence.append("retried at once with mac2 set from the cookie")
            self._next_initiation = time.monotonic() + self._retry_every
            return False
        rejected = [e for e in self.recorder.events if e.name.endswith("_rejected") or e.name == "packet_dropped"]
        if rejected:
            last = rejected[-1]
            if last.fields.get("reason") in ("unknown_index",):
                return False  # a late answer to an earlier attempt of ours
            result.outcome = "unexpected"
            result.evidence.append(f"{last.name} reason={last.fields.get('reason')}")
            return True
        return False

    def _out_of_time(self) -> None:
        result = self.result
        if result.cookie_replies and result.outcome == "silence":
            result.outcome = "under_load_failed"
            result.evidence.append("after the cookie reply, the retry with mac2 got no answer")
        elif result.outcome == "silence":
            result.evidence.append(f"{counted(result.initiations, 'initiation')} sent over {self.timeout:g} s, "
                                   "nothing came back")

    def _icmp_error(self, e: OSError) -> bool:
        result = self.result
        if e.errno == errno.ECONNREFUSED:
            result.outcome = "port_unreachable"
            result.evidence.append(f"ICMP port unreachable from {result.endpoint} (ECONNREFUSED)")
            return True
        if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL):
            result.outcome = "host_unreachable"
            result.evidence.append(f"{result.endpoint}: {e.strerror} ({errno.errorcode.get(e.errno, e.errno)})")
            return True
        return False

    # ---------------------------------------------------------------- path MTU
    def _check_path_mtu(self, family: int) -> dict:
        """Send one full-size transport message with Don't Fragment set; see whether the path takes it.

        The inner packet is UDP to the discard port (9) of an address the peer routes to, padded
        to the interface MTU, so the outer datagram is exactly MTU + overhead."""
        from ..runtime.packets import udp

        version = 6 if family == socket.AF_INET6 else 4
        outer = self.mtu + OUTER_OVERHEAD[version]
        level, opt, do, mtu_opt = ((socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO, IPV6_MTU)
                                   if version == 6 else (socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO, IP_MTU))
        report = {"interface_mtu": self.mtu, "outer_size": outer, "path_mtu": None, "fits": None}
        try:
            self.sock.setsockopt(level, opt, do)
        except OSError:
            return report
        src = self.inner_source or ("10.255.255.254" if ":" not in self.inner_destination else "fd00::1")
        inner_header = 28 if ":" not in self.inner_destination else 48
        packet = udp(src, 9, self.inner_destination, 9, bytes(max(0, self.mtu - inner_header)))
        self.device.set_allowed_ips(self.peer, [ipaddress.ip_network(self.inner_destination)], replace=False)
        for attempt in range(3):
            actions = self.device.send_packet(packet, self.clock.now())
            if not any(isinstance(a, SendDatagram) for a in actions):
                report["error"] = "the full-size packet could not be sent through the session"
                return report
            report["sent"] = attempt + 1
            try:
                self._send(actions)
            except OSError as e:
                if e.errno == errno.EMSGSIZE:
                    report["fits"] = False
                    report["error"] = "EMSGSIZE"
                else:
                    report["error"] = e.strerror
            # an ICMP "fragmentation needed" from a router further along arrives a moment later
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if ready:
                try:
                    self.sock.recv(65535)
                except OSError as e:
                    if e.errno == errno.EMSGSIZE:
                        report["fits"] = False
            try:
                report["path_mtu"] = self.sock.getsockopt(level, mtu_opt)
            except OSError:
                pass
            if report["fits"] is False:
                break
        if report["path_mtu"] is not None and report["fits"] is None:
            report["fits"] = report["path_mtu"] >= outer
        return report


def run_probe(*args, **kw) -> ProbeResult:
    return HandshakeProbe(*args, **kw).run()


def first_host(networks: list) -> str | None:
    """An address inside the peer's AllowedIPs for the full-size packet (prefer a host route)."""
    nets = sorted((ipaddress.ip_network(str(n), strict=False) for n in networks), key=lambda n: -n.prefixlen)
    for net in nets:
        if net.num_addresses == 1:
            return str(net.network_address)
        if net.prefixlen > 0:
            return str(next(net.hosts()))
    return None
