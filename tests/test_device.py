"""Device behaviour: sessions, staging, routing, roaming, PSK, ICMP unreachable."""

import os

from lab_helpers import pair

from wgscope.protocol.constants import QUEUE_STAGED_SIZE
from wgscope.runtime import packets


def test_handshake_and_ping_both_ways_with_psk():
    lab, a, b = pair(psk=os.urandom(32))
    a.ping("10.0.0.2", 1)
    lab.run(1)
    b.ping("10.0.0.1", 2)
    lab.run(1)
    assert a.echo_replies() == [1] and b.echo_replies() == [2]


def test_psk_mismatch_never_completes():
    lab, a, b = pair()
    b.device.set_preshared_key(b.peer(a), os.urandom(32))
    a.ping("10.0.0.2", 1)
    lab.run(6)
    assert [e.fields["reason"] for e in a.recorder.of("handshake_response_rejected")][:1] == ["decryption_failed"]
    assert not a.echo_replies()


def test_responder_keypair_confirmed_by_first_data():
    lab, a, b = pair()
    b.answer_pings = False
    a.apply(a.device.initiate_handshake(a.peer(b), lab.now))
    lab.run(0.5)
    kp = b.peer(a).keypairs
    # the initiator confirms with a keepalive at once (WG-GO: SendKeepalive after the response)
    assert kp.current is not None and kp.next is None
    assert b.recorder.of("keypair_confirmed")


def test_staged_queue_is_bounded_and_drops_oldest():
    lab, a, b = pair()
    lab.network.blocked.add(("192.0.2.1", "192.0.2.2"))
    for i in range(QUEUE_STAGED_SIZE + 50):
        a.ping("10.0.0.2", i)
    peer = a.peer(b)
    assert len(peer.staged) == QUEUE_STAGED_SIZE
    assert len(a.recorder.of("queue_overflow")) == 50 and peer.drops["queue_overflow"] == 50
    lab.network.blocked.clear()
    lab.run(6)  # the retry gets through; the newest 128 are delivered
    assert sorted(a.echo_replies()) == list(range(50, QUEUE_STAGED_SIZE + 50))


def test_no_route_answers_icmp_unreachable():
    lab, a, b = pair()
    a.send_packet(packets.echo("10.0.0.1", "10.0.0.99", 1))
    out = packets.summarize(a.tun_received[-1])
    assert out["icmp"] == "unreachable" and out["dst"] == "10.0.0.1"
    assert a.recorder.of("route_missing")[0].fields["dst"] == "10.0.0.99"


def test_no_endpoint_answers_icmp_unreachable():
    lab, a, b = pair()
    b.device.peers[a.public_key].endpoint = None
    b.send_packet(packets.echo("10.0.0.2", "10.0.0.1", 1))
    assert packets.summarize(b.tun_received[-1])["icmp"] == "unreachable"
    assert b.recorder.of("no_endpoint")


def test_ipv6_inner_unreachable_is_icmpv6():
    lab, a, b = pair()
    a.send_packet(packets.echo("2001:db8:ff::1", "2001:db8:ff::2", 1))
    assert packets.summarize(a.tun_received[-1])["proto"] == "icmpv6"


def test_roaming_updates_endpoint():
    lab, a, b = pair()
    a.ping("10.0.0.2", 1)
    lab.run(1)
    a.move("198.51.100.1", 40000)
    a.ping("10.0.0.2", 2)
    lab.run(1)
    moved = b.recorder.of("endpoint_changed")[-1]
    assert moved.fields == {"old": "192.0.2.1:51820", "new": "198.51.100.1:40000", "cause": "roaming"}
    assert a.echo_replies() == [1, 2]


def test_inner_source_outside_allowed_ips_dropped():
    lab, a, b = pair()
    a.ping("10.0.0.2", 1)
    lab.run(1)
    a.device.allowed_ips.insert("10.0.0.2/32", a.peer(b))
    a.send_packet(packets.echo("10.0.0.66", "10.0.0.2", 2))  # spoofed inner source
    lab.run(1)
    rejected = b.recorder.of("source_rejected")
    assert rejected and rejected[0].fields["src"] == "10.0.0.66"


def test_unknown_peer_initiation_rejected():
    lab, a, b = pair()
    c = lab.add_node("charlie", "192.0.2.3", 51820, tunnel="10.0.0.3/24")
    c.device.add_peer(b.public_key, endpoint=b.endpoint, allowed_ips=["10.0.0.2/32"])
    c.ping("10.0.0.2", 1)
    lab.run(1)
    assert b.recorder.of("handshake_initiation_rejected")[0].fields["reason"] == "unknown_peer"


def test_remove_peer_zeroes_and_clears_indices():
    lab, a, b = pair()
    a.ping("10.0.0.2", 1)
    lab.run(1)
    a.device.remove_peer(b.public_key, lab.now)
    assert not a.device.index_table and a.device.allowed_ips.lookup("10.0.0.2") is None
    assert a.recorder.of("peer_removed")
