"""Each protocol scenario, driven in the lab, announces itself as an exact sequence of events.

Sequences are compared by name, in order, filtered to the category that tells the story
(the whitepaper's words: initiation, response, cookie reply, keypair current/next ...).
"""

from __future__ import annotations

import pytest

from lab_helpers import pair
from wgscope.protocol.constants import REJECT_AFTER_TIME, REKEY_AFTER_TIME


def events(node, *categories):
    return [e.name for e in node.recorder.events if not categories or _category(e.name) in categories]


def _category(name):
    from wgscope.events import CATALOGUE

    return CATALOGUE[name].category


def fresh(*nodes):
    for n in nodes:
        n.recorder.clear()


INITIATOR_HANDSHAKE = ["handshake_initiation_created", "handshake_initiation_sent", "handshake_response_received",
                       "handshake_response_consumed", "handshake_completed"]
RESPONDER_HANDSHAKE = ["handshake_initiation_received", "handshake_initiation_consumed", "handshake_response_created",
                       "handshake_response_sent", "handshake_completed"]


def test_handshake():
    lab, a, b = pair()
    fresh(a, b)
    a.ping("10.0.0.2")
    lab.run(1)
    assert events(a, "handshake") == INITIATOR_HANDSHAKE
    assert events(b, "handshake") == RESPONDER_HANDSHAKE
    assert events(a, "session") == ["keypair_created", "keypair_rotated"]
    # the responder's keypair waits in "next" until the first data confirms it
    assert events(b, "session") == ["keypair_created", "keypair_rotated", "keypair_confirmed", "keypair_rotated"]
    assert [e.fields["slot"] for e in b.recorder.of("keypair_created")] == ["next"]
    assert a.echo_replies() == [1]


def test_cookie_under_forced_load():
    lab, a, b = pair()
    fresh(a, b)
    b.device.set_forced_load(True, lab.now)
    a.ping("10.0.0.2")
    lab.run(7)  # the retry after REKEY_TIMEOUT carries mac2
    assert events(b, "cookie") == ["under_load_entered", "cookie_reply_sent"]
    assert events(a, "cookie") == ["cookie_reply_received", "cookie_used"]
    assert events(b, "handshake") == ["handshake_initiation_rejected"] + RESPONDER_HANDSHAKE
    assert b.recorder.of("handshake_initiation_rejected")[0].fields["reason"] == "bad_mac2"
    assert events(a, "handshake") == INITIATOR_HANDSHAKE[:2] + INITIATOR_HANDSHAKE
    assert a.recorder.of("handshake_initiation_sent")[1].fields["mac2"] is True
    b.device.set_forced_load(False, lab.now)
    b.device.set_forced_load(None, lab.now)
    assert events(b, "cookie")[-1] == "under_load_left"


def test_rekey_after_time():
    lab, a, b = pair()
    a.ping("10.0.0.2")
    lab.run(1)
    first = a.peer(b).keypairs.current.local_index
    fresh(a, b)
    lab.advance(REKEY_AFTER_TIME)
    a.ping("10.0.0.2", 2)
    lab.run(1)
    assert events(a, "session") == ["rekey_wanted", "keypair_created", "keypair_rotated"]
    assert a.recorder.of("rekey_wanted")[0].fields["reason"] == "rekey_after_time"
    assert events(a, "handshake") == INITIATOR_HANDSHAKE
    assert events(b, "handshake") == RESPONDER_HANDSHAKE
    rotated = a.recorder.of("keypair_rotated")[0].fields
    assert rotated["previous"] == first and rotated["current"] != first
    assert a.echo_replies() == [1, 2]


def pinged_pair():
    """A pair after alpha's first ping, and every datagram the lab carried for it."""
    lab, a, b = pair()
    wires = []
    lab.network.taps.append(wires.append)
    a.ping("10.0.0.2")
    lab.run(1)
    return lab, a, b, wires


def transport_from(wires, node) -> bytes:
    """The first transport data message `node` sent."""
    return next(w.data for w in wires if w.data[0] == 4 and w.src == node.endpoint)


