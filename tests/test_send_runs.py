"""A batch read from the TUN takes the send path's two batch ways (send.py: _stage_for_one_peer
routes a one-destination batch once, _seal_run seals a queue with the iteration in C) when their
conditions hold, and the per-packet loops otherwise: on two labs built alike, the same datagrams
in the same order, the same ICMP replies, peer and keypair state (counters, timers, queues) and
events at DEBUG as the loops alone give; and with a trace the loops' records are all there."""

from __future__ import annotations

import pytest

from lab_helpers import pair
from test_batch import KA, KB, build, datagrams, segment, state, written
from test_offload import ipv6, tcp

from wgscope.events import DEBUG, TRACE
from wgscope.protocol.constants import REJECT_AFTER_MESSAGES
from wgscope.protocol.device import Device

BATCH_WAYS = ("_stage_for_one_peer", "_seal_run")
NOT_TAKEN = {"_stage_for_one_peer": None, "_seal_run": False}


def loops_only(monkeypatch):
    """Every batch the per-packet way: both batch ways answer 'not this case'."""
    for name in BATCH_WAYS:
        monkeypatch.setattr(Device, name, lambda self, *args, _no=NOT_TAKEN[name]: _no)


def noting(monkeypatch) -> dict:
    """The batch ways as they are, each answer noted: {name: [taken?, ...]}."""
    taken: dict = {name: [] for name in BATCH_WAYS}
    for name in BATCH_WAYS:
        def way(self, *args, _name=name, _real=getattr(Device, name)):
            answer = _real(self, *args)
            taken[_name].append(answer is not NOT_TAKEN[_name])
            return answer
        monkeypatch.setattr(Device, name, way)
    return taken


def peer_of(node):
    return next(iter(node.device.peers.values()))


def add_charlie(lab, a):
    """A second peer of alpha (v4 and v6 routes, an endpoint, no session yet)."""
    c = lab.add_node("charlie", "192.0.2.3", 51820, tunnel="10.0.0.3/24")
    a.device.add_peer(c.public_key, endpoint=c.endpoint, allowed_ips=["10.0.0.3/32", "fd00::3/128"],
                      label="charlie", now=lab.now)


def bulk(n=64, size=1368, dst="10.0.0.2"):  # 1368: 1420-byte packets, the MTU (iperf's)
    return [segment(i % 250, size, dst) for i in range(n)]


# Each case: set-up on the lab, then the batches sent 10 ms apart. Expected: which way each call
# of the two batch ways took (None: not checked).
def _bulk(lab, a):
    return [bulk(), bulk(), bulk(3)]


def _mixed_sizes(lab, a):  # padding to 16 for some, none for others (one at the MTU)
    return [[segment(i, s) for i, s in enumerate([1368, 100, 1, 1352, 15, 1367, 0, 1368])]]


def _empty_batch(lab, a):
    return [[], bulk(2)]


def _over_mtu(lab, a):
    return [[segment(1), segment(2, 1500), segment(3)]]


def _invalid_in_the_middle(lab, a):
    return [[segment(1), b"\x45\x00", segment(2)]]


def _mixed_destinations(lab, a):  # one without a route: its ICMP reply, the rest sealed
    return [[segment(1), segment(2, dst="10.0.0.99"), segment(3)]]


def _two_peers(lab, a):
    add_charlie(lab, a)
    return [[segment(1), segment(2, dst="10.0.0.3"), segment(3)], bulk(5, dst="10.0.0.3"),
            [segment(4), segment(5, dst="10.0.0.3")]]


def _ipv6_to_a_peer(lab, a):  # a v6 batch to one peer, which has no session: staged, a handshake
    add_charlie(lab, a)
    return [[ipv6(6, tcp(bytes([i]) * 200), src="fd00::1", dst="fd00::3") for i in range(4)]]


def _ipv6_no_route(lab, a):
    return [[ipv6(6, tcp(bytes(20)), dst="fd00::9")] * 3]


def _first_byte_differs(lab, a):  # IHL 6 in one header: the loop reads it alike, the batch way declines
    odd = bytearray(segment(2))
    odd[0] = 0x46
    return [[segment(1), bytes(odd), segment(3)]]


def _keepalive_waiting(lab, a):  # an empty packet staged before the batch: not data, no padding
    peer_of(a).staged.append(b"")
    return [bulk(4)]


def _limit_mid_queue(lab, a):  # REJECT_AFTER_MESSAGES reached mid-batch: the rest waits, a handshake
    peer_of(a).keypairs.current.send_counter = REJECT_AFTER_MESSAGES - 3
    return [bulk(8)]


def _queue_fills(lab, a):  # a queue of 8: a batch of 20 sends mid-batch as its queue fills, one of 8 at its end
    peer_of(a).staged_limit = 8
    return [bulk(20), bulk(7), bulk(8)]


def _queue_fills_without_session(lab, a):  # no session: the oldest dropped (queue_overflow)
    add_charlie(lab, a)
    peer = a.device.peers[lab.nodes["charlie"].public_key]
    peer.staged_limit = 8
    return [bulk(5, dst="10.0.0.3"), bulk(2, dst="10.0.0.3"), bulk(1, dst="10.0.0.3"),  # one alone: the loop
            bulk(6, dst="10.0.0.3")]


