"""Just enough of IPv4/IPv6 for a tunnel: addresses, true length, and ICMP unreachable.

The core reads the destination of outbound packets (routing), the source and length of
inbound ones (source check, stripping padding), and writes ICMP/ICMPv6 destination
unreachable for packets no peer can take, as the Linux module does (send.c, icmp_ndo_send).
"""

from __future__ import annotations

import ipaddress
import struct


class InvalidPacket(ValueError):
    pass


def version(packet: bytes) -> int:
    if not packet:
        raise InvalidPacket("empty packet")
    v = packet[0] >> 4
    if v == 4 and len(packet) >= 20:
        return 4
    if v == 6 and len(packet) >= 40:
        return 6
    raise InvalidPacket(f"not an IPv4/IPv6 packet (version {v}, {len(packet)} bytes)")


def source(packet: bytes) -> tuple[int, int]:
    v = version(packet)
    if v == 4:
        return 4, int.from_bytes(packet[12:16], "big")
    return 6, int.from_bytes(packet[8:24], "big")


def outbound(packet: bytes) -> tuple[int, bytes]:
    """For a packet read from the TUN: (ip version, destination address bytes)."""
    v = packet[0] >> 4 if packet else 0
    if v == 4 and len(packet) >= 20:
        return 4, packet[16:20]
    if v == 6 and len(packet) >= 40:
        return 6, packet[24:40]
    raise InvalidPacket(f"not an IPv4/IPv6 packet (version {v}, {len(packet)} bytes)")


def inbound(packet: bytes) -> tuple[int, int, bytes]:
    """For a decrypted packet: (true length, ip version, source address bytes), in one look."""
    v = packet[0] >> 4 if packet else 0
    size = len(packet)
    if v == 4 and size >= 20:
        n = (packet[2] << 8) | packet[3]
        if n < 20 or n > size:
            raise InvalidPacket(f"IPv4 total length {n} does not fit {size} bytes")
        return n, 4, packet[12:16]
    if v == 6 and size >= 40:
        n = 40 + ((packet[4] << 8) | packet[5])
        if n > size:
            raise InvalidPacket(f"IPv6 length {n} does not fit {size} bytes")
        return n, 6, packet[8:24]
    raise InvalidPacket(f"not an IPv4/IPv6 packet (version {v}, {size} bytes)")


def address_text(ver: int, addr: int) -> str:
    return str(ipaddress.IPv4Address(addr) if ver == 4 else ipaddress.IPv6Address(addr))


def checksum(data: bytes) -> int:
    """RFC 1071 ones'-complement checksum of `data` (odd length padded with a zero byte)."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    # 2**16 == 1 (mod 0xffff), so the ones'-complement sum of the 16-bit words is the
    # whole buffer as one big integer mod 0xffff -- except that a non-zero sum that is
    # a multiple of 0xffff is 0xffff ("negative zero"), not 0.
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF
    return ~total & 0xFFFF


def ipv4_header(src: bytes, dst: bytes, proto: int, payload_len: int, ttl: int = 64) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 0, 0, ttl, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]


def ipv6_header(src: bytes, dst: bytes, next_header: int, payload_len: int, hop_limit: int = 64) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, payload_len, next_header, hop_limit, src, dst)


def icmp_unreachable(packet: bytes, reporter: str | None = None) -> bytes | None:
    """ICMP host unreachable (v4 type 3 code 1) / ICMPv6 address unreachable (type 1 code 3)
    quoting `packet`, addressed back to its sender. None if the packet is itself unusable."""
    try:
        v = version(packet)
    except InvalidPacket:
        return None
    if v == 4:
        if packet[16] >= 224 or packet[16:20] == b"\xff\xff\xff\xff":
            return None  # not about multicast or broadcast (RFC 1122 §3.2.2)
        if packet[9] == 1 and len(packet) > 20 and packet[20] not in (0, 8):
            return None  # never answer an ICMP error with an error (RFC 1122 §3.2.2)
        src = packet[12:16]
        me = ipaddress.IPv4Address(reporter).packed if reporter else packet[16:20]
        quote = packet[:28]
        body = struct.pack("!BBHI", 3, 1, 0, 0) + quote
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        return ipv4_header(me, src, 1, len(body)) + body
    if packet[24] == 0xFF:
        return None  # not about a multicast destination, e.g. router solicitations (RFC 4443 §2.4 e)
    if packet[6] == 58 and len(packet) > 40 and packet[40] < 128:
        return None  # ICMPv6 error about an ICMPv6 error
    src = packet[8:24]
    me = ipaddress.IPv6Address(reporter).packed if reporter else packet[24:40]
    quote = packet[:1232]  # stay within the IPv6 minimum MTU (RFC 4443 §2.4 c)
    body = struct.pack("!BBHI", 1, 3, 0, 0) + quote
    pseudo = src and (me + src + struct.pack("!I3xB", len(body), 58))
    body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
    return ipv6_header(me, src, 58, len(body)) + body
