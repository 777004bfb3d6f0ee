"""What the kernel does not take is never silent and never counted as sent (runtime/losses.py,
runtime/udp.py), and the kernel's own link-local chatter is no routing miss. Real sockets, no
root: the kernel refuses a datagram to 255.255.255.255 without SO_BROADCAST (EACCES)."""

from __future__ import annotations

import ipaddress

from wgscope.events import DEBUG, EventBus, EventRecorder
from wgscope.protocol.crypto import public_key
from wgscope.protocol.entropy import generate_private_key
from wgscope.protocol.device import Device
from wgscope.runtime import packets
from wgscope.runtime.live import LiveNode
from wgscope.runtime.losses import kernel_scoped
from wgscope.runtime.udp import UdpTransport


def _node(endpoint: tuple) -> tuple[LiveNode, object, EventRecorder]:
    bus = EventBus(DEBUG)
    recorder = EventRecorder()
    bus.subscribe(recorder, DEBUG)
    device = Device(generate_private_key(), bus=bus)
    peer = device.add_peer(public_key(generate_private_key()), endpoint=endpoint,
                           allowed_ips=[ipaddress.ip_network("10.1.0.0/16")])
    node = LiveNode("wsloss", device, None, UdpTransport(0), bus)
    return node, peer, recorder


def test_a_refused_datagram_is_an_event_a_drop_and_not_sent():
    node, peer, recorder = _node(("255.255.255.255", 51820))
    try:
        node.apply(node.device.force_handshake(peer, node.now()))
        dropped = recorder.of("packet_dropped")
        assert [(e.fields["reason"], e.fields["kind"], e.fields["endpoint"]) for e in dropped] == [
            ("send_eacces", "initiation", "255.255.255.255:51820")]
        assert dropped[0].peer == peer.name
        assert peer.drops == {"send_eacces": 1} and peer.tx_bytes == 0
        assert node.udp.send_errors == 1 and node.io_counters()["udp_lost"] == {"send_eacces": 1}
    finally:
        node.udp.close()


def test_a_refused_gso_batch_is_reported_datagram_by_datagram():
    """Each datagram of a batch is its own event (a GSO send refused for a reason other than its
    size is not retried one by one: it would fail alike)."""
    node, peer, recorder = _node(("255.255.255.255", 51820))
    try:
        node.udp.send_many([bytes([4, 0, 0, 0]) + bytes(60)] * 5, ("255.255.255.255", 51820))
        assert [e.fields["reason"] for e in recorder.of("packet_dropped")] == ["send_eacces"] * 5
        assert [e.fields["receiver_index"] for e in recorder.of("packet_dropped")] == [0] * 5
        assert node.udp.send_errors == 5
    finally:
        node.udp.close()


def test_no_socket_of_the_family_is_a_reported_loss():
    node, peer, recorder = _node(("2001:db8::1", 51820))
    try:
        if node.udp.v6 is not None:
            node.udp.v6.close()
            node.udp.v6 = None
        node.apply(node.device.force_handshake(peer, node.now()))
        assert [e.fields["reason"] for e in recorder.of("packet_dropped")] == ["send_eafnosupport"]
        assert peer.tx_bytes == 0
    finally:
        node.udp.close()


def test_link_local_and_multicast_the_kernel_sends_are_ignored_quietly():
    node, peer, recorder = _node(("192.0.2.1", 51820))
    try:
        solicitation = packets.udp("fe80::1", 5353, "ff02::2", 5353, b"rs")
        mdns4 = packets.udp("10.1.0.1", 5353, "224.0.0.251", 5353, b"q")
        routed = packets.echo("10.1.0.1", "10.9.9.9", 1)  # no peer: a real routing miss
        assert kernel_scoped(solicitation) and kernel_scoped(mdns4) and not kernel_scoped(routed)
        kept = node.losses.without_local([solicitation, mdns4, routed])
        assert kept == [routed]
        assert [e.fields["dst"] for e in recorder.of("local_traffic_ignored")] == ["ff02::2", "224.0.0.251"]
        assert node.device.drops == {} and node.losses.local_ignored == 2
    finally:
        node.udp.close()


def test_multicast_a_peer_covers_still_goes_to_it():
    node, peer, recorder = _node(("192.0.2.1", 51820))
    try:
        node.device.allowed_ips.insert(ipaddress.ip_network("224.0.0.0/4"), peer)
        mdns4 = packets.udp("10.1.0.1", 5353, "224.0.0.251", 5353, b"q")
        assert node.losses.without_local([mdns4]) == [mdns4]
        assert not recorder.of("local_traffic_ignored")
    finally:
        node.udp.close()


