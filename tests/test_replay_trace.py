"""`wgscope replay --events FILE.wgtrace` writes the binary trace the live node's --events FILE.wgtrace
writes (wgscope/trace/), under the node's name, and `wgscope events` reads it back: the same events,
kind for kind, as the JSON lines of the same replay and as the node itself emitted."""

from __future__ import annotations

import json
from collections import Counter

from wgscope.cli import main
from wgscope.events import TRACE
from wgscope.runtime.lab import LAB_EPOCH, Lab
from wgscope.sinks.capture import CaptureWriter


def test_replay_writes_a_binary_trace_wgscope_events_reads(tmp_path, capsys):
    lab = Lab(seed=5, level=TRACE)
    a, b = lab.alpha_bravo(connect=False)
    cap_path = tmp_path / "alpha.pcapng"
    cap = CaptureWriter(cap_path, a.bus, wall_offset=LAB_EPOCH, name="alpha", warn=None)
    lab.connect(a, b)
    for i in range(6):
        a.ping("10.0.0.2", seq=i)
        lab.run(1)
    lab.run(15)
    cap.close()
    lines, trace = tmp_path / "replayed.jsonl", tmp_path / "replayed.wgtrace"
    for out in (lines, trace):
        assert main(["replay", str(cap_path), "--events", str(out), "--events-level", "trace"]) == 0
    capsys.readouterr()
    assert trace.read_bytes()[:4] != b'{"ev' and trace.stat().st_size > 0
    assert main(["events", str(trace), "--format", "json"]) == 0
    read_back = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    as_lines = [json.loads(line) for line in lines.read_text().splitlines()]
    node_lines = [e for e in as_lines if e.get("node") != "replay"]  # the observer's findings: none here
    assert Counter(e["event"] for e in read_back) == Counter(e["event"] for e in node_lines)
    assert Counter(e["event"] for e in read_back) == Counter(e.name for e in a.recorder.events)
    assert {e.get("node") for e in read_back} == {e.get("node") for e in node_lines} == {"alpha"}
