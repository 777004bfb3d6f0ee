"""Each anomaly kind, from a real lab capture altered in a known way."""

from __future__ import annotations

import pytest

from wgscope.pcap import parse_frame, read_capture
from wgscope.replay import replay_capture
from wgscope.replay.alter import alter_capture
from wgscope.replay.labcapture import LabCapture
from wgscope.runtime import packets

from test_replay_lab import record_clean, two_nodes


def wire(path):
    """[(frame, time, src, kind byte, size, counter or None)]"""
    out = []
    for p in read_capture(path):
        d = parse_frame(p.linktype, p.data)
        counter = int.from_bytes(d.payload[8:16], "little") if d.payload[0] == 4 else None
        out.append((p.frame_number, p.timestamp, d.src, d.payload[0], len(d.payload), counter))
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = tmp_path_factory.mktemp("lab") / "clean.pcapng"
    record_clean(path)
    base = replay_capture(path)
    assert base.findings == []
    return path, base, wire(path)


def alpha_data(w, session_frames=None):
    """alpha's transport frames with data (not keepalives), in order."""
    return [x for x in w if x[2][0] == "192.0.2.1" and x[3] == 4 and x[4] > 32]


def replay_altered(clean, tmp_path, **alteration):
    path = clean[0]
    out = tmp_path / "altered.pcapng"
    alter_capture(path, out, **alteration)
    return replay_capture(out)


def kinds(r):
    return sorted({f.kind for f in r.findings})


def test_duplicated_packet_is_replayed(clean, tmp_path):
    f = alpha_data(clean[2])[2][0]
    r = replay_altered(clean, tmp_path, duplicate=[f])
    (found,) = r.findings_of("replayed")
    assert found.frames == [f, f + 1]
    assert kinds(r) == ["replayed"]


def test_reordered_packets(clean, tmp_path):
    first, second = alpha_data(clean[2])[1][0], alpha_data(clean[2])[3][0]
    r = replay_altered(clean, tmp_path, move={first: second})
    assert kinds(r) == ["reordered"]
    assert r.findings_of("reordered")[0].extra["counter"] == 1


def test_dropped_packets_are_loss(clean, tmp_path):
    d = alpha_data(clean[2])
    r = replay_altered(clean, tmp_path, drop=[d[2][0], d[3][0]])
    (loss,) = r.findings_of("loss")
    assert loss.extra["missing"] == 2 and "counters 2-3" in loss.detail
    assert loss.frames == [d[1][0], d[4][0] - 2]  # the frames around the gap, renumbered after the drop
    assert kinds(r) == ["loss"]


def test_corrupted_ciphertext_fails_decryption(clean, tmp_path):
    f = alpha_data(clean[2])[4][0]
    r = replay_altered(clean, tmp_path, corrupt={f: (30, 0x01)})
    assert [x.frames for x in r.findings_of("decryption_failed")] == [[f]]
    # The receiver never accepted that counter; re-executed, the sender's own key does not open it.
    assert kinds(r) == ["decryption_failed", "divergence", "loss"]
    assert "none of its own keypairs seals" in r.findings_of("divergence")[0].detail


def test_unknown_receiver_index(clean, tmp_path):
    f = alpha_data(clean[2])[4][0]
    r = replay_altered(clean, tmp_path, corrupt={f: (4, 0x5A)})
    assert [x.frames for x in r.findings_of("unknown_receiver_index")] == [[f]]
    assert len(r.sessions) == 2  # the stray index is not taken for a session


def test_bad_mac1(clean, tmp_path):
    rekey = [x for x in clean[2] if x[3] == 1][1][0]
    r = replay_altered(clean, tmp_path, corrupt={rekey: (116 + 3, 0x80)})
    assert [x.frames for x in r.findings_of("bad_mac1")] == [[rekey]]
    assert r.handshakes[1].outcome == "rejected"


def test_keepalive_late(clean, tmp_path):
    keepalive = [x for x in clean[2] if x[3] == 4 and x[4] == 32 and x[2][0] == "192.0.2.1"][0]
    r = replay_altered(clean, tmp_path, shift={keepalive[0]: 3.0})
    (k,) = r.findings_of("keepalive_timing")
    assert keepalive[0] in k.frames and 12.9 < k.extra["delay"] < 13.1
    # Re-executed, alpha's core sent that keepalive 3 s earlier than the wire shows it.
    (d,) = r.findings_of("divergence")
    assert d.frames == [keepalive[0]] and "sent a keepalive 3.0" in d.detail
    assert kinds(r) == ["divergence", "keepalive_timing"]


