"""Replaying lab captures reproduces what the nodes reported."""

from __future__ import annotations

import pytest

from lab_helpers import pair

from wgscope.events import DEBUG, TRACE
from wgscope.replay import replay_capture
from wgscope.replay.labcapture import LabCapture
from wgscope.runtime.lab import LAB_EPOCH, Lab
from wgscope.sinks.capture import CaptureWriter

PSK = bytes(range(32))


def two_nodes(seed=1, **kw):
    return pair(seed=seed, level=DEBUG, **kw)


def psk_mismatch_from_alpha(tmp_path, seconds=12):
    """bravo has a pre-shared key for alpha, alpha none; alpha's own capture (its keys in the DSB)
    of `seconds` of pinging: alpha rejects every response. Returns (path, alpha)."""
    lab = Lab(seed=9, level=TRACE)
    a, b = lab.alpha_bravo()
    b.device.set_preshared_key(b.device.peers[a.public_key], PSK)
    path = tmp_path / "alpha.pcapng"
    cap = CaptureWriter(path, a.bus, wall_offset=LAB_EPOCH, name="alpha", warn=None)
    a.ping("10.0.0.2")
    lab.run(seconds)
    cap.close()
    return path, a


def psk_mismatch_from_bravo(tmp_path):
    """The same mismatch captured at bravo, the responder, with only bravo's keys: bravo's responses
    open under bravo's own PSK, alpha rejects them. Returns (path, alpha, bravo)."""
    lab, a, b = two_nodes(seed=2)
    b.device.set_preshared_key(b.device.peers[a.public_key], PSK)
    path = tmp_path / "bravo.pcapng"
    with LabCapture(lab, path, nodes=[b]):
        a.ping("10.0.0.2")
        lab.run(12)
    return path, a, b


def busy_then_rekey(lab, a):
    """Pings for 5 s, 15 s idle (a passive keepalive), then a ping every 10 s to 200 s (a rekey at 120 s)."""
    for i in range(5):
        a.ping("10.0.0.2", seq=i)
        lab.run(1.0)
    lab.run(15)
    for i in range(18):
        a.ping("10.0.0.2", seq=100 + i)
        lab.run(10)
    lab.run(2)


def record_clean(path):
    """A clean two-node capture of busy_then_rekey at `path` (no anomaly in it); (lab, alpha, bravo)."""
    lab, a, b = two_nodes()
    with LabCapture(lab, path):
        busy_then_rekey(lab, a)
    return lab, a, b


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = tmp_path_factory.mktemp("lab") / "clean.pcapng"
    return (path, *record_clean(path))


def test_replay_reproduces_what_the_nodes_reported(clean):
    path, lab, a, b = clean
    r = replay_capture(path)
    pa, pb = a.peer(b), b.peer(a)
    # Handshakes and sessions: every keypair alpha created as initiator is a session in the replay.
    created = [e for e in a.recorder.of("keypair_created") if e.fields["role"] == "initiator"]
    assert len(r.sessions) == len(created) == pa.handshakes_completed >= 2
    assert [s.initiator_index for s in r.sessions] == [e.fields["local_index"] for e in created]
    assert [s.responder_index for s in r.sessions] == [e.fields["remote_index"] for e in created]
    assert all(h.outcome == "completed" for h in r.handshakes)
    assert all(s.decryptable for s in r.sessions)
    # Parties are identified by their static keys.
    keys = {p.public_key for p in r.parties}
    assert keys == {a.public_key, b.public_key}
    alpha = next(p for p in r.parties if p.public_key == a.public_key)
    bravo = next(p for p in r.parties if p.public_key == b.public_key)
    # Decrypted packet counts match the nodes' counters (no loss in this lab).
    assert alpha.tx_packets == pa.tx_packets == pb.rx_packets == alpha.decrypted
    assert bravo.tx_packets == pb.tx_packets == pa.rx_packets == bravo.decrypted
    assert alpha.keepalives == pa.keepalives_sent
    assert alpha.tx_bytes == pa.tx_bytes and bravo.tx_bytes == pb.tx_bytes
    # Inner packets: the pings and their replies.
    assert r.inner["icmp 10.0.0.1 > 10.0.0.2"] == 23 == r.inner["icmp 10.0.0.2 > 10.0.0.1"]
    # A clean capture has no findings.
    assert r.findings == [], [f.as_dict() for f in r.findings]
    # The rekey: the second session begins a little after REKEY_AFTER_TIME.
    assert 120 <= r.sessions[1].created - r.sessions[0].created < 131


