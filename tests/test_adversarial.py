"""Malicious packets: each dropped with a specific event and no change to protocol state."""

import os
import struct

import pytest
from adversary import Capture, fingerprint
from lab_helpers import pair

from wgscope.protocol import crypto
from wgscope.protocol.constants import REJECT_AFTER_TIME, REPLAY_WINDOW_SIZE, ZERO_KEY_MATERIAL_AFTER
from wgscope.protocol.messages import CookieReply, pack_cookie_reply
from wgscope.runtime import packets


@pytest.fixture
def session():
    lab, a, b = pair()
    cap = Capture(lab)
    a.ping("10.0.0.2", 1)
    lab.run(1)
    assert a.echo_replies() == [1]
    return lab, a, b, cap


def dropped(node, event, reason):
    """Assert the node's last event of this kind has this reason."""
    evs = node.recorder.of(event)
    assert evs, f"no {event}"
    assert evs[-1].fields["reason"] == reason, evs[-1]


def attack(lab, target, data, src, event, reason):
    lab.run(1)
    before = fingerprint(target.device)
    target.recorder.clear()
    target.deliver(data, src)
    dropped(target, event, reason)
    assert fingerprint(target.device) == before
    assert not [e for e in target.recorder.events if e.name in ("handshake_completed", "keypair_created",
                                                                 "endpoint_changed")]


def test_replayed_initiation_stale_timestamp(session):
    lab, a, b, cap = session
    init = cap.of_type(1)[0]
    attack(lab, b, init.data, ("203.0.113.66", 999), "handshake_initiation_rejected", "stale_timestamp")


def test_replayed_response(session):
    lab, a, b, cap = session
    resp = cap.of_type(2)[0]
    attack(lab, a, resp.data, ("203.0.113.66", 999), "handshake_response_rejected", "wrong_state")


def test_initiation_from_unknown_static_key(session):
    lab, a, b, cap = session
    stranger = lab.add_node("mallory", "203.0.113.66", 51820, tunnel="10.0.0.66/24")
    stranger.device.add_peer(b.public_key, endpoint=b.endpoint, allowed_ips=["10.0.0.2/32"])
    lab.run(1)
    before = fingerprint(b.device)
    stranger.ping("10.0.0.2", 1)
    lab.run(0.5)
    dropped(b, "handshake_initiation_rejected", "unknown_peer")
    assert fingerprint(b.device) == before


@pytest.mark.parametrize("offset", [-20, -40, 10])  # inside mac1, inside the body (mac1 covers it)
def test_wrong_mac1(session, offset):
    lab, a, b, cap = session
    data = bytearray(cap.of_type(1)[0].data)
    data[offset] ^= 0x01
    attack(lab, b, bytes(data), a.endpoint, "handshake_initiation_rejected", "bad_mac1")


def test_missing_and_invalid_mac2_under_load(session):
    lab, a, b, cap = session
    b.device.set_forced_load(True, lab.now)
    init = cap.of_type(1)[0].data  # mac2 is zero: missing
    attack(lab, b, init, a.endpoint, "handshake_initiation_rejected", "bad_mac2")
    assert b.recorder.of("cookie_reply_sent")
    forged = init[:-16] + os.urandom(16)  # mac2 present but made without our cookie
    attack(lab, b, forged, a.endpoint, "handshake_initiation_rejected", "bad_mac2")


def test_cookie_reply_unknown_index_and_bad_tag(session):
    lab, a, b, cap = session
    bogus = pack_cookie_reply(CookieReply(0x12345678, os.urandom(24), os.urandom(32)))
    attack(lab, a, bogus, b.endpoint, "cookie_reply_rejected", "unknown_index")
    index = a.peer(b).keypairs.current.local_index
    bad_tag = pack_cookie_reply(CookieReply(index, os.urandom(24), os.urandom(32)))
    attack(lab, a, bad_tag, b.endpoint, "cookie_reply_rejected", "bad_tag")


def test_transport_unknown_receiver_index(session):
    lab, a, b, cap = session
    data = bytearray(cap.of_type(4, src=a.endpoint)[0].data)
    data[4:8] = struct.pack("<I", 0xFEEDFACE)
    attack(lab, b, bytes(data), a.endpoint, "packet_dropped", "unknown_index")


