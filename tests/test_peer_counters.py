"""What a peer counts and what a rejection tells about its sender."""

from lab_helpers import pair

from wgscope.keytext import encode
from wgscope.protocol.constants import INITIATION_SIZE, RESPONSE_SIZE, REKEY_TIMEOUT


def _sent(lab, src_host: str, kind: int | None = None) -> list[bytes]:
    return [w.data for w in lab.wires if w.src[0] == src_host and (kind is None or w.data[0] == kind)]


def _tap(lab):
    lab.wires = []
    lab.network.taps.append(lab.wires.append)


def test_transfer_counts_handshake_messages_like_wireguard_go():
    """WG-GO: txBytes counts every datagram sent to the peer, rxBytes the consumed initiations,
    responses and transport messages; so one side's rx is the other's tx."""
    lab, a, b = pair()
    _tap(lab)
    a.ping("10.0.0.2", 1)
    lab.run(1)
    b.ping("10.0.0.1", 2)
    lab.run(1)
    pa, pb = a.peer(b), b.peer(a)
    assert pa.tx_bytes == pb.rx_bytes == sum(map(len, _sent(lab, "192.0.2.1")))
    assert pb.tx_bytes == pa.rx_bytes == sum(map(len, _sent(lab, "192.0.2.2")))
    transport_a = sum(map(len, _sent(lab, "192.0.2.1", 4)))
    transport_b = sum(map(len, _sent(lab, "192.0.2.2", 4)))
    assert pa.tx_bytes == transport_a + INITIATION_SIZE and pb.tx_bytes == transport_b + RESPONSE_SIZE


def test_unanswered_initiations_are_counted_until_an_answer():
    lab, a, b = pair()
    lab.network.blocked.add(("192.0.2.1", "192.0.2.2"))  # nothing of alpha's reaches bravo
    a.ping("10.0.0.2", 1)
    lab.run(3 * REKEY_TIMEOUT + 1)
    snap = a.device.snapshot(lab.now)["peers"][0]
    assert snap["handshakes"] == 0
    assert snap["unanswered_initiations"] == snap["initiations_since_handshake"] == snap["initiations_sent"] >= 3
    lab.network.blocked.clear()
    lab.run(REKEY_TIMEOUT + 1)  # the next retransmission gets through
    snap = a.device.snapshot(lab.now)["peers"][0]
    assert snap["handshakes"] == 1 and snap["unanswered_initiations"] == 0
    assert snap["initiations_since_handshake"] == 0


def test_cookie_reply_answers_an_initiation():
    lab, a, b = pair()
    b.device.set_forced_load(True, lab.now)
    a.ping("10.0.0.2", 1)
    lab.run(1)
    snap = a.device.snapshot(lab.now)["peers"][0]
    assert snap["cookies_received"] == 1 and snap["unanswered_initiations"] == 0
    assert snap["initiations_since_handshake"] == 1  # no handshake yet


def test_unknown_peer_rejection_names_the_presented_key():
    lab, a, b = pair()
    c = lab.add_node("charlie", "192.0.2.3", 51820, tunnel="10.0.0.3/24")
    c.device.add_peer(b.public_key, endpoint=b.endpoint, allowed_ips=["10.0.0.2/32"])  # bravo does not know c
    c.ping("10.0.0.2", 1)
    lab.run(1)
    (ev,) = b.recorder.of("handshake_initiation_rejected")
    assert ev.fields == {"endpoint": "192.0.2.3:51820", "reason": "unknown_peer", "public_key": encode(c.public_key)}


def test_transport_drops_name_the_receiver_index_and_endpoint():
    lab, a, b = pair()
    _tap(lab)
    a.ping("10.0.0.2", 1)
    lab.run(1)
    data = bytearray(_sent(lab, "192.0.2.1", 4)[-1])
    data[-1] ^= 1  # spoil the tag
    b.deliver(bytes(data), ("198.51.100.9", 4000))
    (ev,) = b.recorder.of("packet_dropped")
    index = b.peer(a).keypairs.current.local_index
    assert ev.fields == {"reason": "decryption_failed", "kind": "transport", "endpoint": "198.51.100.9:4000",
                         "receiver_index": index}
