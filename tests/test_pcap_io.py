"""Capture files: our writers, our reader, and Wireshark's tools reading/writing them."""

from __future__ import annotations

import io
import os
import shutil
import stat
import struct
import subprocess

import pytest

from wgscope.pcap import (
    CaptureError,
    CapturedPacket,
    CaptureReader,
    PcapngWriter,
    PcapWriter,
    build_udp_frame,
    parse_frame,
    read_capture,
    read_capture_secrets,
)

from test_pcap_frames import WRAPPERS  # hand-built link-layer headers

V4 = (("192.0.2.1", 51820), ("198.51.100.7", 41414))
V6 = (("2001:db8::1", 51820), ("2001:db8:ffff::2", 41414))
KEYLOG = (
    "LOCAL_STATIC_PRIVATE_KEY = QChaGDXeH3eQsbFAhueUNWFdq9KfpF3yl+eITjZbXEk=\n"
    "REMOTE_STATIC_PUBLIC_KEY = HzgTY6aWXtuSyW/PUquZtg8LB/DyMwEXGkPiEmdSsUU=\n"
)
T0 = 1_700_000_000


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian/Ubuntu: apt-get install tshark wireshark-common)")
    return path


def run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{argv[0]} failed: {proc.stderr}"
    return proc.stdout


def tshark_fields(path, *fields: str, prefs: tuple[str, ...] = ()) -> list[list[str]]:
    argv = [need("tshark"), "-n", "-r", str(path)]
    for pref in prefs:
        argv += ["-o", pref]
    argv += ["-T", "fields", "-E", "separator=|"]
    for f in fields:
        argv += ["-e", f]
    return [line.split("|") for line in run(*argv).splitlines()]


def sample_packets():
    """(data, timestamp, comment) for a mixed v4/v6 capture."""
    return [
        (build_udp_frame(*V4, b"\x01\0\0\0" + b"i" * 144), T0 + 2**-20, "handshake initiation"),
        (build_udp_frame(V4[1], V4[0], b"\x02\0\0\0" + b"r" * 88), T0 + 0.25, None),
        (build_udp_frame(*V6, b"\x04\0\0\0" + b"d" * 29), T0 + 1.5, "transport, odd length: ünïcode ✓"),
        (build_udp_frame(V6[1], V6[0], b"\x04\0\0\0" + b"\0" * 28), T0 + 2.75, ""),
    ]


def write_sample(path, with_secrets: bool = True):
    with PcapngWriter(path) as w:
        if with_secrets:
            w.write_wireguard_secrets(KEYLOG)
        for data, ts, comment in sample_packets():
            w.write_packet(data, ts, comment=comment)


def walk_blocks(raw: bytes, bo: str = "<"):
    off = 0
    while off < len(raw):
        btype, blen = struct.unpack_from(bo + "II", raw, off)
        assert blen % 4 == 0 and blen >= 12
        assert struct.unpack_from(bo + "I", raw, off + blen - 4)[0] == blen
        yield btype, raw[off + 8 : off + blen - 4]
        off += blen
    assert off == len(raw)


# --- our writer, our reader ----------------------------------------------------------


def test_pcapng_round_trip(tmp_path):
    path = tmp_path / "wg.pcapng"
    write_sample(path)
    got = list(read_capture(path))
    want = sample_packets()
    assert [p.frame_number for p in got] == [1, 2, 3, 4]
    assert all(isinstance(p, CapturedPacket) and p.linktype == 101 for p in got)
    assert [p.data for p in got] == [w[0] for w in want]
    assert [p.comment for p in got] == [w[2] for w in want]
    for p, (_, ts, _) in zip(got, want):
        assert abs(p.timestamp - ts) < 1e-6
    assert parse_frame(got[2].linktype, got[2].data).src == V6[0]
    assert read_capture_secrets(path) == [KEYLOG]


