"""The timer state machine over simulated time (WP §6; WG-GO device/timers.go)."""

from lab_helpers import pair, times

from wgscope.protocol.constants import (
    KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME,
    REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, ZERO_KEY_MATERIAL_AFTER,
)


def test_an_hour_of_traffic_rekeys_near_rekey_after_time():
    lab, a, b = pair()
    for second in range(3600):
        a.ping("10.0.0.2", second % 65536)
        lab.run(1.0)
    assert len(a.echo_replies()) == 3600  # nothing lost across rekeys
    done = times(a, "handshake_completed", role="initiator")
    gaps = [t2 - t1 for t1, t2 in zip(done, done[1:])]
    assert len(done) >= 3600 / (REKEY_AFTER_TIME + 2) - 1
    assert all(REKEY_AFTER_TIME <= g <= REKEY_AFTER_TIME + 2 for g in gaps), gaps
    assert times(b, "handshake_completed", role="responder") and not times(b, "handshake_completed",
                                                                           role="initiator")
    # no keypair ever outlives REJECT_AFTER_TIME in use, and nothing was dropped
    assert not a.recorder.of("packet_dropped") and not b.recorder.of("packet_dropped")


def test_old_keypair_rejected_after_reject_after_time():
    lab, a, b = pair()
    sent = []
    lab.network.taps.append(lambda w: sent.append(w) if w.src == a.endpoint and w.data[0] == 4 else None)
    a.ping("10.0.0.2", 1)
    lab.run(1)
    old = sent[-1]
    lab.advance(REJECT_AFTER_TIME + 1)  # no traffic: nobody rekeys
    b.deliver(old.data, old.src)  # the old session's packet, replayed late
    drop = b.recorder.of("packet_dropped")[-1]
    assert drop.fields["reason"] == "keypair_expired"
    assert b.recorder.of("keypair_expired")[-1].fields["reason"] == "reject_after_time"
    # and sending on it is refused: a fresh handshake happens first
    before = len(times(a, "handshake_initiation_sent"))
    a.ping("10.0.0.2", 2)
    lab.run(1)
    assert len(times(a, "handshake_initiation_sent")) == before + 1
    assert 2 in a.echo_replies()


def test_retries_stop_after_rekey_attempt_time():
    lab, a, b = pair()
    lab.network.blocked.add(("192.0.2.1", "192.0.2.2"))
    a.ping("10.0.0.2", 1)
    lab.advance(600)
    sent = times(a, "handshake_initiation_sent")
    # the first try plus retries while attempts <= MAX_TIMER_HANDSHAKES (WG-GO expiredRetransmitHandshake)
    assert len(sent) == MAX_TIMER_HANDSHAKES + 2
    gaps = [t2 - t1 for t1, t2 in zip(sent, sent[1:])]
    assert all(REKEY_TIMEOUT <= g <= REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX for g in gaps), gaps
    gave_up = a.recorder.of("handshake_gave_up")
    assert len(gave_up) == 1 and gave_up[0].fields["dropped"] == 1
    assert REKEY_ATTEMPT_TIME <= gave_up[0].time <= REKEY_ATTEMPT_TIME + 3 * (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX)
    assert a.peer(b).staged == type(a.peer(b).staged)()


def test_passive_keepalive_after_data_received():
    lab, a, b = pair()
    b.answer_pings = False  # b receives data but has nothing to send back
    a.ping("10.0.0.2", 1)
    lab.run(30)
    ka = b.recorder.of("keepalive_sent")
    assert [e.fields["reason"] for e in ka] == ["passive"]
    data_in = b.recorder.of("keypair_confirmed")[0].time  # the first data packet confirmed the session
    assert abs(ka[0].time - data_in - KEEPALIVE_TIMEOUT) < 0.01


def test_new_handshake_when_we_stop_hearing_back():
    lab, a, b = pair()
    a.ping("10.0.0.2", 1)
    lab.run(1)
    lab.network.blocked.add(("192.0.2.2", "192.0.2.1"))  # replies stop coming
    t0 = lab.now
    a.ping("10.0.0.2", 2)
    lab.run(20)
    fired = [e for e in a.recorder.of("timer_fired") if e.fields["timer"] == "new_handshake"]
    assert fired and KEEPALIVE_TIMEOUT + REKEY_TIMEOUT <= fired[0].time - t0 <= KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + 0.4
    assert times(a, "handshake_initiation_sent")[-1] >= fired[0].time


def test_persistent_keepalive_interval():
    lab, a, b = pair(keepalive=25)
    a.ping("10.0.0.2", 1)
    lab.run(200)
    ka = times(a, "keepalive_sent", reason="persistent")
    gaps = [round(t2 - t1, 3) for t1, t2 in zip(ka, ka[1:])]
    # any authenticated packet (the peer's own keepalive arriving) pushes the timer back a little
    assert len(ka) >= 6 and all(25 <= g <= 25.01 for g in gaps), gaps


def test_key_material_zeroed_after_three_reject_after_times():
    lab, a, b = pair()
    a.ping("10.0.0.2", 1)
    lab.run(1)
    lab.advance(ZERO_KEY_MATERIAL_AFTER + 1)
    for node in (a, b):
        zeroed = node.recorder.of("keypair_zeroed")
        assert zeroed and zeroed[0].fields["reason"] == "zero_key_material_timer"
        assert abs(zeroed[0].time - ZERO_KEY_MATERIAL_AFTER) < 1.5
        peer = node.device.peers[(b if node is a else a).public_key]
        assert peer.keypairs.all() == [] and not node.device.index_table