def test_a_loss_is_charged_to_the_peer_at_that_endpoint_as_endpoints_move():
    """Losses finds the peer by its endpoint in one look-up (no scan per loss); the figures stay
    right as peers roam, are added, removed or re-pointed by configuration."""
    node, alpha, recorder = _node(("192.0.2.1", 51820))
    device, losses = node.device, node.losses
    initiation = bytes([1, 0, 0, 0]) + bytes(144)
    try:
        others = [device.add_peer(public_key(generate_private_key()), endpoint=("192.0.2.9", 40000 + i))
                  for i in range(50)]
        bravo = others[7]
        alpha.tx_bytes = bravo.tx_bytes = 1000  # as if the core had counted those initiations as sent
        losses.datagrams_lost([initiation], ("192.0.2.9", 40007), "send_eperm")
        index = losses._by_endpoint
        for _ in range(3):  # more losses: the same index, not a new scan
            losses.datagrams_lost([initiation], ("192.0.2.1", 51820), "send_eperm")
        assert losses._by_endpoint is index
        assert bravo.drops == {"send_eperm": 1} and alpha.drops == {"send_eperm": 3}
        assert (alpha.tx_bytes, bravo.tx_bytes) == (1000 - 3 * 148, 1000 - 148)  # taken back from the right peer
        # alpha re-pointed elsewhere and bravo onto alpha's old address, as `wg set` does (roaming emits
        # the same endpoint_changed)
        device.set_endpoint(alpha, ("203.0.113.5", 51820), node.now())
        device.set_endpoint(bravo, ("192.0.2.1", 51820), node.now())
        losses.datagrams_lost([initiation], ("192.0.2.1", 51820), "send_eperm")
        assert bravo.drops == {"send_eperm": 2} and alpha.drops == {"send_eperm": 3}
        losses.datagrams_lost([initiation], ("203.0.113.5", 51820), "send_eperm")
        assert alpha.drops == {"send_eperm": 4}
        # bravo removed: its endpoint belongs to no peer, the loss is the device's
        device.remove_peer(bravo.public_key, node.now())
        losses.datagrams_lost([initiation], ("192.0.2.1", 51820), "send_eperm")
        assert device.drops == {"send_eperm": 1} and bravo.drops == {"send_eperm": 2}
        # a peer added at that endpoint takes the next loss
        carol = device.add_peer(public_key(generate_private_key()), endpoint=("192.0.2.1", 51820))
        losses.datagrams_lost([initiation], ("192.0.2.1", 51820), "send_eperm")
        assert carol.drops == {"send_eperm": 1} and device.drops == {"send_eperm": 1}
        dropped = recorder.of("packet_dropped")
        assert [e.peer for e in dropped] == ([bravo.name] + [alpha.name] * 3 + [bravo.name, alpha.name, None,
                                             carol.name])
    finally:
        node.udp.close()


def _flood(port: int, count: int, size: int = 1000) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(count):
            s.sendto(bytes([1, 0, 0, 0]) + bytes(size - 4), ("127.0.0.1", port))


def _small_receive_buffer(node) -> None:
    import socket

    node.udp.v4.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel's floor: a few datagrams


def _read_all(node) -> int:
    return sum(len(datagrams) for datagrams, _remote, _local in node.udp.receive(node.udp.v4, 10_000))


def test_datagrams_the_kernel_dropped_unread_are_events_and_a_count():
    """A burst larger than the receive buffer: what the kernel dropped at the socket reaches the node
    with the next datagram it queues (SO_RXQ_OVFL), one packet_dropped each, counted once."""
    node, _peer, recorder = _node(("127.0.0.1", 9))
    try:
        _small_receive_buffer(node)
        _flood(node.udp.port, 200)
        queued = _read_all(node)
        assert 0 < queued < 200
        _flood(node.udp.port, 1)  # queued after the drops: it carries the socket's drop count
        assert _read_all(node) == 1
        dropped = [e for e in recorder.of("packet_dropped") if e.fields["reason"] == "kernel_receive_drop"]
        assert len(dropped) == 200 - queued and {e.fields["kind"] for e in dropped} == {"datagram"}
        assert node.device.drops["kernel_receive_drop"] == 200 - queued
        assert node.io_counters()["udp_receive_drops"] == 200 - queued  # asked again: nothing counted twice
        assert len(recorder.of("packet_dropped")) == 200 - queued
    finally:
        node.udp.close()


def test_drops_no_later_datagram_reported_are_found_when_counters_are_read():
    node, _peer, recorder = _node(("127.0.0.1", 9))
    try:
        _small_receive_buffer(node)
        _flood(node.udp.port, 100)
        queued = _read_all(node)  # the queued ones were in before the drops: no count rides on them
        assert node.udp.receive_dropped == 0
        assert node.io_counters()["udp_receive_drops"] == 100 - queued  # SO_MEMINFO asked
        assert len(recorder.of("packet_dropped")) == 100 - queued
        assert node.device.drops["kernel_receive_drop"] == 100 - queued
    finally:
        node.udp.close()
