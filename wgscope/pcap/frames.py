"""The outer packet around a WireGuard UDP datagram: build one, or find one in a frame.

`build_udp_frame` makes a raw IPv4/IPv6 packet (LINKTYPE_RAW) with correct checksums.
`parse_frame` digs the UDP datagram out of a captured frame for the link types that
real WireGuard captures come in.  Malformed input raises `FrameError`; frames that
are simply not UDP (or are a later IP fragment) give None.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

from ..protocol.ip import checksum as internet_checksum  # RFC 1071

__all__ = [
    "FrameError",
    "UdpDatagram",
    "build_udp_frame",
    "parse_frame",
    "internet_checksum",
    "SUPPORTED_LINKTYPES",
    "LINKTYPE_NULL",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_RAW",
    "LINKTYPE_LOOP",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "LINKTYPE_LINUX_SLL2",
]

LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  # OpenBSD loopback: like NULL, family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)

IPPROTO_UDP = 17
_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad (QinQ outer), legacy QinQ
_MAX_VLAN_TAGS = 2
# AF_INET6 differs per BSD in DLT_NULL captures: NetBSD/OpenBSD, FreeBSD, macOS
# (tcpdump.org LINKTYPE_NULL; Linux never writes DLT_NULL).
_NULL_AF_INET = 2
_NULL_AF_INET6 = frozenset({24, 28, 30})
# IPv6 extension headers whose length is (hdr[1] + 1) * 8 and that we step over.
_IPV6_EXT_SKIP = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_MAX_IPV6_EXT = 8

_U16 = struct.Struct("!H")
_U32_BE = struct.Struct(">I")
_U32_LE = struct.Struct("<I")
_UDP_HDR = struct.Struct("!HHHH")
_IPV4_HDR = struct.Struct("!BBHHHBBH4s4s")
_IPV6_HDR = struct.Struct("!IHBB16s16s")


class FrameError(ValueError):
    """A captured frame is malformed or truncated (or the link type is unsupported)."""


class UdpDatagram(NamedTuple):
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


# --------------------------------------------------------------------------- build


def _pack_ip(host: str) -> tuple[int, bytes]:
    for family in (socket.AF_INET, socket.AF_INET6) if ":" not in host else (socket.AF_INET6,):
        try:
            return family, socket.inet_pton(family, host)
        except OSError:
            pass
    raise ValueError(f"not an IP address: {host!r}")


def _check_port(port: int) -> int:
    if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {port!r}")
    return port


def build_udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """Return a raw IPv4 or IPv6 packet (LINKTYPE_RAW) carrying `payload` in UDP.

    The family follows the addresses (both must agree); IPv4 gets a correct header
    checksum, and the UDP checksum is computed for both families (0 is sent as 0xffff).
    """
    fam_s, src_ip = _pack_ip(src[0])
    fam_d, dst_ip = _pack_ip(dst[0])
    if fam_s != fam_d:
        raise ValueError(f"address families differ: {src[0]!r} and {dst[0]!r}")
    payload = bytes(payload)
    udp_len = 8 + len(payload)
    sport, dport = _check_port(src[1]), _check_port(dst[1])
    if fam_s == socket.AF_INET:
        if 20 + udp_len > 0xFFFF:
            raise ValueError(f"payload too large for IPv4: {len(payload)} bytes")
        pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, IPPROTO_UDP, udp_len)
    else:
        if udp_len > 0xFFFF:
            raise ValueError(f"payload too large for IPv6 without jumbograms: {len(payload)} bytes")
        pseudo = src_ip + dst_ip + struct.pack("!I3xB", udp_len, IPPROTO_UDP)
    udp = _UDP_HDR.pack(sport, dport, udp_len, 0) + payload
    csum = internet_checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + _U16.pack(csum) + udp[8:]
    if fam_s == socket.AF_INET:
        # Version 4, IHL 5; id 0 with Don't Fragment, as Linux sends WireGuard datagrams.
        header = _IPV4_HDR.pack(0x45, 0, 20 + udp_len, 0, 0x4000, 64, IPPROTO_UDP, 0, src_ip, dst_ip)
        header = header[:10] + _U16.pack(internet_checksum(header)) + header[12:]
        return header + udp
    return _IPV6_HDR.pack(0x60000000, udp_len, IPPROTO_UDP, 64, src_ip, dst_ip) + udp


# --------------------------------------------------------------------------- parse


def parse_frame(linktype: int, data: bytes) -> UdpDatagram | None:
    """Find the UDP datagram in one captured frame.

    Returns None when the frame is not IPv4/IPv6 UDP or is a non-first IP fragment.
    A first fragment yields the part of the UDP payload it carries (no reassembly).
    Raises FrameError for truncated or malformed frames and unsupported link types.
    """
    try:
        if linktype == LINKTYPE_RAW or linktype == LINKTYPE_IPV4:
            fast = _udp4_plain(data)
            if fast is not None:
                return fast
        return _parse(linktype, data)
    except FrameError:
        raise
    except (struct.error, IndexError, ValueError) as exc:  # safety net; checks come first
        raise FrameError(f"malformed frame: {exc}") from None


_IPV4_UDP = struct.Struct("!BBHHHBBH4s4sHHHH")


def _udp4_plain(data: bytes) -> UdpDatagram | None:
    """The usual frame in one unpack: IPv4 without options, not a fragment, carrying UDP whose
    length fills the packet exactly. Anything else (None) takes the full parse below."""
    if len(data) < 28:
        return None
    vihl, _tos, total, _id, frag, _ttl, proto, _csum, src, dst, sport, dport, ulen, _ucsum = _IPV4_UDP.unpack_from(data)
    if vihl != 0x45 or proto != IPPROTO_UDP or frag & 0x3FFF or total != len(data) or ulen != total - 20 or ulen < 8:
        return None
    return UdpDatagram(_endpoint(socket.AF_INET, src, sport), _endpoint(socket.AF_INET, dst, dport), bytes(data[28:]))


def _parse(linktype: int, data: bytes) -> UdpDatagram | None:
    n = len(data)
    if linktype == LINKTYPE_RAW:
        return _parse_ip(data, 0)
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            raise FrameError(f"truncated Ethernet header: {n} of 14 bytes")
        off = 12
        (ethertype,) = _U16.unpack_from(data, off)
        tags = 0
        while ethertype in _ETH_VLAN_TAGS:
            tags += 1
            if tags > _MAX_VLAN_TAGS:
                raise FrameError(f"more than {_MAX_VLAN_TAGS} VLAN tags")
            off += 4
            if n < off + 2:
                raise FrameError(f"truncated VLAN tag: {n} bytes")
            (ethertype,) = _U16.unpack_from(data, off)
        return _by_ethertype(ethertype, data, off + 2)
    if linktype == LINKTYPE_IPV4:
        return _parse_ipv4(data, 0)
    if linktype == LINKTYPE_IPV6:
        return _parse_ipv6(data, 0)
    if linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            raise FrameError(f"truncated Linux cooked (SLL) header: {n} of 16 bytes")
        return _by_ethertype(_U16.unpack_from(data, 14)[0], data, 16)
    if linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            raise FrameError(f"truncated Linux cooked (SLL2) header: {n} of 20 bytes")
        return _by_ethertype(_U16.unpack_from(data, 0)[0], data, 20)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if n < 4:
            raise FrameError(f"truncated loopback header: {n} of 4 bytes")
        if linktype == LINKTYPE_LOOP:
            families = (_U32_BE.unpack_from(data, 0)[0],)
        else:  # byte order of the capturing host, which we do not know: try both
            families = (_U32_LE.unpack_from(data, 0)[0], _U32_BE.unpack_from(data, 0)[0])
        if _NULL_AF_INET in families:
            return _parse_ipv4(data, 4)
        if any(f in _NULL_AF_INET6 for f in families):
            return _parse_ipv6(data, 4)
        return None
    raise FrameError(f"unsupported link type {linktype}")


def _by_ethertype(ethertype: int, data: bytes, off: int) -> UdpDatagram | None:
    if ethertype == _ETH_IPV4:
        return _parse_ipv4(data, off)
    if ethertype == _ETH_IPV6:
        return _parse_ipv6(data, off)
    return None


def _parse_ip(data: bytes, off: int) -> UdpDatagram | None:
    if len(data) <= off:
        raise FrameError("empty IP packet")
    version = data[off] >> 4
    if version == 4:
        return _parse_ipv4(data, off)
    if version == 6:
        return _parse_ipv6(data, off)
    raise FrameError(f"not an IP packet: version {version}")


def _parse_ipv4(data: bytes, off: int) -> UdpDatagram | None:
    n = len(data)
    if n < off + 20:
        raise FrameError(f"truncated IPv4 header: {n - off} of 20 bytes")
    vihl, _tos, total, _id, frag, _ttl, proto, _csum, src, dst = _IPV4_HDR.unpack_from(data, off)
    if vihl >> 4 != 4:
        raise FrameError(f"IPv4 header has version {vihl >> 4}")
    ihl = (vihl & 0x0F) * 4
    if ihl < 20:
        raise FrameError(f"IPv4 header length {ihl} is below 20")
    if n < off + ihl:
        raise FrameError(f"truncated IPv4 options: {n - off} of {ihl} bytes")
    if total == 0:  # TSO/GSO captures on Linux leave the total length at 0
        end = n
    elif total < ihl:
        raise FrameError(f"IPv4 total length {total} is below header length {ihl}")
    else:
        end = off + total  # bytes past this are link-layer padding
    if frag & 0x1FFF:
        return None  # not the first fragment
    if proto != IPPROTO_UDP:
        return None
    return _parse_udp(data, off + ihl, end, bool(frag & 0x2000), socket.AF_INET, src, dst)


def _parse_ipv6(data: bytes, off: int) -> UdpDatagram | None:
    n = len(data)
    if n < off + 40:
        raise FrameError(f"truncated IPv6 header: {n - off} of 40 bytes")
    vtcfl, plen, nxt, _hlim, src, dst = _IPV6_HDR.unpack_from(data, off)
    if vtcfl >> 28 != 6:
        raise FrameError(f"IPv6 header has version {vtcfl >> 28}")
    end = n if plen == 0 else off + 40 + plen  # 0: jumbogram (hop-by-hop says the length)
    pos = off + 40
    fragmented = False
    for _ in range(_MAX_IPV6_EXT):
        if nxt == IPPROTO_UDP:
            return _parse_udp(data, pos, end, fragmented, socket.AF_INET6, src, dst)
        if nxt in _IPV6_EXT_SKIP:
            if min(n, end) < pos + 8:
                raise FrameError(f"truncated IPv6 extension header {nxt}")
            nxt, hlen = data[pos], (data[pos + 1] + 1) * 8
            pos += hlen
        elif nxt == _IPV6_FRAGMENT:
            if min(n, end) < pos + 8:
                raise FrameError("truncated IPv6 fragment header")
            if _U16.unpack_from(data, pos + 2)[0] & 0xFFF8:
                return None  # not the first fragment
            fragmented = bool(data[pos + 3] & 1)
            nxt = data[pos]
            pos += 8
        else:
            return None  # TCP, ICMPv6, ESP, no-next-header, ...
    raise FrameError(f"more than {_MAX_IPV6_EXT} IPv6 extension headers")


def _parse_udp(data, pos, end, fragmented, family, src, dst) -> UdpDatagram:
    n = len(data)
    if min(n, end) < pos + 8:
        raise FrameError(f"truncated UDP header: {max(0, min(n, end) - pos)} of 8 bytes")
    sport, dport, ulen, _csum = _UDP_HDR.unpack_from(data, pos)
    if fragmented:
        stop = min(n, end, pos + ulen) if ulen >= 8 else min(n, end)
    else:
        if ulen < 8:
            if not (ulen == 0 and family == socket.AF_INET6):  # 0 only in IPv6 jumbograms
                raise FrameError(f"UDP length {ulen} is below 8")
            ulen = end - pos
        stop = pos + ulen
        if stop > end:
            raise FrameError(f"UDP length {ulen} exceeds the IP payload ({end - pos} bytes)")
        if stop > n:
            raise FrameError(f"truncated UDP payload: {n - pos - 8} of {ulen - 8} bytes captured")
    return UdpDatagram(_endpoint(family, src, sport), _endpoint(family, dst, dport), bytes(data[pos + 8 : stop]))


_ENDPOINTS: dict[tuple, tuple[str, int]] = {}
_ENDPOINTS_MAX = 4096  # bounded: addresses are the capture's choice


def _endpoint(family: int, address: bytes, port: int) -> tuple[str, int]:
    """(address text, port), made once per endpoint: a capture has few, and each frame names two."""
    key = (address, port)
    ep = _ENDPOINTS.get(key)
    if ep is None:
        if len(_ENDPOINTS) >= _ENDPOINTS_MAX:
            _ENDPOINTS.clear()
        ep = _ENDPOINTS[key] = (socket.inet_ntop(family, address), port)
    return ep