def test_pcapng_layout(tmp_path):
    path = tmp_path / "wg.pcapng"
    write_sample(path)
    blocks = list(walk_blocks(path.read_bytes()))
    assert [b[0] for b in blocks] == [0x0A0D0D0A, 1, 0x0A, 6, 6, 6, 6]
    idb = blocks[1][1]
    assert struct.unpack_from("<HHI", idb) == (101, 0, 65535)
    assert struct.unpack_from("<HHB", idb, 8) == (9, 1, 9)  # if_tsresol = 10^-9
    dsb = blocks[2][1]
    assert struct.unpack_from("<II", dsb) == (0x57474B4C, len(KEYLOG))
    epb = blocks[3][1]
    ns = (T0 * 10**9) + 954  # 2**-20 s, to the nearest nanosecond
    assert struct.unpack_from("<III", epb) == (0, ns >> 32, ns & 0xFFFFFFFF)


def test_capture_files_are_private(tmp_path):
    for cls, name in ((PcapngWriter, "a.pcapng"), (PcapWriter, "b.pcap")):
        path = tmp_path / name
        path.write_bytes(b"old")
        os.chmod(path, 0o644)
        with cls(path) as w:
            w.write_packet(b"\x45", T0)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert len(list(read_capture(path))) == 1


def test_writer_to_file_object_and_snaplen():
    buf = io.BytesIO()
    w = PcapngWriter(buf, linktype=1, snaplen=64)
    w.write_packet(b"x" * 100, T0)
    w.close()
    assert not buf.closed
    with pytest.raises(ValueError):
        w.write_packet(b"x", T0)
    (pkt,) = read_capture(buf.getvalue())
    assert pkt.linktype == 1 and pkt.data == b"x" * 64


@pytest.mark.parametrize("nanosecond", [False, True])
def test_classic_pcap_round_trip(tmp_path, nanosecond):
    path = tmp_path / "inner.pcap"
    with PcapWriter(path, linktype=101, nanosecond=nanosecond) as w:
        for data, ts, _ in sample_packets():
            w.write_packet(data, ts)
    got = list(read_capture(path))
    assert [(p.frame_number, p.linktype, p.comment) for p in got] == [(i, 101, None) for i in (1, 2, 3, 4)]
    assert [p.data for p in got] == [d for d, _, _ in sample_packets()]
    tol = 1e-6 if nanosecond else 2e-6
    assert all(abs(p.timestamp - ts) < tol for p, (_, ts, _) in zip(got, sample_packets()))
    assert CaptureReader(path).read_secrets() == []


def test_reader_sources(tmp_path):
    path = tmp_path / "wg.pcapng"
    write_sample(path)
    raw = path.read_bytes()
    expected = list(read_capture(path))
    assert list(read_capture(str(path))) == expected
    assert list(read_capture(raw)) == expected
    assert list(read_capture(io.BytesIO(raw))) == expected
    with open(path, "rb") as f:
        assert list(read_capture(f)) == expected
    reader = CaptureReader(path)
    seen = []
    for pkt in reader:  # secrets are known before the packets that follow the DSB
        seen.append(list(reader.secrets))
    assert reader.format == "pcapng" and seen == [[KEYLOG]] * 4
    assert len(list(reader)) == 4 and reader.secrets == [KEYLOG]  # a second pass


# --- hand-built files: the parts of the formats our writers never produce -------------


