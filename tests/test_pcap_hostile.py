"""Damaged and hostile capture files: one clear CaptureError (a ValueError) naming what and where,
never a traceback, and the packets before the damage still come out."""

from __future__ import annotations

import io
import struct

import pytest

from wgscope.pcap import CaptureError, PcapngWriter, PcapWriter, read_capture, read_capture_secrets

from pcap_samples import T0, block, handmade_pcapng, shb, walk_blocks, write_sample


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
    every_cut_reads_or_fails_clearly(raw, boundaries)


def test_every_truncation_of_a_classic_pcap():
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write_packet(b"\x45" * 30, T0)
        w.write_packet(b"\x45" * 7, T0)
    raw = buf.getvalue()
    every_cut_reads_or_fails_clearly(raw, {24, 24 + 16 + 30})  # after the file header, after each record


def every_cut_reads_or_fails_clearly(raw: bytes, clean_cuts: set[int]) -> None:
    """Every prefix of `raw`: a cut between blocks or records is a valid (shorter) file; any other
    cut is one CaptureError saying the file is truncated."""
    for cut in range(1, len(raw)):
        if cut in clean_cuts:
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

