"""Our capture reader: every source it takes, the pcapng and pcap variants other tools write
(byte orders, resolutions, offsets, several sections, SPB and obsolete PB), and a large file."""

from __future__ import annotations

import io
import shutil
import struct

import pytest

from wgscope.pcap import CaptureReader, PcapngWriter, build_udp_frame, parse_frame, read_capture, \
    read_capture_secrets

from pcap_samples import KEYLOG, T0, V4, V6, handmade_pcapng, tshark_fields, write_sample
from test_pcap_frames import WRAPPERS  # hand-built link-layer headers


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

