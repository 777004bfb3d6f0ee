"""TUN offloads: TSO/USO super-packets cut into segments (runtime/gso_split.py), partial
checksums completed, and receive coalescing (runtime/tcp_coalesce.py), checked against an
independent RFC 1071 checksum written out word by word and against the kernel's segmentation
rules (tcp_gso_segment: sequence + i*mss, FIN/PSH on the last segment, CWR on the first)."""

from __future__ import annotations

import ipaddress
import random
import struct

import pytest

from test_pcap_frames import ref_checksum
from wgscope.runtime.gso_split import OffloadError, packets_from_read
from wgscope.runtime.tcp_coalesce import coalesce
from wgscope.runtime.vnet import F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR


def rfc1071(data: bytes) -> int:
    """The one's-complement sum of the 16-bit words (not complemented), summed word by word."""
    return ~ref_checksum(data) & 0xFFFF


def transport_ok(packet: bytes) -> bool:
    """Does the TCP/UDP checksum of an IPv4/IPv6 packet verify (RFC 793 / RFC 768 / RFC 8200)?"""
    if packet[0] >> 4 == 4:
        ihl = (packet[0] & 15) * 4
        proto, body = packet[9], packet[ihl:]
        pseudo = packet[12:20] + struct.pack("!BBH", 0, proto, len(body))
        if rfc1071(packet[:ihl]) != 0xFFFF:
            return False
    else:
        proto, body = packet[6], packet[40:]
        pseudo = packet[8:40] + struct.pack("!IxxxB", len(body), proto)
    if proto == 17 and body[6:8] == b"\0\0":
        return False  # we always fill the UDP checksum in
    return rfc1071(pseudo + body) == 0xFFFF


def ipv4(proto: int, l4: bytes, ident: int = 0x1234, src="10.9.0.1", dst="10.9.0.2") -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, 0x4000, 64, proto, 0,
                         ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    return header + l4


def ipv6(proto: int, l4: bytes, src="fd00::1", dst="fd00::2") -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, 64, ipaddress.ip_address(src).packed,
                       ipaddress.ip_address(dst).packed) + l4


def tcp(payload: bytes, seq: int = 0xFFFFF000, flags: int = 0x18, options: bytes = b"\x01\x01\x08\x0a" + bytes(8)):
    doff = (20 + len(options)) // 4
    partial = 0xBEEF  # whatever the kernel left there: recomputed from scratch
    return struct.pack("!HHIIBBHHH", 40000, 5201, seq, 77, doff << 4, flags, 502, partial, 0) + options + payload


def udp(payload: bytes) -> bytes:
    return struct.pack("!HHHH", 50000, 9999, 8 + len(payload), 0) + payload


def read_of(packet: bytes, gso_type: int, mss: int, l4: int) -> bytes:
    return VNET_HDR.pack(F_NEEDS_CSUM, gso_type, l4, mss, l4, 16 if gso_type != GSO_UDP_L4 else 6) + packet