def block(bo: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(bo + "II", btype, len(body) + 12) + body + struct.pack(bo + "I", len(body) + 12)


def opt(bo: str, code: int, value: bytes) -> bytes:
    return struct.pack(bo + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def end_opts(bo: str) -> bytes:
    return struct.pack(bo + "HH", 0, 0)


def shb(bo: str) -> bytes:
    return block(bo, 0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def handmade_pcapng(bo: str) -> tuple[bytes, list[tuple]]:
    """Two sections; interfaces with different link types, resolutions and offsets;
    EPB, SPB, obsolete PB, and blocks a reader must skip.  Returns (file, expected)."""
    eth4 = WRAPPERS["ethernet-vlan"][1](build_udp_frame(*V4, b"eth"))
    raw6 = build_udp_frame(*V6, b"raw")
    sll2 = WRAPPERS["sll2"][1](build_udp_frame(*V4, b"sll2"))
    out = [shb(bo)]
    out.append(block(bo, 1, struct.pack(bo + "HHI", 1, 0, 0)))  # Ethernet, default µs
    out.append(block(bo, 1, struct.pack(bo + "HHI", 101, 0, 0) + opt(bo, 9, b"\x8a") + opt(bo, 14, struct.pack(bo + "q", 100)) + end_opts(bo)))  # RAW, 2^-10 s, +100 s
    out.append(block(bo, 0x0A, struct.pack(bo + "II", 0x544C534B, 5) + b"tlskl"))  # TLS secrets: not ours
    ts = (T0 * 10**6) + 250_000
    out.append(block(bo, 6, struct.pack(bo + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(eth4), len(eth4)) + eth4 + b"\0" * (-len(eth4) % 4) + opt(bo, 1, b"first") + opt(bo, 1, b"second") + end_opts(bo)))
    out.append(block(bo, 5, struct.pack(bo + "IIII", 0, 0, 0, 0)))  # Interface Statistics Block
    out.append(block(bo, 0x40000BAD, b"custom, do not copy"))
    out.append(block(bo, 0x12345678, b"unknown"))
    tick = 1024 * 3 + 512  # 3.5 s at 2^-10
    out.append(block(bo, 6, struct.pack(bo + "IIIII", 1, 0, tick, len(raw6), len(raw6)) + raw6))
    out.append(block(bo, 3, struct.pack(bo + "I", len(eth4)) + eth4))  # SPB -> interface 0
    out.append(block(bo, 0x0A, struct.pack(bo + "II", 0x57474B4C, len(KEYLOG)) + KEYLOG.encode()))
    out.append(block(bo, 2, struct.pack(bo + "HHIIII", 0, 0, ts >> 32, (ts & 0xFFFFFFFF) + 1, len(eth4), len(eth4)) + eth4 + b"\0" * (-len(eth4) % 4) + opt(bo, 1, b"old PB") + end_opts(bo)))
    # A new section: interfaces start over.
    out.append(shb(bo))
    out.append(block(bo, 1, struct.pack(bo + "HHI", 276, 0, 0) + opt(bo, 9, b"\x03") + end_opts(bo)))  # ms
    out.append(block(bo, 6, struct.pack(bo + "IIIII", 0, 0, 5000, len(sll2), len(sll2)) + sll2))
    expected = [  # frame 2 is the custom block: Wireshark numbers it as a frame
        (1, T0 + 0.25, 1, eth4, "first\nsecond"),
        (3, 103.5, 101, raw6, None),
        (4, 103.5, 1, eth4, None),  # SPB: no timestamp of its own
        (5, T0 + 0.250001, 1, eth4, "old PB"),
        (6, 5.0, 276, sll2, None),
    ]
    return b"".join(out), expected


@pytest.mark.parametrize("bo", ["<", ">"], ids=["little-endian", "big-endian"])
def test_handmade_pcapng(tmp_path, bo):
    raw, expected = handmade_pcapng(bo)
    got = list(read_capture(raw))
    assert len(got) == len(expected)
    for pkt, (num, ts, lt, data, comment) in zip(got, expected):
        assert (pkt.frame_number, pkt.linktype, pkt.data, pkt.comment) == (num, lt, data, comment)
        assert abs(pkt.timestamp - ts) < 1e-6
    assert [parse_frame(p.linktype, p.data).payload for p in got] == [b"eth", b"raw", b"eth", b"eth", b"sll2"]
    assert read_capture_secrets(raw) == [KEYLOG]
    if shutil.which("tshark"):  # Wireshark numbers the same frames the same way
        path = tmp_path / "hand.pcapng"
        path.write_bytes(raw)
        rows = tshark_fields(path, "frame.number", "udp.payload")
        udp_rows = [(int(r[0]), bytes.fromhex(r[1])) for r in rows if r[1]]
        assert udp_rows == [(p.frame_number, parse_frame(p.linktype, p.data).payload) for p in got]


@pytest.mark.parametrize("magic,bo,scale", [
    (0xA1B2C3D4, "<", 1e-6), (0xA1B2C3D4, ">", 1e-6), (0xA1B23C4D, "<", 1e-9), (0xA1B23C4D, ">", 1e-9),
])
def test_handmade_classic_pcap(magic, bo, scale):
    frames = [build_udp_frame(*V4, b"a"), build_udp_frame(*V6, b"bc")]
    raw = struct.pack(bo + "IHHiIII", magic, 2, 4, 0, 0, 65535, 113)
    for i, f in enumerate(frames):
        f = WRAPPERS["sll"][1](f)
        raw += struct.pack(bo + "IIII", T0 + i, 500, len(f), len(f)) + f
    got = list(read_capture(raw))
    assert [(p.frame_number, p.linktype) for p in got] == [(1, 113), (2, 113)]
    assert [parse_frame(113, p.data).payload for p in got] == [b"a", b"bc"]
    assert got[1].timestamp == pytest.approx(T0 + 1 + 500 * scale, abs=1e-7)


# --- Wireshark's tools ------------------------------------------------------------------


def test_tshark_reads_our_pcapng(tmp_path):
    path = tmp_path / "wg.pcapng"
    write_sample(path)
    rows = tshark_fields(
        path,
        "frame.number", "frame.time_epoch", "frame.comment", "udp.srcport", "udp.dstport",
        "udp.checksum.status", "ip.checksum.status", "udp.payload",
        prefs=("udp.check_checksum:TRUE", "ip.check_checksum:TRUE"),
    )
    want = sample_packets()
    assert len(rows) == len(want)
    for row, (data, ts, comment) in zip(rows, want):
        num, epoch, tcomment, sport, dport, ucs, ipcs, payload = row
        assert tcomment == (comment or "")
        assert abs(float(epoch) - ts) < 1e-6
        assert {sport, dport} == {"51820", "41414"}
        assert ucs == "1", f"frame {num}: UDP checksum not Good"
        assert ipcs in ("1", "")  # IPv6 has no header checksum
        assert bytes.fromhex(payload) == parse_frame(101, data).payload
    assert [r[6] for r in rows[:2]] == ["1", "1"]


def test_capinfos_counts_our_secrets(tmp_path):
    need("capinfos")
    path = tmp_path / "wg.pcapng"
    write_sample(path)
    out = run(need("capinfos"), str(path))
    assert "Number of decryption secrets in file: 1" in out
    assert "nanoseconds" in out


def test_editcap_injected_wireguard_secrets(tmp_path):
    editcap = need("editcap")
    plain, keylog, out = tmp_path / "plain.pcapng", tmp_path / "wg.keys", tmp_path / "dsb.pcapng"
    write_sample(plain, with_secrets=False)
    keylog.write_text(KEYLOG)
    run(editcap, "--inject-secrets", f"wg,{keylog}", str(plain), str(out))
    assert read_capture_secrets(out) == [KEYLOG]
    assert [p.data for p in read_capture(out)] == [d for d, _, _ in sample_packets()]


@pytest.mark.parametrize("fmt", ["pcap", "nsecpcap", "pcapng"])
def test_editcap_conversions_read_back(tmp_path, fmt):
    editcap = need("editcap")
    src, dst = tmp_path / "src.pcapng", tmp_path / f"out.{fmt}"
    write_sample(src)
    run(editcap, "-F", fmt, str(src), str(dst))
    got = list(read_capture(dst))
    want = sample_packets()
    assert [p.data for p in got] == [d for d, _, _ in want]
    tol = 1e-9 * 512 if fmt != "pcap" else 2e-6
    assert all(abs(p.timestamp - ts) < tol for p, (_, ts, _) in zip(got, want))


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_tshark_agrees_on_every_linktype(tmp_path, name):
    """Our hand-built link-layer headers are what Wireshark expects, and we find the same UDP."""
    need("tshark")
    linktype, wrap = WRAPPERS[name]
    path = tmp_path / f"{name}.pcap"
    frames = [wrap(build_udp_frame(*V4, b"four")), wrap(build_udp_frame(*V6, b"six!"))]
    with PcapWriter(path, linktype=linktype) as w:
        for i, f in enumerate(frames):
            w.write_packet(f, T0 + i)
    ours = [parse_frame(p.linktype, p.data) for p in read_capture(path)]
    rows = tshark_fields(path, "ip.src", "ipv6.src", "udp.srcport", "udp.dstport", "udp.payload")
    theirs = [((r[0] or r[1], int(r[2])), int(r[3]), bytes.fromhex(r[4])) for r in rows]
    assert theirs == [(d.src, d.dst[1], d.payload) for d in ours]


# --- damaged files ------------------------------------------------------------------------


@pytest.mark.parametrize("raw,words", [
    (b"", "not a pcap or pcapng file"),
    (b"\xd4\xc3", "not a pcap or pcapng file"),
    (b"GET / HTTP/1.1\r\n\r\n", "not a pcap or pcapng file"),
    (b"\x1f\x8b\x08\x00" + b"\0" * 20, "gzip"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap file header"),
    (b"\x0a\x0d\x0d\x0a" + b"\0" * 24, "byte-order magic"),
])
def test_not_a_capture(tmp_path, raw, words):
    path = tmp_path / "bad"
    path.write_bytes(raw)
    with pytest.raises(CaptureError, match=words):
        list(read_capture(path))
    with pytest.raises(CaptureError, match=words):
        read_capture_secrets(path)


def test_every_truncation_of_a_pcapng(tmp_path):
    path = tmp_path / "wg.pcapng"
    write_sample(path)
    raw = path.read_bytes()
    boundaries, off = {0}, 0
    for btype, body in walk_blocks(raw):
        off += len(body) + 12
        boundaries.add(off)
    for cut in range(1, len(raw)):
        if cut in boundaries:
            list(read_capture(raw[:cut]))  # a clean cut between blocks is a valid file
            continue
        with pytest.raises(CaptureError, match=r"truncated|not a pcap"):
            list(read_capture(raw[:cut]))


def test_every_truncation_of_a_classic_pcap():
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write_packet(b"\x45" * 30, T0)
        w.write_packet(b"\x45" * 7, T0)
    raw = buf.getvalue()
    for cut in range(1, len(raw)):
        if cut in (24, 24 + 16 + 30, len(raw)):
            list(read_capture(raw[:cut]))
            continue
        with pytest.raises(CaptureError, match=r"truncated|not a pcap"):
            list(read_capture(raw[:cut]))


def test_truncation_error_names_the_offset():
    buf = io.BytesIO()
    with PcapngWriter(buf) as w:
        w.write_packet(b"\x45" * 40, T0)
    raw = buf.getvalue()
    epb_at = len(raw) - (32 + 40)
    with pytest.raises(CaptureError, match=f"truncated block at offset {epb_at}"):
        list(read_capture(raw[:-1]))
    # Packets before the damage come out first, like Wireshark shows them.
    packets = []
    with pytest.raises(CaptureError):
        for p in read_capture(raw + raw[epb_at : epb_at + 20]):
            packets.append(p)
    assert len(packets) == 1


def test_inconsistent_blocks(tmp_path):
    raw, _ = handmade_pcapng("<")
    first_block = 28
    bad = bytearray(raw)
    bad[first_block + 16] ^= 1  # the first IDB's trailing length (IDB: 20 bytes)
    with pytest.raises(CaptureError, match="trailing length"):
        list(read_capture(bytes(bad)))
    bad = bytearray(raw)
    struct.pack_into("<I", bad, first_block + 4, 22)
    with pytest.raises(CaptureError, match="bad block length 22"):
        list(read_capture(bytes(bad)))
    # An EPB that names an interface the section does not have.
    orphan = shb("<") + block("<", 6, struct.pack("<IIIII", 3, 0, 0, 1, 1) + b"x")
    with pytest.raises(CaptureError, match="interface 3"):
        list(read_capture(orphan))
    # A captured length that runs past the end of its block.
    overrun = shb("<") + block("<", 1, struct.pack("<HHI", 101, 0, 0)) + block("<", 6, struct.pack("<IIIII", 0, 0, 0, 99, 99) + b"x")
    with pytest.raises(CaptureError, match="overruns"):
        list(read_capture(overrun))


def test_capture_error_is_a_value_error():
    assert issubclass(CaptureError, ValueError)


def test_reading_many_packets(tmp_path):
    """100k packets read back in order (their speed is measured by `make bench`, not asserted)."""
    path = tmp_path / "many.pcapng"
    data = build_udp_frame(*V4, b"\x04\0\0\0" + b"k" * 28)
    n = 100_000
    with PcapngWriter(path) as w:
        for i in range(n):
            w.write_packet(data, T0 + i * 1e-4)
    frames = [p.frame_number for p in read_capture(path)]
    assert frames == list(range(1, n + 1))