def test_both_sides_of_a_capture_are_re_executed(clean):
    """A capture between two nodes whose keys it holds (DSB): each side is its own Device, the
    datagrams that reached it in, its own sends compared byte for byte."""
    from wgscope.events import EventBus, EventRecorder, INFO

    path, lab, a, b = clean
    recorders = {}

    def node_bus(name):
        bus = recorders.setdefault(name, (EventBus(INFO), EventRecorder()))[0]
        bus.subscribe(recorders[name][1], INFO)
        return bus

    r = replay_capture(path, node_bus=node_bus)
    assert [n["divergences"] for n in r.nodes] == [0, 0]
    assert {n["name"] for n in r.nodes} == set(recorders)
    by_key = {n.public_key: n for n in (a, b)}
    from wgscope.keytext import encode

    for name, (_, rec) in recorders.items():
        node = by_key[next(k for k in by_key if encode(k) == name)]
        for kind in ("handshake_initiation_consumed", "handshake_completed", "keypair_created",
                     "handshake_initiation_sent", "handshake_response_sent"):
            # (a capture beside the sender stamps a datagram when sent: rtt is one delay shorter)
            def fields(events):
                return [{k: v for k, v in e.fields.items() if k != "rtt"} for e in events]
            assert fields(rec.of(kind)) == fields(node.recorder.of(kind)), kind
    agreed = sum(sum(n["agreed"].values()) for n in r.nodes)
    assert agreed == r.wireguard  # every datagram either side sent was produced by its core, byte for byte


def test_partial_decryption_still_yields_headers(clean, tmp_path):
    """Without the DSB: no keys at all, then static keys only."""
    from wgscope.replay.alter import alter_capture
    from wgscope.keytext import encode

    path, lab, a, b = clean
    bare = tmp_path / "bare.pcapng"
    alter_capture(path, bare, secrets=False)
    full = replay_capture(path)
    r = replay_capture(bare)
    assert r.kinds == full.kinds
    assert [(s.initiator_index, s.responder_index) for s in r.sessions] == \
        [(s.initiator_index, s.responder_index) for s in full.sessions]
    assert [f.packets for s in r.sessions for f in s.flows()] == [f.packets for s in full.sessions for f in s.flows()]
    assert [f.max_counter for s in r.sessions for f in s.flows()] == \
        [f.max_counter for s in full.sessions for f in s.flows()]
    assert all(p.public_key is None for p in r.parties) and len(r.parties) == 2
    assert any("no keys" in n for n in r.notices)
    assert r.findings == []
    # Static private keys only: peers and handshakes identified, transport sealed, said plainly.
    keylog = tmp_path / "static.keys"
    keylog.write_text(f"LOCAL_STATIC_PRIVATE_KEY = {encode(b.device.identity.private)}\n")
    r = replay_capture(bare, keylogs=[str(keylog)])
    assert {p.public_key for p in r.parties} == {a.public_key, b.public_key}
    assert all(h.identified for h in r.handshakes)
    assert all(not s.decryptable and s.sealed_reason == "no_ephemeral_key" for s in r.sessions)
    assert any("ephemeral" in n for n in r.notices)
    assert sum(p.decrypted for p in r.parties) == 0


def test_roaming_and_cookies_are_reconstructed(tmp_path):
    path = tmp_path / "roam.pcapng"
    lab, a, b = two_nodes(seed=3)
    b.device.set_forced_load(True, lab.now)
    with LabCapture(lab, path):
        a.ping("10.0.0.2", seq=1)
        lab.run(12)  # cookie reply, then a retry with mac2 after REKEY_TIMEOUT
        b.device.set_forced_load(False, lab.now)
        a.move("198.51.100.7")
        a.ping("10.0.0.2", seq=2)
        lab.run(1)
    r = replay_capture(path)
    assert len(r.cookies) == 1 and r.cookies[0].decrypted
    assert any(h.mac2 for h in r.handshakes)
    assert r.handshakes[-1].outcome == "completed"
    assert [(str(x.old[0]), str(x.new[0])) for x in r.roams] == [("192.0.2.1", "198.51.100.7")]
    assert r.findings_of("bad_mac2") == []


