"""A re-executed side's consecutive sends go through Device.send_packets as one run (node.py
`_run`/`flush`), as the live node feeds a TUN read: the same events as the live node, and the same
agreement, findings and verdicts as feeding them one by one (the path --annotate takes)."""

from __future__ import annotations

from collections import Counter

from lab_helpers import recording_node_bus

from wgscope.events import TRACE
from wgscope.replay import replay_capture
from wgscope.replay.node import ReplayNode
from wgscope.runtime.lab import LAB_EPOCH, Faults, Lab
from wgscope.sinks.capture import CaptureWriter


def bursts(tmp_path):
    """Bursts of pings both ways (several sends at one instant), some lost or reordered, past a rekey."""
    lab = Lab(seed=3, faults=Faults(loss=0.05, reorder=0.1), level=TRACE)
    a, b = lab.alpha_bravo(connect=False)
    path = tmp_path / "alpha.pcapng"
    cap = CaptureWriter(path, a.bus, wall_offset=LAB_EPOCH, name="alpha", warn=None)
    lab.connect(a, b, b_knows_endpoint=False)
    a.ping("10.0.0.2", seq=99)  # the handshake first, so the bursts below ride a session
    lab.run(1)
    for round_ in range(16):
        for i in range(12):
            a.ping("10.0.0.2", seq=round_ * 100 + i)
        b.ping("10.0.0.1", seq=round_)
        lab.run(10)
    cap.close()
    return path, a


def test_runs_of_sends_match_the_live_node_and_one_by_one(tmp_path, monkeypatch):
    path, a = bursts(tmp_path)
    runs: list[int] = []
    flush = ReplayNode.flush

    def counting(self):
        if self.batch:
            runs.append(len(self.batch))
        flush(self)

    monkeypatch.setattr(ReplayNode, "flush", counting)
    rec, node_bus = recording_node_bus()

    batched = replay_capture(path, node_bus=node_bus)
    assert max(runs) >= 10  # a burst was one run
    assert Counter(e.name for e in rec.events) == Counter(e.name for e in a.recorder.events)
    runs.clear()
    one_by_one = replay_capture(path, annotate=True)
    assert runs == []  # --annotate judges each datagram as it is sent: no runs
    (n1,), (n2,) = batched.nodes, one_by_one.nodes
    assert n1 == n2 and n1["divergences"] == 0 and n1["agreed"]["transport"] >= 150
    assert [(f.kind, f.frames) for f in batched.findings] == [(f.kind, f.frames) for f in one_by_one.findings]


def test_a_burst_staged_before_the_first_handshake_gives_the_nodes_events(tmp_path):
    """Five pings at one instant with no session: the node stages them all, makes one initiation
    and skips one for each later packet (rate limited). Replay feeds the later ones one by one, so
    it says the same, event for event (it once fed them as one group: one skip instead of four)."""
    lab = Lab(seed=3, level=TRACE)
    a, b = lab.alpha_bravo(connect=False)
    path = tmp_path / "alpha.pcapng"
    cap = CaptureWriter(path, a.bus, wall_offset=LAB_EPOCH, name="alpha", warn=None)
    lab.connect(a, b, b_knows_endpoint=False)
    for i in range(5):
        a.ping("10.0.0.2", seq=i)
    lab.run(3)
    cap.close()
    rec, node_bus = recording_node_bus()
    replay_capture(path, node_bus=node_bus)

    def story(events):
        return [(e.name, e.fields.get("reason")) for e in events]

    assert Counter(e.name for e in a.recorder.events)["handshake_initiation_skipped"] == 4
    assert story(rec.events) == story(a.recorder.events)
