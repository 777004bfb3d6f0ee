"""wgscope.pcap.frames: building the outer IP/UDP packet and finding UDP in frames."""

from __future__ import annotations

import os
import random
import struct

import pytest

from wgscope.pcap.frames import (
    FrameError,
    UdpDatagram,
    build_udp_frame,
    internet_checksum,
    parse_frame,
)

V4 = (("192.0.2.1", 51820), ("198.51.100.7", 41414))
V6 = (("2001:db8::1", 51820), ("2001:db8:ffff::2", 41414))
PAYLOAD = bytes([1, 0, 0, 0]) + bytes(range(144))  # looks like a handshake initiation


def ref_checksum(data: bytes) -> int:
    """RFC 1071 the slow, obvious way: add 16-bit words with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# --- link-layer wrappers, built by hand from the link-type specifications -------------


def eth(ip: bytes, vlan: bool = False, ethertype: int | None = None) -> bytes:
    if ethertype is None:
        ethertype = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    hdr = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
    if vlan:
        hdr += struct.pack("!HH", 0x8100, 0x2064)  # PCP 1, VID 100
    return hdr + struct.pack("!H", ethertype) + ip


def sll(ip: bytes) -> bytes:
    proto = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", proto) + ip


def sll2(ip: bytes) -> bytes:
    proto = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return struct.pack("!HHIHBB8s", proto, 0, 3, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0") + ip


def null(ip: bytes, byteorder: str = "<", af6: int = 24) -> bytes:
    return struct.pack(byteorder + "I", 2 if ip[0] >> 4 == 4 else af6) + ip


WRAPPERS = {
    "raw": (101, lambda ip: ip),
    "ethernet": (1, eth),
    "ethernet-vlan": (1, lambda ip: eth(ip, vlan=True)),
    "ethernet-padded": (1, lambda ip: eth(ip) + b"\0" * 20),
    "sll": (113, sll),
    "sll2": (276, sll2),
    "null-le": (0, null),
    "null-be": (0, lambda ip: null(ip, ">")),
    "null-macos-v6": (0, lambda ip: null(ip, "<", 30)),
    "null-freebsd-v6": (0, lambda ip: null(ip, "<", 28)),
    "loop": (108, lambda ip: null(ip, ">")),
}


# --- build ----------------------------------------------------------------------------


def test_ipv4_header_and_udp_checksum():
    pkt = build_udp_frame(*V4, PAYLOAD)
    assert pkt[0] == 0x45 and struct.unpack_from("!H", pkt, 2)[0] == len(pkt) == 28 + len(PAYLOAD)
    assert pkt[9] == 17
    assert ref_checksum(pkt[:20]) == 0  # a correct header sums to 0xffff
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, 17, len(pkt) - 20)
    assert struct.unpack_from("!H", pkt, 26)[0] != 0
    assert ref_checksum(pseudo + pkt[20:]) == 0


def test_ipv6_udp_checksum():
    pkt = build_udp_frame(*V6, PAYLOAD)
    assert pkt[0] >> 4 == 6 and pkt[6] == 17
    assert struct.unpack_from("!H", pkt, 4)[0] == len(pkt) - 40
    pseudo = pkt[8:40] + struct.pack("!I3xB", len(pkt) - 40, 17)
    assert ref_checksum(pseudo + pkt[40:]) == 0


@pytest.mark.parametrize("n", [0, 1, 2, 3, 31, 32, 33, 148, 1400])
def test_checksum_matches_reference(n):
    rnd = random.Random(n)
    for _ in range(50):
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        assert internet_checksum(data) == ref_checksum(data)
    for data in (b"\0" * n, b"\xff" * n):
        assert internet_checksum(data) == ref_checksum(data)


def test_zero_udp_checksum_is_sent_as_ffff():
    # Find a payload whose checksum computes to 0; it must go out as 0xffff.
    src, dst = V4
    base = build_udp_frame(src, dst, b"\0\0")
    csum = struct.unpack_from("!H", base, 26)[0]
    pkt = build_udp_frame(src, dst, struct.pack("!H", csum))  # adds csum, making the sum 0xffff
    assert struct.unpack_from("!H", pkt, 26)[0] == 0xFFFF


def test_build_rejects_bad_input():
    with pytest.raises(ValueError):
        build_udp_frame(("10.0.0.1", 1), ("::1", 2), b"")
    with pytest.raises(ValueError):
        build_udp_frame(("10.0.0.1", 70000), ("10.0.0.2", 2), b"")
    with pytest.raises(ValueError):
        build_udp_frame(("not-an-ip", 1), ("10.0.0.2", 2), b"")
    with pytest.raises(ValueError):
        build_udp_frame(*V4, b"\0" * 65508)


# --- parse ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WRAPPERS))
@pytest.mark.parametrize("addrs", [V4, V6], ids=["v4", "v6"])
def test_parse_every_linktype(name, addrs):
    linktype, wrap = WRAPPERS[name]
    got = parse_frame(linktype, wrap(build_udp_frame(*addrs, PAYLOAD)))
    assert got == UdpDatagram(addrs[0], addrs[1], PAYLOAD)


@pytest.mark.parametrize("addrs,linktype", [(V4, 228), (V6, 229)])
def test_parse_ipv4_ipv6_linktypes(addrs, linktype):
    assert parse_frame(linktype, build_udp_frame(*addrs, b"x")) == UdpDatagram(*addrs, b"x")
    other = build_udp_frame(*(V6 if addrs is V4 else V4), b"x")
    with pytest.raises(FrameError):
        parse_frame(linktype, other)  # wrong IP version for the link type


def test_parse_accepts_memoryview_and_returns_bytes():
    got = parse_frame(101, memoryview(build_udp_frame(*V4, PAYLOAD)))
    assert type(got.payload) is bytes and got.payload == PAYLOAD


def test_ipv4_options_are_skipped():
    pkt = build_udp_frame(*V4, PAYLOAD)
    opt = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL
    hdr = bytearray(pkt[:20] + opt)
    hdr[0] = 0x46
    struct.pack_into("!H", hdr, 2, len(pkt) + 4)
    assert parse_frame(101, bytes(hdr) + pkt[20:]).payload == PAYLOAD


def test_ipv6_extension_headers_are_skipped():
    pkt = build_udp_frame(*V6, PAYLOAD)
    udp = pkt[40:]
    hop = bytes([43, 0]) + b"\x01\x04\0\0\0\0"  # -> routing; PadN
    routing = bytes([60, 0, 0, 0]) + b"\0\0\0\0"  # -> dest opts; type 0, segments left 0
    dstopts = bytes([17, 1]) + b"\x01\x0c" + b"\0" * 12  # -> UDP; 16 bytes
    ext = hop + routing + dstopts
    hdr = bytearray(pkt[:40])
    struct.pack_into("!H", hdr, 4, len(ext) + len(udp))
    hdr[6] = 0
    assert parse_frame(101, bytes(hdr) + ext + udp) == UdpDatagram(*V6, PAYLOAD)


def test_not_udp_gives_none():
    pkt = bytearray(build_udp_frame(*V4, PAYLOAD))
    pkt[9] = 6  # TCP
    assert parse_frame(101, bytes(pkt)) is None
    pkt6 = bytearray(build_udp_frame(*V6, PAYLOAD))
    pkt6[6] = 58  # ICMPv6
    assert parse_frame(101, bytes(pkt6)) is None
    assert parse_frame(1, eth(b"\0" * 28, ethertype=0x0806)) is None  # ARP
    assert parse_frame(0, struct.pack("<I", 7) + bytes(pkt)) is None  # unknown family


def test_fragments():
    pkt = bytearray(build_udp_frame(*V4, PAYLOAD))
    later = bytearray(pkt)
    struct.pack_into("!H", later, 6, 0x2000 | 10)  # MF, offset 80 bytes
    assert parse_frame(101, bytes(later)) is None
    # A first fragment carrying 64 of the datagram's bytes: what it carries is returned.
    first = bytearray(pkt[: 20 + 64])
    struct.pack_into("!H", first, 2, 84)
    struct.pack_into("!H", first, 6, 0x2000)  # MF, offset 0
    got = parse_frame(101, bytes(first))
    assert got.src == V4[0] and got.payload == PAYLOAD[:56]

    v6 = build_udp_frame(*V6, PAYLOAD)
    frag = lambda offset_mf: bytes([17, 0]) + struct.pack("!HI", offset_mf, 0x1234)  # noqa: E731
    hdr = bytearray(v6[:40])
    hdr[6] = 44
    struct.pack_into("!H", hdr, 4, 8 + 64)
    got = parse_frame(101, bytes(hdr) + frag(1) + v6[40 : 40 + 64])
    assert got.dst == V6[1] and got.payload == PAYLOAD[:56]
    assert parse_frame(101, bytes(hdr) + frag((8 << 3) | 1) + v6[40 : 40 + 64]) is None


def test_tso_zero_total_length_uses_captured_length():
    pkt = bytearray(build_udp_frame(*V4, PAYLOAD))
    struct.pack_into("!H", pkt, 2, 0)
    assert parse_frame(101, bytes(pkt)).payload == PAYLOAD


@pytest.mark.parametrize(
    "linktype,data,words",
    [
        (999, b"\x45" * 40, "unsupported link type"),
        (101, b"", "empty"),
        (101, b"\x55" + b"\0" * 30, "version 5"),
        (1, b"\0" * 10, "Ethernet"),
        (113, b"\0" * 10, "SLL"),
        (276, b"\0" * 10, "SLL2"),
        (0, b"\2\0", "loopback"),
        (101, b"\x45" + b"\0" * 10, "IPv4 header"),
        (101, b"\x60" + b"\0" * 10, "IPv6 header"),
        (101, b"\x44" + b"\0" * 19, "header length"),
    ],
)
def test_malformed_raises_frame_error(linktype, data, words):
    with pytest.raises(FrameError, match=words):
        parse_frame(linktype, data)


def test_truncated_payload_and_bad_udp_length():
    pkt = build_udp_frame(*V4, PAYLOAD)
    with pytest.raises(FrameError, match="truncated UDP payload"):
        parse_frame(101, pkt[:-10])  # IP total length still says the full size
    bad = bytearray(pkt)
    struct.pack_into("!H", bad, 24, 4)
    with pytest.raises(FrameError, match="below 8"):
        parse_frame(101, bytes(bad))
    struct.pack_into("!H", bad, 24, len(pkt))  # longer than the IP payload
    with pytest.raises(FrameError, match="exceeds"):
        parse_frame(101, bytes(bad))


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_every_truncation_is_none_or_frame_error(name):
    linktype, wrap = WRAPPERS[name]
    for addrs in (V4, V6):
        frame = wrap(build_udp_frame(*addrs, PAYLOAD[:40]))
        for cut in range(len(frame)):
            try:
                got = parse_frame(linktype, frame[:cut])
            except FrameError:
                continue
            assert got is None or isinstance(got, UdpDatagram)


@pytest.mark.parametrize("linktype", [0, 1, 101, 108, 113, 228, 229, 276])
def test_garbage_never_escapes_as_other_exceptions(linktype):
    rnd = random.Random(linktype)
    seeds = [build_udp_frame(*V4, PAYLOAD[:20]), build_udp_frame(*V6, PAYLOAD[:20])]
    for i in range(3000):
        if i % 2:
            data = os.urandom(rnd.randrange(0, 120))
        else:  # mutate a valid frame: more likely to get deep into the parser
            data = bytearray(rnd.choice([w(s) for _, w in WRAPPERS.values() for s in seeds]))
            for _ in range(rnd.randrange(1, 4)):
                data[rnd.randrange(len(data))] = rnd.getrandbits(8)
            data = bytes(data[: rnd.randrange(len(data) + 1)])
        try:
            got = parse_frame(linktype, data)
        except FrameError:
            continue
        assert got is None or isinstance(got, UdpDatagram)


def test_fast_path_agrees_with_the_full_parse():
    """parse_frame's one-unpack path for plain IPv4/UDP gives what the full parse gives, and leaves
    every frame it does not fully understand to it (flipped bits, cut frames, options, fragments)."""
    from wgscope.pcap import frames

    rng = random.Random(5)
    base = build_udp_frame(("192.0.2.1", 51820), ("198.51.100.7", 4444), b"\x04\x00\x00\x00" + bytes(60))
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randrange(3)):
            data[rng.randrange(28)] = rng.randrange(256)
        data = bytes(data[: rng.choice((len(data), len(data), rng.randrange(len(data) + 1)))])
        for linktype in (frames.LINKTYPE_RAW, frames.LINKTYPE_IPV4):
            try:
                full = ("ok", frames._parse(linktype, data))
            except frames.FrameError as e:
                full = ("error", str(e))
            try:
                fast = ("ok", parse_frame(linktype, data))
            except frames.FrameError as e:
                fast = ("error", str(e))
            assert fast == full
