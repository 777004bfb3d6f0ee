"""The kernel's own TCP through a TUN with offloads, with a tiny userspace TCP peer on the other
side: what runs inside the namespace for tests/test_tso_kernel.py.

    python tests/tso_loop.py FAMILY SIZE [udp]   (FAMILY 4 or 6; run inside a fresh namespace)

A kernel socket connects to the peer address routed into the TUN and sends SIZE random bytes.
The peer here reads every packet with `Tun.read` (so TSO super-packets are cut and partial
checksums completed by runtime/gso_split.py), checks each packet's IP and TCP checksum with an
independent RFC 1071 sum, answers SYN / data / FIN with plain packets of its own (MSS 1380,
cumulative ACKs, SACK-less), and reassembles the byte stream. Prints one JSON line: what the
kernel sent (sha256), what arrived, how many reads were super-packets, any bad checksum.
With `udp`, a UDP socket sends SIZE bytes with UDP_SEGMENT (USO, 1200-byte datagrams) instead,
and the datagrams read back must carry the same bytes, each with a valid UDP checksum.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_offload import rfc1071, transport_ok  # noqa: E402
from wgscope.runtime.tun import Tun  # noqa: E402

LOCAL = {4: "10.77.0.1", 6: "fd77::1"}
PEER = {4: "10.77.0.2", 6: "fd77::2"}
PORT = 9000
MSS = 1380


def sh(cmd: str) -> None:
    subprocess.run(cmd, shell=True, check=True)


def build(family: int, src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
          payload: bytes = b"", options: bytes = b"") -> bytes:
    doff = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, 65535, 0, 0) + options + payload
    s, d = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    if family == 4:
        pseudo = s + d + struct.pack("!BBH", 0, 6, len(tcp))
    else:
        pseudo = s + d + struct.pack("!IxxxB", len(tcp), 6)
    csum = 0xFFFF - rfc1071(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    if family == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, s, d)
        ip = ip[:10] + struct.pack("!H", 0xFFFF - rfc1071(ip)) + ip[12:]
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, s, d)
    return ip + tcp


def udp(tun: Tun, family: int, data: bytes) -> dict:
    s = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_UDP, 103, 1200)  # UDP_SEGMENT
    for at in range(0, len(data), 12000):
        s.sendto(data[at:at + 12000], (PEER[family], PORT))
    l4 = 20 if family == 4 else 40
    got, bad = bytearray(), 0
    deadline = time.monotonic() + 10
    while len(got) < len(data) and time.monotonic() < deadline:
        select.select([tun.fd], [], [], 0.2)
        for p in tun.read() or []:
            if (p[9] if family == 4 else p[6]) != 17:
                continue
            if not transport_ok(p):
                bad += 1
            got += p[l4 + 8:]
    return {"sent": hashlib.sha256(data).hexdigest(), "received": hashlib.sha256(bytes(got)).hexdigest(),
            "bytes": len(got), "bad_checksums": bad}


def main() -> None:
    family, size = int(sys.argv[1]), int(sys.argv[2])
    tun = Tun("tso0", offload=True)
    sh("ip link set lo up")
    sh("ip link set tso0 mtu 1420 up")
    sh(f"ip {'-6 ' if family == 6 else ''}addr add {LOCAL[family]}/{24 if family == 4 else 64} dev tso0"
       + (" nodad" if family == 6 else ""))
    data = os.urandom(size)
    if sys.argv[3:] == ["udp"]:
        report = udp(tun, family, data)
        report.update(reads=tun.reads, gso_reads=tun.gso_reads, offload=tun.offload_names(), drops=tun.offload_drops)
        print(json.dumps(report))
        return
    report = tcp(tun, family, data)
    report.update(reads=tun.reads, gso_reads=tun.gso_reads, offload=tun.offload_names(), drops=tun.offload_drops)
    print(json.dumps(report))


def tcp(tun, family: int, data: bytes) -> dict:
    """A kernel TCP client sends `data` through the TUN to a minimal receiver here (SYN-ACK with
    our MSS, in-order data, FIN); what came through and how."""
    sent = {}

    def client() -> None:
        c = socket.create_connection((PEER[family], PORT), timeout=20)
        c.sendall(data)
        c.close()
        sent["sha256"] = hashlib.sha256(data).hexdigest()

    threading.Thread(target=client, daemon=True).start()
    l4 = 20 if family == 4 else 40
    received = bytearray()
    my_seq, their_next = 7000, None
    bad = packets = 0
    done = False
    deadline = time.monotonic() + 30
    while not done and time.monotonic() < deadline:
        select.select([tun.fd], [], [], 0.2)
        while True:
            got = tun.read()
            if got is None:
                break
            for p in got:
                packets += 1
                if (p[0] >> 4) != family or (p[9] if family == 4 else p[6]) != 6:
                    continue  # neighbour discovery and such
                if not transport_ok(p):
                    bad += 1
                    continue
                sport, dport, seq, _ack = struct.unpack_from("!HHII", p, l4)
                flags = p[l4 + 13]
                body = p[l4 + (p[l4 + 12] >> 4) * 4:]
                reply = lambda f, opts=b"": tun.write(build(family, PEER[family], LOCAL[family], PORT, sport,  # noqa: E731
                                                            my_seq, their_next, f, options=opts))
                if flags & 0x02:  # SYN: SYN-ACK with our MSS
                    their_next = (seq + 1) & 0xFFFFFFFF
                    reply(0x12, struct.pack("!BBH", 2, 4, MSS))
                    my_seq += 1
                    continue
                if their_next is None:
                    continue
                if body and seq == their_next:
                    received += body
                    their_next = (their_next + len(body)) & 0xFFFFFFFF
                if flags & 0x01 and (seq + len(body)) & 0xFFFFFFFF == their_next:  # FIN, in order
                    their_next = (their_next + 1) & 0xFFFFFFFF
                    reply(0x11)
                    my_seq += 1
                    done = True
                elif body or flags & 0x01:
                    reply(0x10)
    time.sleep(0.2)
    return {"sent": sent.get("sha256"), "received": hashlib.sha256(bytes(received)).hexdigest(),
            "bytes": len(received), "packets": packets, "bad_checksums": bad}


if __name__ == "__main__":
    main()
