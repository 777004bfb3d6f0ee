"""Inner packets for the lab and tests: ICMP echo (v4/v6) and UDP, built and answered.

This plays the part of the kernel's IP stack behind an in-memory TUN: it answers echo
requests addressed to the node, so `ping` works in the lab with no root.
"""

from __future__ import annotations

import ipaddress
import struct

from ..protocol.ip import checksum, ipv4_header, ipv6_header


def _icmp6_checksum(src: bytes, dst: bytes, body: bytes) -> int:
    return checksum(src + dst + struct.pack("!I3xB", len(body), 58) + body)


def echo(src: str, dst: str, seq: int, ident: int = 0x5753, payload: bytes = b"wgscope-ping", reply=False) -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 4:
        body = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + payload
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        return ipv4_header(s.packed, d.packed, 1, len(body)) + body
    body = struct.pack("!BBHHH", 129 if reply else 128, 0, 0, ident, seq) + payload
    body = body[:2] + struct.pack("!H", _icmp6_checksum(s.packed, d.packed, body)) + body[4:]
    return ipv6_header(s.packed, d.packed, 58, len(body)) + body


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    length = 8 + len(payload)
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 17, length)
        hdr = ipv4_header(s.packed, d.packed, 17, length)
    else:
        pseudo = s.packed + d.packed + struct.pack("!I3xB", length, 17)
        hdr = ipv6_header(s.packed, d.packed, 17, length)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = checksum(pseudo + seg) or 0xFFFF
    return hdr + seg[:6] + struct.pack("!H", csum) + seg[8:]


def summarize(packet: bytes) -> dict:
    """Protocol, addresses and, for ICMP echo, the kind and sequence."""
    v = packet[0] >> 4 if packet else 0
    if v == 4 and len(packet) >= 20:
        ihl = (packet[0] & 15) * 4
        proto, src, dst, rest = packet[9], ipaddress.IPv4Address(packet[12:16]), ipaddress.IPv4Address(packet[16:20]), packet[ihl:]
        icmp = 1
    elif v == 6 and len(packet) >= 40:
        proto, src, dst, rest = packet[6], ipaddress.IPv6Address(packet[8:24]), ipaddress.IPv6Address(packet[24:40]), packet[40:]
        icmp = 58
    else:
        return {"proto": "invalid", "len": len(packet)}
    out = {"version": v, "src": str(src), "dst": str(dst), "len": len(packet), "proto": proto}
    if proto == icmp and len(rest) >= 8:
        t = rest[0]
        kinds = {8: "echo_request", 0: "echo_reply", 128: "echo_request", 129: "echo_reply", 3: "unreachable",
                 1: "unreachable"}
        out.update(proto="icmp" if v == 4 else "icmpv6", icmp=kinds.get(t, str(t)),
                   seq=struct.unpack("!H", rest[6:8])[0])
    elif proto in (6, 17) and len(rest) >= 4:
        out.update(proto="tcp" if proto == 6 else "udp", sport=struct.unpack("!H", rest[0:2])[0],
                   dport=struct.unpack("!H", rest[2:4])[0])
    return out


def answer_echo(packet: bytes, addresses: set[str]) -> bytes | None:
    """An echo reply if `packet` is an echo request to one of `addresses`."""
    s = summarize(packet)
    if s.get("icmp") != "echo_request" or s["dst"] not in addresses:
        return None
    hl = (packet[0] & 15) * 4 if s["version"] == 4 else 40
    ident, seq = struct.unpack("!HH", packet[hl + 4:hl + 8])
    return echo(s["dst"], s["src"], seq, ident, packet[hl + 8:], reply=True)