def test_expiry_and_zeroing():
    lab, a, b, wires = pinged_pair()
    old_data = transport_from(wires, a)
    lab.advance(REJECT_AFTER_TIME + 5)
    fresh(a, b)
    lab.network.send(a.endpoint, b.endpoint, old_data)  # data under a keypair past REJECT_AFTER_TIME
    lab.run(0.1)
    assert events(b) == ["keypair_expired", "packet_dropped"]
    assert b.recorder.of("packet_dropped")[0].fields["reason"] == "keypair_expired"
    lab.advance(3 * REJECT_AFTER_TIME)  # no new handshake: key material is erased
    assert events(a, "session") == ["keypair_zeroed"]
    assert events(b, "session") == ["keypair_expired", "keypair_zeroed"]
    assert a.recorder.of("keypair_zeroed")[0].fields["reason"] == "zero_key_material_timer"
    assert events(a, "timer")[-1] == "timer_fired"
    assert a.peer(b).keypairs.current is None


def test_roaming():
    lab, a, b = pair()
    a.ping("10.0.0.2")
    lab.run(1)
    fresh(a, b)
    b.move("198.51.100.7")
    b.ping("10.0.0.1", 2)
    lab.run(1)
    assert events(a, "routing") == ["endpoint_changed"]
    assert a.recorder.of("endpoint_changed")[0].fields == {"old": "192.0.2.2:51820", "new": "198.51.100.7:51820",
                                                          "cause": "roaming"}
    assert b.echo_replies() == [2]  # the reply followed bravo to its new address


BAD = {
    "empty": (b"", ["packet_dropped"], "truncated"),
    "unknown_type": (b"\x09\0\0\0garbage", ["packet_dropped"], "unknown_type"),
    "reserved_nonzero": (b"\x04\x01\0\0" + bytes(28), ["packet_dropped"], "reserved_nonzero"),
    "truncated_initiation": (b"\x01\0\0\0" + bytes(100), ["packet_dropped"], "truncated"),
    "oversized_response": (b"\x02\0\0\0" + bytes(100), ["packet_dropped"], "oversized"),
    "bad_mac1": (b"\x01\0\0\0" + bytes(144), ["handshake_initiation_rejected"], "bad_mac1"),
    "cookie_unknown_index": (b"\x03\0\0\0" + bytes(60), ["cookie_reply_rejected"], "unknown_index"),
    "transport_unknown_index": (b"\x04\0\0\0" + bytes(40), ["packet_dropped"], "unknown_index"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_datagram_kinds(case):
    lab, a, b = pair()
    a.ping("10.0.0.2")
    lab.run(1)
    fresh(a, b)
    data, names, reason = BAD[case]
    lab.network.send(b.endpoint, a.endpoint, data)
    lab.run(0.1)
    assert events(a) == names
    assert a.recorder.events[-1].fields["reason"] == reason


def test_replayed_and_forged_transport():
    lab, a, b, wires = pinged_pair()
    reply = transport_from(wires, b)
    fresh(a, b)
    lab.network.send(b.endpoint, a.endpoint, reply)  # replayed
    forged = reply[:-1] + bytes([reply[-1] ^ 1])
    lab.network.send(b.endpoint, a.endpoint, forged)  # bad Poly1305 tag
    lab.run(0.1)
    assert events(a) == ["packet_dropped", "packet_dropped"]
    assert [e.fields["reason"] for e in a.recorder.events] == ["counter_replayed", "decryption_failed"]


def test_initiation_from_unknown_peer():
    lab, a, b = pair()
    c = lab.add_node("charlie", "192.0.2.3", 51820, tunnel="10.0.0.3/24")
    c.device.add_peer(a.public_key, endpoint=a.endpoint, allowed_ips=["10.0.0.1/32"])
    fresh(a)
    c.ping("10.0.0.1")
    lab.run(1)
    assert events(a, "handshake") == ["handshake_initiation_received", "handshake_initiation_rejected"]
    assert a.recorder.of("handshake_initiation_rejected")[0].fields["reason"] == "unknown_peer"