def test_ipv6_underlay(tmp_path):
    path = tmp_path / "v6.pcapng"
    lab = Lab(seed=2)
    a = lab.add_node("alpha", "2001:db8::1", 51820, tunnel="fd00::1/64")
    b = lab.add_node("bravo", "2001:db8::2", 51821, tunnel="fd00::2/64")
    lab.connect(a, b)
    with LabCapture(lab, path):
        a.ping("fd00::2")
        lab.run(1)
    r = replay_capture(path)
    assert len(r.sessions) == 1 and r.sessions[0].decryptable
    assert r.inner == {"icmpv6 fd00::1 > fd00::2": 1, "icmpv6 fd00::2 > fd00::1": 1}
    assert {p.endpoint for p in r.parties} == {("2001:db8::1", 51820), ("2001:db8::2", 51821)}


def test_a_pre_shared_key_is_never_guessed(clean, tmp_path):
    """Ephemeral keys without the PRESHARED_KEY lines: the observer cannot verify the responses
    (it does not try the all-zero key on its own); with the lines, it can."""
    from wgscope.replay.alter import alter_capture
    from wgscope.pcap import read_capture_secrets

    path, lab, a, b = clean
    bare = tmp_path / "bare.pcapng"
    alter_capture(path, bare, secrets=False)
    lines = "".join(read_capture_secrets(path)).splitlines()
    without = tmp_path / "no-psk.keys"
    without.write_text("\n".join(x for x in lines if not x.startswith("PRESHARED_KEY")) + "\n")
    r = replay_capture(bare, keylogs=[str(without)], reexecute_sides=False)
    assert {h.outcome for h in r.handshakes} == {"completed"}  # confirmed by the initiator's data on the session
    assert all(not s.decryptable and s.sealed_reason == "psk_unknown" for s in r.sessions)
    assert any("pre-shared key" in n for n in r.notices)
    with_psk = tmp_path / "psk.keys"
    with_psk.write_text("\n".join(lines) + "\n")
    r = replay_capture(bare, keylogs=[str(with_psk)], reexecute_sides=False)
    assert all(s.decryptable for s in r.sessions)


def test_an_unconfirmed_response_is_not_completed(tmp_path):
    """A response whose keys are unknown and that no data follows is "unverified", never "completed"."""
    from wgscope.replay.alter import alter_capture

    path = tmp_path / "one.pcapng"
    lab, a, b = two_nodes(seed=13)
    with LabCapture(lab, path):
        a.ping("10.0.0.2")
        lab.run(1)
    bare = tmp_path / "bare.pcapng"
    alter_capture(path, bare, secrets=False, drop=[3, 4])  # only the initiation and the response remain
    r = replay_capture(bare)
    assert [h.outcome for h in r.handshakes] == ["unverified"]


def test_a_response_opened_under_the_responders_psk_only_is_not_completed(tmp_path, capsys):
    """Only bravo's keys in the capture, and bravo has a PSK that alpha lacks: bravo's responses open
    under bravo's own PSK, which says nothing of alpha's. Alpha never sends on those sessions, so no
    handshake is "completed"; the summary and the ladder say the initiator never used them."""
    from wgscope.cli import main

    path, a, _ = psk_mismatch_from_bravo(tmp_path)
    assert a.recorder.of("handshake_response_rejected")  # the live alpha rejected every response
    r = replay_capture(path, reexecute_sides=False)
    assert r.handshakes and "completed" not in {h.outcome for h in r.handshakes}
    assert {h.reason for h in r.handshakes if h.response_frame} == {"unconfirmed"}
    main(["replay", str(path)])
    out = capsys.readouterr().out
    assert " 0 completed" in out and "never used by the initiator" in out
    assert "not confirmed by the initiator" in out  # on the response's row of the ladder
