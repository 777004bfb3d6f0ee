"""Our capture writers (pcapng with secrets and comments, classic pcap), read back by our reader."""

from __future__ import annotations

import io
import os
import stat
import struct

import pytest

from wgscope.pcap import CapturedPacket, CaptureReader, PcapngWriter, PcapWriter, parse_frame, read_capture, \
    read_capture_secrets

from pcap_samples import KEYLOG, T0, V6, sample_packets, walk_blocks, write_sample


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