def test_rekey_late_and_expired_keypair(clean, tmp_path):
    base = clean[1]
    s1 = base.sessions[0]
    # Everything from alpha's data packet at session age ~100 s on is delayed by 25 s: alpha then
    # keeps sending on session 1 past REKEY_AFTER_TIME without a rekey.
    late = next(x for x in alpha_data(clean[2]) if x[1] - s1.created > 95)
    r = replay_altered(clean, tmp_path, shift_from=(late[0], 25.0))
    assert "rekey_timing" in kinds(r)
    # Delayed by 90 s instead: the data now travels on a keypair past REJECT_AFTER_TIME.
    r = replay_altered(clean, tmp_path, shift_from=(late[0], 90.0))
    (e,) = r.findings_of("expired_keypair")
    assert e.frames == [late[0]]


def test_rekey_early(clean, tmp_path):
    base = clean[1]
    rekey_frame = base.handshakes[1].frame
    s1 = base.sessions[0]
    # Cut 50 s out of the middle: the rekey now happens at session age ~75 s.
    cut = [x[0] for x in clean[2] if s1.created + 70 < x[1] < s1.created + 120.5 and x[0] < rekey_frame]
    r = replay_altered(clean, tmp_path, drop=cut, shift_from=(rekey_frame, -50.0))
    (f,) = r.findings_of("rekey_timing")
    assert 60 < f.extra["age"] < 80


def test_unanswered_handshakes_and_retry_timing(tmp_path):
    path = tmp_path / "blocked.pcapng"
    lab, a, b = two_nodes(seed=5)
    lab.network.blocked.add(("192.0.2.1", "192.0.2.2"))
    with LabCapture(lab, path):
        a.ping("10.0.0.2")
        lab.run(17)
    r = replay_capture(path)
    assert [h.attempt for h in r.handshakes] == [1, 2, 3, 4]
    (u,) = r.findings_of("handshake_unanswered")
    assert u.frames == [1, 2, 3, 4] and u.extra["attempts"] == 4
    assert r.findings_of("retry_timing") == []
    out = tmp_path / "early.pcapng"
    alter_capture(path, out, shift={3: -2.0})
    r = replay_capture(out)
    assert [f.frames for f in r.findings_of("retry_timing")] == [[2, 3], [3, 4]]


def test_bad_mac2(tmp_path):
    path = tmp_path / "load.pcapng"
    lab, a, b = two_nodes(seed=3)
    b.device.set_forced_load(True, lab.now)
    with LabCapture(lab, path):
        a.ping("10.0.0.2", seq=1)
        lab.run(8)
    w = wire(path)
    with_mac2 = [x[0] for x in w if x[3] == 1][1]
    out = tmp_path / "bad.pcapng"
    alter_capture(path, out, corrupt={with_mac2: (140, 0x10)})
    r = replay_capture(path)
    assert r.findings_of("bad_mac2") == [] and r.handshakes[1].mac2
    r = replay_capture(out)
    assert [f.frames for f in r.findings_of("bad_mac2")] == [[2, with_mac2]]


def test_counter_outside_window(tmp_path):
    path = tmp_path / "window.pcapng"
    lab, a, b = two_nodes(seed=7)
    with LabCapture(lab, path):
        a.ping("10.0.0.2")
        lab.run(1)
        for i in range(8200):
            a.send_packet(packets.udp("10.0.0.1", 4000, "10.0.0.2", 5000, b"x"))
        lab.run(1)
    w = wire(path)
    early = next(x[0] for x in w if x[5] == 3 and x[2][0] == "192.0.2.1")
    out = tmp_path / "old.pcapng"
    alter_capture(path, out, move={early: w[-1][0]})
    r = replay_capture(out)
    (f,) = r.findings_of("counter_outside_window")
    assert f.extra["counter"] == 3 and f.frames == [len(w)]
    assert "loss" not in kinds(r) or all(x.extra["missing"] == 1 for x in r.findings_of("loss"))


def test_source_outside_allowed_ips_with_config(clean, tmp_path):
    from wgscope.keytext import encode

    path, base, w = clean
    alpha = next(p for p in base.parties if p.initiations)
    conf = tmp_path / "bravo.conf"
    conf.write_text(f"[Interface]\nPrivateKey = {encode(bytes(32))[:-2]}A=\n\n[Peer]\nPublicKey = {alpha.key_text}\n"
                    "AllowedIPs = 10.9.0.0/24\n")
    r = replay_capture(path, configs=[str(conf)])
    found = r.findings_of("source_not_allowed")
    assert len(found) == 23 and found[0].extra["src"] == "10.0.0.1"
    conf.write_text(conf.read_text().replace("10.9.0.0/24", "10.0.0.1/32"))
    assert replay_capture(path, configs=[str(conf)]).findings_of("source_not_allowed") == []


def test_replayed_initiation(clean, tmp_path):
    r = replay_altered(clean, tmp_path, duplicate=[1])
    (f,) = r.findings_of("replayed")
    assert f.frames == [1, 2] and "initiation" in f.detail
    assert len(r.sessions) == 2 and r.handshakes[1].outcome == "rejected"
