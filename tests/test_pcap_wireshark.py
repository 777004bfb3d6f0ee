"""Wireshark's own tools (tshark, capinfos, editcap) read what we write, and we read what they write."""

from __future__ import annotations

import pytest

from wgscope.pcap import PcapWriter, build_udp_frame, parse_frame, read_capture, read_capture_secrets

from pcap_samples import KEYLOG, T0, V4, V6, need, run, sample_packets, tshark_fields, write_sample
from test_pcap_frames import WRAPPERS  # hand-built link-layer headers


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