CASES = [
    (_bulk, {"_stage_for_one_peer": [True] * 3, "_seal_run": [True] * 3}),
    (_mixed_sizes, {"_stage_for_one_peer": [True], "_seal_run": [True]}),
    (_empty_batch, {"_stage_for_one_peer": [True], "_seal_run": [True]}),
    (_over_mtu, {"_stage_for_one_peer": [True], "_seal_run": [False]}),
    (_invalid_in_the_middle, {"_stage_for_one_peer": [False], "_seal_run": [True]}),
    (_mixed_destinations, {"_stage_for_one_peer": [False], "_seal_run": [True]}),
    (_two_peers, {"_stage_for_one_peer": [False, True, False], "_seal_run": [True, True]}),
    (_ipv6_to_a_peer, {"_stage_for_one_peer": [True], "_seal_run": []}),
    (_ipv6_no_route, {"_stage_for_one_peer": [False], "_seal_run": []}),
    (_first_byte_differs, {"_stage_for_one_peer": [False], "_seal_run": [True]}),
    (_keepalive_waiting, {"_stage_for_one_peer": [True], "_seal_run": [False]}),
    (_limit_mid_queue, {"_stage_for_one_peer": [True], "_seal_run": [False]}),
    (_queue_fills, {"_stage_for_one_peer": [False, True, False], "_seal_run": [True] * 5}),
    (_queue_fills_without_session, {"_stage_for_one_peer": [True, True, False], "_seal_run": []}),
]


def run(make, level=DEBUG, taken=None):
    """The case on a fresh lab: everything alpha returned and delivered, its state and events.
    `taken` (noting's), if given, is cleared after the set-up's handshake."""
    lab, a, b = pair(seed=11, keys=(KA, KB), level=level)  # test_batch.build's lab, at `level`
    a.ping("10.0.0.2")
    lab.run(1)
    lab.now += 3.0
    for calls in (taken or {}).values():
        calls.clear()
    batches = make(lab, a)
    mark = len(a.recorder.events)
    out = []
    for i, batch in enumerate(batches):
        out += a.device.send_packets(batch, lab.now + 0.01 * i)
    t = lab.now + 0.05
    delivered = written(b.device.receive_datagrams([d for d, ep in sent_to(out, b)], a.endpoint, t))
    events = [(e.name, e.time, e.peer, e.fields) for e in a.recorder.events[mark:] if e.level >= level]
    return [(d, ep) for d, ep in sent_to(out, None)], written(out), delivered, state(a, t), events


def sent_to(actions, node):
    return [(x.data, x.endpoint) for x in actions
            if hasattr(x, "endpoint") and (node is None or x.endpoint == node.endpoint)]


@pytest.mark.parametrize("make, ways", CASES, ids=[c[0].__name__ for c in CASES])
def test_a_batch_leaves_as_the_per_packet_loops_send_it(monkeypatch, make, ways):
    with monkeypatch.context() as m:
        loops_only(m)
        slow = run(make)
    taken = noting(monkeypatch)
    fast = run(make, taken=taken)
    assert fast[0] == slow[0]  # the datagrams, their endpoints, in order
    assert fast[1:] == slow[1:]  # ICMP replies, what bravo got, alpha's state, its DEBUG events
    assert taken == ways
    if make is _bulk:
        assert len(fast[0]) == 131 and len(fast[2]) == 131


@pytest.mark.parametrize("make", [_bulk, _mixed_sizes, _queue_fills, _limit_mid_queue])
def test_with_a_trace_the_loops_record_every_packet(monkeypatch, make):
    taken = noting(monkeypatch)
    quiet = run(make)
    traced = run(make, TRACE, taken)
    assert not any(taken["_stage_for_one_peer"] + taken["_seal_run"])  # with a trace: the loops
    assert traced[:4] == quiet[:4]
    assert [e for e in traced[4] if e[0] not in TRACED] == quiet[4]
    assert {e[0] for e in traced[4]} >= TRACED
    sent = [e for e in traced[4] if e[0] == "transport_sent"]
    assert len(sent) == len(traced[0]) - sum(e[0] == "handshake_initiation_sent" for e in traced[4])


TRACED = {"transport_sent", "route_found", "packet_staged"}


def test_data_packets_of_a_bulk_batch_arrive_padded_as_the_loop_pads_them(monkeypatch):
    """Padding read on the wire: bravo strips it, alpha's counters say how many bytes went."""
    taken = noting(monkeypatch)
    lab, a, b = build()
    taken["_stage_for_one_peer"].clear(), taken["_seal_run"].clear()
    packets = [segment(i, s) for i, s in enumerate([1368, 1, 1353])]  # 1420, 53, 1405 bytes
    out = a.device.send_packets(packets, lab.now)
    assert taken == {"_stage_for_one_peer": [True], "_seal_run": [True]}
    assert [len(d) for d in datagrams(out)] == [32 + 1420, 32 + 64, 32 + 1408]
    assert written(b.device.receive_datagrams(datagrams(out), a.endpoint, lab.now)) == packets
