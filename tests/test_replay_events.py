"""Replay is the node (issue 13): a lab node's own capture, replayed, re-executes that node through
the same Device and emits the same events — kind for kind, and handshake and keypair events in
the same order — through faults (loss, duplication, reordering, a blocked path with retries, a
rekey, expiry) and forged datagrams sent at it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lab_helpers import recording_node_bus
from test_replay_lab import psk_mismatch_from_alpha

from wgscope.events import TRACE
from wgscope.replay import replay_capture
from wgscope.runtime.lab import LAB_EPOCH, Faults, Lab
from wgscope.sinks.capture import CaptureWriter

ORDERED = ("handshake", "session")  # categories whose order must match, not only their counts
EVIL = ("203.0.113.9", 4444)


def forge(lab, target, rng, replay_of: bytes | None = None) -> None:
    """Forged datagrams of every type at `target`: random transport (random index and counter),
    random bytes, a random initiation, response and cookie reply, truncated messages, and a
    byte-for-byte copy of a real handshake message."""
    send = lambda data: lab.network.send(EVIL, target.endpoint, data)  # noqa: E731
    send(bytes([4, 0, 0, 0]) + rng.randbytes(28 + rng.randrange(64)))
    send(rng.randbytes(rng.randrange(1, 200)))
    send(bytes([1, 0, 0, 0]) + rng.randbytes(144))
    send(bytes([2, 0, 0, 0]) + rng.randbytes(88))
    send(bytes([3, 0, 0, 0]) + rng.randbytes(60))
    send(bytes([1, 0, 0, 0]) + rng.randbytes(20))
    send(bytes([9, 0, 0, 0]) + rng.randbytes(40))
    if replay_of is not None:
        send(replay_of)


def scenario(tmp_path, who: str):
    lab = Lab(seed=4, faults=Faults(loss=0.08, duplicate=0.05, reorder=0.1), level=TRACE)
    a, b = lab.alpha_bravo(connect=False)
    # bravo learns alpha's endpoint from its initiation (a key log does not carry configured endpoints)
    lab.connect(a, b, b_knows_endpoint=False)
    node = a if who == "alpha" else b
    path = tmp_path / f"{who}.pcapng"
    cap = CaptureWriter(path, node.bus, wall_offset=LAB_EPOCH, name=who, warn=None)
    first: list[bytes] = []
    lab.network.taps.append(lambda w: first.append(w.data) if w.data[:1] == b"\x01" and not first else None)
    rng = random.Random(7)
    for i in range(30):
        a.ping("10.0.0.2", seq=i)
        lab.run(0.5)
        if i % 10 == 5:
            forge(lab, node, rng, first[0] if first else None)
    lab.network.blocked.add(("192.0.2.2", "192.0.2.1"))  # bravo's answers lost: alpha retries
    for i in range(3):
        a.ping("10.0.0.2", seq=100 + i)
        lab.run(8)
    lab.network.blocked.clear()
    for i in range(14):  # past REKEY_AFTER_TIME: a rekey
        a.ping("10.0.0.2", seq=200 + i)
        lab.run(10)
    lab.run(200)  # idle: keys expire, then zeroing
    cap.close()
    return path, node


@pytest.mark.parametrize("who", ["alpha", "bravo"])
def test_replayed_node_emits_the_live_nodes_events(tmp_path, who):
    path, node = scenario(tmp_path, who)
    rec, node_bus = recording_node_bus(who)  # the name from the capture's key log comments

    r = replay_capture(path, node_bus=node_bus)
    live = Counter(e.name for e in node.recorder.events)
    replayed = Counter(e.name for e in rec.events)
    assert replayed == live
    assert len(live) >= 20, sorted(live)  # the scenario reaches most of the catalogue
    from wgscope.events import CATALOGUE

    def ordered(events):
        return [(e.name, e.peer, {k: v for k, v in e.fields.items() if k != "rtt"}) for e in events
                if CATALOGUE[e.name].category in ORDERED]

    assert ordered(rec.events) == ordered(node.recorder.events)
    (summary,) = r.nodes
    assert summary["divergences"] == 0 and not summary["unknown_inputs"]
    assert [f for f in r.findings if f.kind == "divergence"] == []


def test_psk_mismatch_is_what_the_node_said(tmp_path):
    """bravo has a pre-shared key, alpha none: alpha rejects every response (decryption_failed).
    Its capture, replayed, says so too — no "completed" handshake, the same rejections, and the
    annotated copy agrees with alpha's own verdict on every frame."""
    from wgscope.cli import main
    from wgscope.pcap import read_capture
    from wgscope.sinks.capture import parse_comment

    path, a = psk_mismatch_from_alpha(tmp_path, seconds=16)
    rec, node_bus = recording_node_bus()

    r = replay_capture(path, node_bus=node_bus, annotate=True)
    rejected = [e.fields["reason"] for e in a.recorder.of("handshake_response_rejected")]
    assert len(rejected) >= 3 and set(rejected) == {"decryption_failed"}
    assert [e.fields["reason"] for e in rec.of("handshake_response_rejected")] == rejected
    # (the ping alpha staged never left: no session came. A capture cannot show a packet that
    # never reached the wire, so its route_found and packet_staged are the node's alone.)
    unseen = {"route_found", "packet_staged"}
    assert Counter(e.name for e in rec.events) == Counter(e.name for e in a.recorder.events if e.name not in unseen)
    assert not [h for h in r.handshakes if h.outcome == "completed"]
    assert {h.outcome for h in r.handshakes if h.response_frame} == {"rejected"}
    assert r.findings_of("decryption_failed")
    out = tmp_path / "annotated.pcapng"
    assert main(["replay", str(path), "--annotate", str(out)]) == 0
    for original, annotated in zip(read_capture(path), read_capture(out)):
        theirs = parse_comment(original.comment)
        ours = parse_comment(annotated.comment.splitlines()[-1])
        assert (ours["verdict"], ours.get("reason")) == (theirs["verdict"], theirs.get("reason"))
    from wgscope.doctor.capture import diagnose_capture

    codes = {f.code for f in diagnose_capture(str(path))[0]}
    assert "capture_psk_mismatch" in codes and "capture_healthy" not in codes