PAYLOAD = random.Random(7).randbytes(64000 - 72)


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("mss,flags", [(1368, 0x18), (1368, 0x19 | 0x80), (1000, 0x10), (1, 0x10), (1367, 0x18)])
def test_tcp_super_packet_is_cut_like_the_kernel(family, mss, flags):
    payload = PAYLOAD[: 20 * mss + 17] if mss > 1 else PAYLOAD[:300]
    seg = tcp(payload, flags=flags)
    packet, l4 = (ipv4(6, seg), 20) if family == 4 else (ipv6(6, seg), 40)
    out = packets_from_read(read_of(packet, GSO_TCPV4 if family == 4 else GSO_TCPV6, mss, l4))
    assert len(out) == -(-len(payload) // mss)
    rebuilt = b""
    for i, p in enumerate(out):
        body = p[l4 + 32:]
        assert len(body) == min(mss, len(payload) - i * mss)
        assert len(p) == (struct.unpack_from("!H", p, 2)[0] if family == 4 else 40 + struct.unpack_from("!H", p, 4)[0])
        assert transport_ok(p), f"segment {i} checksum"
        seq = struct.unpack_from("!I", p, l4 + 4)[0]
        assert seq == (0xFFFFF000 + i * mss) & 0xFFFFFFFF  # wraps past 2**32
        f = p[l4 + 13]
        last = i == len(out) - 1
        assert f & 0x01 == (flags & 0x01 if last else 0)  # FIN
        assert f & 0x08 == (flags & 0x08 if last else 0)  # PSH
        assert f & 0x80 == (flags & 0x80 if i == 0 else 0)  # CWR
        assert p[l4 + 20:l4 + 32] == seg[20:32]  # options kept
        if family == 4:
            assert struct.unpack_from("!H", p, 4)[0] == 0x1234 + i
        rebuilt += body
    assert rebuilt == payload


@pytest.mark.parametrize("family", [4, 6])
def test_udp_super_packet_is_cut_into_datagrams(family):
    payload = PAYLOAD[:5 * 1200 + 3]
    packet, l4 = (ipv4(17, udp(payload)), 20) if family == 4 else (ipv6(17, udp(payload)), 40)
    out = packets_from_read(read_of(packet, GSO_UDP_L4, 1200, l4))
    assert [len(p) - l4 - 8 for p in out] == [1200] * 5 + [3]
    for p in out:
        assert struct.unpack_from("!H", p, l4 + 4)[0] == len(p) - l4
        assert transport_ok(p)
    assert b"".join(p[l4 + 8:] for p in out) == payload


@pytest.mark.parametrize("proto,offset", [(6, 16), (17, 6)])
def test_partial_checksum_is_completed(proto, offset):
    body = tcp(b"hello, odd length") if proto == 6 else udp(b"hello, odd length")
    packet = bytearray(ipv4(proto, body))
    ihl_sum = rfc1071(bytes(packet[:20]))
    struct.pack_into("!H", packet, 10, 0xFFFF - ihl_sum)  # a valid IP header checksum
    # the kernel leaves the pseudo-header sum (not complemented) in the field
    pseudo = rfc1071(bytes(packet[12:20]) + struct.pack("!BBH", 0, proto, len(body)))
    struct.pack_into("!H", packet, 20 + offset, pseudo)
    read = VNET_HDR.pack(F_NEEDS_CSUM, 0, 0, 0, 20, offset) + bytes(packet)
    [done] = packets_from_read(read)
    assert transport_ok(done)
    assert done[:20] == packet[:20] and done[20 + offset + 2:] == packet[20 + offset + 2:]


def test_plain_reads_pass_unchanged():
    packet = ipv4(1, b"\x08\x00" + bytes(30))
    assert packets_from_read(bytes(10) + packet) == [packet]


@pytest.mark.parametrize("read,reason", [
    (bytes(12), "short_read"),
    (VNET_HDR.pack(1, 9, 0, 1000, 20, 16) + ipv4(6, tcp(bytes(3000))), "unknown_gso_type"),
    (VNET_HDR.pack(1, GSO_TCPV6, 0, 1000, 20, 16) + ipv4(6, tcp(bytes(3000))), "gso_type_ip_version_mismatch"),
    (VNET_HDR.pack(1, GSO_TCPV4, 0, 0, 20, 16) + ipv4(6, tcp(bytes(3000))), "bad_gso_size"),
    (VNET_HDR.pack(1, GSO_TCPV4, 0, 1000, 24, 16) + ipv4(6, tcp(bytes(3000))), "bad_gso_headers"),
    (VNET_HDR.pack(1, GSO_TCPV4, 0, 1000, 20, 16) + ipv4(17, udp(bytes(3000))), "bad_gso_headers"),
    (VNET_HDR.pack(1, 0, 0, 0, 20, 4000) + ipv4(6, tcp(bytes(30))), "bad_checksum_offset"),
])
def test_nonsense_headers_are_refused_with_a_reason(read, reason):
    with pytest.raises(OffloadError) as e:
        packets_from_read(read)
    assert e.value.reason == reason


def test_random_headers_never_raise_anything_else():
    rng = random.Random(3)
    base = ipv4(6, tcp(bytes(5000)))
    for _ in range(3000):
        hdr = VNET_HDR.pack(rng.choice([0, 1, 3]), rng.choice([0, 1, 4, 5, 3, 0x81]), rng.randrange(200),
                            rng.choice([0, 1, 2, 536, 1368, 70000 & 0xFFFF]), rng.randrange(80), rng.randrange(40))
        body = bytearray(base[:rng.randrange(len(base) + 1)])
        for _ in range(rng.randrange(4)):
            if body:
                body[rng.randrange(len(body))] = rng.randrange(256)
        try:
            out = packets_from_read(hdr + bytes(body))
        except OffloadError:
            continue
        assert all(isinstance(p, bytes) for p in out)


@pytest.mark.parametrize("family", [4, 6])
def test_split_then_coalesce_gives_back_one_super_packet(family):
    """What the sender cuts, the receiver merges again: one GSO write carrying every byte."""
    payload = PAYLOAD[:30 * 1368]
    seg = tcp(payload, seq=1000, flags=0x10)
    packet, l4, gso = (ipv4(6, seg), 20, GSO_TCPV4) if family == 4 else (ipv6(6, seg), 40, GSO_TCPV6)
    segments = packets_from_read(read_of(packet, gso, 1368, l4))
    writes = coalesce(segments)
    assert len(writes) == 1
    vnet, ip, th, *bodies = writes[0]
    flags, gso_type, hdr_len, gso_size, start, offset = VNET_HDR.unpack(vnet)
    assert (flags, gso_type, hdr_len, gso_size, start, offset) == (F_NEEDS_CSUM, gso, l4 + 32, 1368, l4, 16)
    assert b"".join(bytes(b) for b in bodies) == payload
    if family == 4:
        assert struct.unpack_from("!H", ip, 2)[0] == 52 + len(payload)
        assert rfc1071(bytes(ip)) == 0xFFFF
    else:
        assert struct.unpack_from("!H", ip, 4)[0] == 32 + len(payload)
    # NEEDS_CSUM: the field holds the pseudo-header sum, so summing the whole gives the checksum
    whole = bytes(ip) + bytes(th) + payload
    pseudo_sum = struct.unpack_from("!H", th, 16)[0]
    assert pseudo_sum == rfc1071((whole[12:20] if family == 4 else whole[8:40])
                                 + struct.pack("!HH", 6, 32 + len(payload)))


def test_coalesce_breaks_runs_where_the_kernel_would():
    """tcp_gro_receive's rules: another flow, a gap in sequence, a PSH or a short segment ends a run."""
    m = 1368

    def segs(seq, payload, flags=0x10, sport=40000):
        l4 = struct.pack("!H", sport) + tcp(payload, seq=seq, flags=flags)[2:]
        return packets_from_read(read_of(ipv4(6, l4), GSO_TCPV4, m, 20))

    a = segs(0, PAYLOAD[:3 * m])  # flow 1: [0, 3m)
    other = segs(3 * m, PAYLOAD[:2 * m], sport=40001)  # contiguous, but flow 2: [3m, 5m)
    gap = segs(6 * m, PAYLOAD[:2 * m], sport=40001)  # flow 2 after a missing segment: [6m, 8m)
    psh = segs(8 * m, PAYLOAD[:3 * m], flags=0x18, sport=40001)  # contiguous, PSH on its last: [8m, 11m)
    after = segs(11 * m, PAYLOAD[:2 * m], sport=40001)  # contiguous, but the PSH ended the run
    short = segs(13 * m, PAYLOAD[:m + 100], sport=40001)  # contiguous; its short last segment ends the run
    writes = coalesce(a + other + gap + psh + after + short)
    sizes = [len(w) - 3 if len(w) > 2 else 1 for w in writes]  # [vnet, ip, tcp, bodies...] or [vnet, packet]
    assert sizes == [3, 2, 5, 4]
    assert writes[2][2][13] == 0x18  # the merged header carries the last segment's PSH
    assert [len(b) for b in writes[3][3:]] == [m, m, m, 100]