def test_replayed_counter(session):
    lab, a, b, cap = session
    data = cap.of_type(4, src=a.endpoint)[0].data
    attack(lab, b, data, a.endpoint, "packet_dropped", "counter_replayed")


def test_counter_beyond_window_after_slide(session):
    lab, a, b, cap = session
    early = cap.of_type(4, src=a.endpoint)[0].data
    b.answer_pings = False
    for i in range(REPLAY_WINDOW_SIZE + 20):  # slide the window past the early counter
        a.ping("10.0.0.2", i % 65536)
    lab.run(1)
    attack(lab, b, early, a.endpoint, "packet_dropped", "counter_too_old")


def test_tampered_transport_fails_decryption(session):
    lab, a, b, cap = session
    data = bytearray(cap.of_type(4, src=a.endpoint)[0].data)
    data[-1] ^= 0x80
    attack(lab, b, bytes(data), a.endpoint, "packet_dropped", "decryption_failed")


def test_data_under_expired_keypair(session):
    lab, a, b, cap = session
    data = cap.of_type(4, src=a.endpoint)[-1].data
    lab.advance(REJECT_AFTER_TIME + 1)
    attack(lab, b, data, a.endpoint, "packet_dropped", "keypair_expired")


def test_data_under_zeroed_keypair(session):
    lab, a, b, cap = session
    data = cap.of_type(4, src=a.endpoint)[-1].data
    lab.advance(ZERO_KEY_MATERIAL_AFTER + 1)
    assert b.recorder.of("keypair_zeroed")
    attack(lab, b, data, a.endpoint, "packet_dropped", "unknown_index")


def test_inner_source_outside_allowed_ips(session):
    lab, a, b, cap = session
    a.device.allowed_ips.insert("10.0.0.0/24", a.peer(b))
    lab.run(1)
    before = fingerprint(b.device)
    b.tun_received.clear()
    a.send_packet(packets.echo("10.0.0.77", "10.0.0.2", 9))
    lab.run(0.5)
    assert b.recorder.of("source_rejected")[-1].fields["src"] == "10.0.0.77"
    assert not b.tun_received  # nothing reached b's TUN
    after = fingerprint(b.device)
    # the packet authenticated, so counters and the replay window moved; nothing else did
    assert after["indices"] == before["indices"]


TYPES = {1: 148, 2: 92, 3: 64, 4: 32}


@pytest.mark.parametrize("kind", [1, 2, 3, 4])
def test_truncated_and_oversized_of_every_type(session, kind):
    lab, a, b, cap = session
    good = TYPES[kind]
    base = struct.pack("<I", kind) + os.urandom(good - 4)
    attack(lab, b, base[:good - 1], a.endpoint, "packet_dropped", "truncated")
    attack(lab, b, base[:5], a.endpoint, "packet_dropped", "truncated")
    if kind != 4:  # transport messages are variable length
        attack(lab, b, base + b"\x00", a.endpoint, "packet_dropped", "oversized")


@pytest.mark.parametrize("kind", [1, 2, 3, 4])
def test_nonzero_reserved_bytes(session, kind):
    lab, a, b, cap = session
    data = bytearray(cap.of_type(kind)[0].data) if kind in (1, 2, 4) else bytearray(
        struct.pack("<I", 3) + bytes(60))
    data[2] = 1
    attack(lab, b, bytes(data), a.endpoint, "packet_dropped", "reserved_nonzero")


def test_unknown_type_and_empty(session):
    lab, a, b, cap = session
    attack(lab, b, b"", a.endpoint, "packet_dropped", "truncated")
    attack(lab, b, b"\x09\x00\x00\x00" + bytes(60), a.endpoint, "packet_dropped", "unknown_type")


def test_low_order_ephemeral_rejected(session):
    """An all-zero ephemeral makes X25519 all-zero: refused, not a crash."""
    lab, a, b, cap = session
    init = bytearray(cap.of_type(1)[0].data)
    init[8:40] = bytes(32)
    from wgscope.protocol.crypto import MAC, HASH
    from wgscope.protocol.constants import LABEL_MAC1
    init[116:132] = MAC(HASH(LABEL_MAC1 + b.public_key), bytes(init[:116]))
    attack(lab, b, bytes(init), a.endpoint, "handshake_initiation_rejected", "decryption_failed")
    assert crypto  # keep the import honest