def test_forced_load_and_cookies(tmp_path):
    """A node forced under load answers an initiation with a cookie reply, then accepts the retry
    with mac2. No capture carries the forcing: the cookie reply the node sent shows it. Replayed,
    the same events, the cookie reply compared by kind (its secret is in no capture)."""
    lab = Lab(seed=7, level=TRACE)
    a, b = lab.alpha_bravo(connect=False)
    path = tmp_path / "alpha.pcapng"
    cap = CaptureWriter(path, a.bus, wall_offset=LAB_EPOCH, name="alpha", warn=None)
    lab.connect(a, b, psk=bytes(range(32)))
    a.ping("10.0.0.2", 1)
    lab.run(1)
    a.device.set_forced_load(True, lab.now)
    lab.advance(200)
    b.ping("10.0.0.1", 3)
    lab.run(8)
    a.device.set_forced_load(None, lab.now)
    lab.run(1)
    lab.advance(200)  # bravo's cookie is stale: an initiation without mac2, taken, shows the forcing ended
    b.ping("10.0.0.1", 4)
    lab.run(8)
    cap.close()
    assert a.recorder.of("cookie_reply_sent")
    rec, node_bus = recording_node_bus()

    r = replay_capture(path, node_bus=node_bus)
    assert Counter(e.name for e in rec.events) == Counter(e.name for e in a.recorder.events)
    (summary,) = r.nodes
    assert summary["divergences"] == 0 and summary["compared_by_kind"] == {"cookie_reply": 1}
    assert summary["unknown_inputs"] == ["cookie secret"]


def test_forced_load_throughout_enters_once(tmp_path):
    """A node forced under load for its whole run (`wgscope up --force-under-load`) answers two
    handshakes with cookie replies, each then taken with mac2: it entered the load state once and
    never left. Replayed, the same: not once around each cookie-answered message."""
    lab = Lab(seed=8, level=TRACE)
    a, b = lab.alpha_bravo(connect=False)
    path = tmp_path / "alpha.pcapng"
    cap = CaptureWriter(path, a.bus, wall_offset=LAB_EPOCH, name="alpha", warn=None)
    lab.connect(a, b, a_knows_endpoint=False)  # learnt from bravo's initiation, live and replayed alike
    a.device.set_forced_load(True, lab.now)
    for i in range(2):  # bravo's keys expired each time (REJECT_AFTER_TIME): a new handshake it starts
        lab.advance(200)
        b.ping("10.0.0.1", i)
        lab.run(8)
    cap.close()
    assert len(a.recorder.of("cookie_reply_sent")) == 2 and len(a.recorder.of("under_load_entered")) == 1
    assert not a.recorder.of("under_load_left")
    rec, node_bus = recording_node_bus()

    r = replay_capture(path, node_bus=node_bus)
    assert Counter(e.name for e in rec.events) == Counter(e.name for e in a.recorder.events)
    (summary,) = r.nodes
    assert summary["divergences"] == 0 and summary["compared_by_kind"] == {"cookie_reply": 2}
