"""mac1/mac2 and the cookie exchange (WP §5.3, §5.4.4, §5.4.7)."""

import os

from lab_helpers import pair, times

from wgscope.protocol.constants import COOKIE_REFRESH_TIME, REKEY_TIMEOUT
from wgscope.protocol.cookie import CookieChecker, CookieGenerator, endpoint_bytes
from wgscope.protocol.crypto import AuthenticationError
from wgscope.protocol.entropy import Entropy, generate_private_key
from wgscope.protocol.messages import parse_cookie_reply
from wgscope.protocol.noise import StaticIdentity


def _msg():
    return os.urandom(116) + bytes(32)  # an initiation-sized body with empty macs


def test_mac1_mac2_and_cookie_roundtrip():
    me = StaticIdentity(generate_private_key())
    checker = CookieChecker(me.mac1_key, me.cookie_key, Entropy())
    gen = CookieGenerator(me.public)
    src = endpoint_bytes("192.0.2.7", 40000)
    msg, mac2 = gen.add_macs(_msg(), now=0.0)
    assert not mac2 and checker.check_mac1(msg) and not checker.check_mac2(msg, src, 0.0)
    reply = parse_cookie_reply(checker.create_reply(msg, 99, src, now=0.0))
    assert reply.receiver == 99
    gen.consume_reply(reply, now=0.0)
    msg2, mac2 = gen.add_macs(_msg(), now=1.0)
    assert mac2 and checker.check_mac1(msg2) and checker.check_mac2(msg2, src, 1.0)
    assert not checker.check_mac2(msg2, endpoint_bytes("192.0.2.8", 40000), 1.0)  # bound to the source
    assert not checker.check_mac2(msg2, src, COOKIE_REFRESH_TIME + 1)  # secret rotated away
    _, mac2 = gen.add_macs(_msg(), now=COOKIE_REFRESH_TIME + 1)
    assert not mac2  # our cookie is stale too


def test_cookie_reply_bound_to_last_mac1():
    me = StaticIdentity(generate_private_key())
    checker = CookieChecker(me.mac1_key, me.cookie_key, Entropy())
    gen = CookieGenerator(me.public)
    src = endpoint_bytes("2001:db8::1", 1)
    msg, _ = gen.add_macs(_msg(), 0.0)
    reply = parse_cookie_reply(checker.create_reply(msg, 1, src, 0.0))
    gen.add_macs(_msg(), 0.0)  # another message went out since: its mac1 is the AD now
    try:
        gen.consume_reply(reply, 0.0)
        raise AssertionError("stale cookie reply accepted")
    except AuthenticationError:
        pass


def test_wrong_mac1_dropped():
    lab, a, b = pair()
    sent = []
    lab.network.taps.append(lambda w: sent.append(w))
    a.ping("10.0.0.2", 1)
    lab.run(1)
    lab.advance(30)
    init = bytearray(next(w.data for w in sent if w.data[0] == 1))
    init[-20] ^= 1  # inside mac1
    b.deliver(bytes(init), a.endpoint)
    assert b.recorder.of("handshake_initiation_rejected")[-1].fields["reason"] == "bad_mac1"


def test_forced_load_cookie_exchange_completes_with_mac2():
    lab, a, b = pair()
    b.device.set_forced_load(True, lab.now)
    a.ping("10.0.0.2", 1)
    lab.run(REKEY_TIMEOUT + 1)
    assert [e.fields["reason"] for e in b.recorder.of("handshake_initiation_rejected")] == ["bad_mac2"]
    assert len(b.recorder.of("cookie_reply_sent")) == 1
    assert len(a.recorder.of("cookie_reply_received")) == 1
    sent = a.recorder.of("handshake_initiation_sent")
    assert [e.fields["mac2"] for e in sent] == [False, True]
    assert a.recorder.of("cookie_used")
    assert times(a, "handshake_completed") and a.echo_replies() == [1]


def test_flood_of_initiations_enters_and_leaves_load():
    lab, a, b = pair()
    caught = []
    lab.network.taps.append(lambda w: caught.append(w) if w.data[0] == 1 else None)
    a.ping("10.0.0.2", 1)
    lab.run(1)
    init = caught[0].data
    for i in range(300):  # valid mac1, replayed body: a cheap flood
        b.deliver(init, ("198.51.100.9", 1000 + i))
    assert b.recorder.of("under_load_entered")
    assert any(e.fields["reason"] == "bad_mac2" for e in b.recorder.of("handshake_initiation_rejected"))
    lab.run(3)
    assert b.recorder.of("under_load_left")
