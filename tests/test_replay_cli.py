"""`wgscope replay` on the command line: outputs, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from wgscope.cli import main
from wgscope.pcap import read_capture
from wgscope.replay.labcapture import LabCapture

from test_replay_lab import two_nodes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "cli.pcapng"
    lab, a, b = two_nodes(seed=11)
    with LabCapture(lab, path):
        for i in range(3):
            a.ping("10.0.0.2", seq=i)
            lab.run(1)
        lab.run(12)
    return path


def test_outputs(capture, tmp_path, capsys):
    ann, dec, png, evs = (tmp_path / n for n in ("a.pcapng", "d.pcap", "t.png", "e.jsonl"))
    assert main(["replay", str(capture), "--annotate", str(ann), "--decrypted", str(dec), "--plot", str(png),
                 "--events", str(evs)]) == 0
    out = capsys.readouterr().out
    assert "sessions" in out and "initiation" in out and "findings: none" in out
    comments = [p.comment for p in read_capture(ann)]
    # Both sides are re-executed: each frame carries the receiving node's own verdict.
    assert all(c and c.startswith("wgscope: dir=in") for c in comments)
    assert "kind=initiation" in comments[0] and "verdict=accepted" in comments[2]
    assert len(list(read_capture(dec))) == 6  # 3 echo requests, 3 replies
    assert png.read_bytes()[:4] == b"\x89PNG"
    lines = [json.loads(x) for x in evs.read_text().splitlines()]
    consumed = [x for x in lines if x["event"] == "handshake_initiation_consumed"]
    assert len(consumed) == 1 and consumed[0]["node"] != "replay"  # the node's own name
    assert {x["node"] for x in lines} == {x["peer"] for x in lines if x["event"] == "peer_added"}
    assert main(["replay", str(capture), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["sessions"]) == 1 and data["sessions"][0]["i2r"]["decrypted"] == 4


def test_annotated_copy_decrypts_in_tshark(capture, tmp_path):
    from conftest import require_tools

    require_tools("tshark")
    ann = tmp_path / "a.pcapng"
    assert main(["replay", str(capture), "--annotate", str(ann)]) == 0
    out = subprocess.run(["tshark", "-r", str(ann), "-Y", "icmp", "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    assert len(out) == 6


@pytest.mark.parametrize("content,expect", [
    (b"", "not a pcap or pcapng file"),
    (b"hello world, not a capture", "not a pcap or pcapng file"),
    (b"\x1f\x8b\x08\x00junk", "gzip"),
])
def test_bad_capture_one_line_error(tmp_path, content, expect):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(content)
    r = subprocess.run([str(ROOT / ".venv/bin/wgscope"), "replay", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and expect in r.stderr and "Traceback" not in r.stderr


def test_truncated_and_missing_inputs(capture, tmp_path):
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(capture.read_bytes()[:120])
    for args, expect in (([str(cut)], "truncated"), ([str(tmp_path / "nope.pcap")], "no such file"),
                         ([str(tmp_path)], "is a directory"),
                         ([str(capture), "--keylog", str(tmp_path / "nokeys")], "cannot read key log"),
                         ([str(capture), "--config", "/etc/hostname"], "")):
        r = subprocess.run([str(ROOT / ".venv/bin/wgscope"), "replay", *args], capture_output=True, text=True)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and expect in r.stderr and "Traceback" not in r.stderr
    # Damaged after some packets: what came before is analysed, and said so.
    data = capture.read_bytes()
    half = tmp_path / "half.pcapng"
    half.write_bytes(data[: len(data) - 50])
    r = subprocess.run([str(ROOT / ".venv/bin/wgscope"), "replay", str(half)], capture_output=True, text=True)
    assert r.returncode == 0 and "damaged after frame" in r.stdout


def test_bench_smoke(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT))
    from bench.replay_bench import measure

    res = measure(300, workdir=str(tmp_path), tshark=False)
    assert res["packets"] >= 300 and res["wgscope"]["decrypted"] >= 298
