"""A packet read alone takes a short way through the core (SendPath._send_lone): the same
datagram, peer state, timers and events as the long way (send_packets' staging and send_staged),
on two labs built alike; anything unusual goes the long way."""

from __future__ import annotations

import pytest

from test_batch import build, datagrams, segment, state, written
from test_offload import ipv4, tcp

from wgscope.protocol.constants import REKEY_AFTER_TIME
from wgscope.protocol.device import Device


def both_ways(monkeypatch, short_way: str):
    """Yields twice: first with Device.<short_way> answering None (every packet the long way),
    then as it is, each answer of it noted in the list yielded (cleared by the caller after set-up)."""
    lone = getattr(Device, short_way)
    monkeypatch.setattr(Device, short_way, lambda self, *args: None)
    yield []
    taken: list = []
    monkeypatch.setattr(Device, short_way, lambda self, *args: taken.append(lone(self, *args)) or taken[-1])
    yield taken


def all_events(node, since: int):
    return [(e.name, e.peer, e.fields) for e in node.recorder.events[since:]]


def _plain(lab, a):
    return segment(1, 56)


def _ipv6_no_route(lab, a):
    return bytes([0x60]) + bytes(39)


def _junk(lab, a):
    return b"\x45\x00"


def _after_rekey_time(lab, a):  # the initiator's keypair is old: an initiation goes too (the long way)
    lab.now += REKEY_AFTER_TIME + 1
    return segment(2, 56)


def _staged_before(lab, a):  # a packet waits already: this one goes after it (the long way)
    next(iter(a.device.peers.values())).staged.append(segment(3, 40))
    return segment(4, 56)


def _no_route(lab, a):
    return segment(5, 56, dst="10.0.0.99")


# Which of three sends of the packet, 10 ms apart, go the short way.
CASES = [(_plain, [True] * 3), (_ipv6_no_route, [False] * 3), (_junk, [False] * 3),
         (_after_rekey_time, [False] * 3), (_staged_before, [False, True, True]), (_no_route, [False] * 3)]


@pytest.mark.parametrize("keepalive", [0, 25])
@pytest.mark.parametrize("make, short", CASES, ids=[c[0].__name__ for c in CASES])
def test_a_lone_packet_leaves_as_the_long_way_sends_it(monkeypatch, make, short, keepalive):
    runs = []
    for taken in both_ways(monkeypatch, "_send_lone"):
        lab, a, b = build(keepalive)
        lab.now += 3.0
        taken.clear()  # the set-up's ping went its way too
        packet = make(lab, a)
        mark = len(a.recorder.events)
        out = []
        for i in range(3):  # the second and third find the new-handshake timer pending
            out += a.device.send_packets([packet], lab.now + i * 0.01)
        delivered = written(b.device.receive_datagrams(datagrams(out), a.endpoint, lab.now + 0.05))
        runs.append((datagrams(out), written(out), delivered, state(a, lab.now + 0.05), all_events(a, mark)))
    assert runs[0] == runs[1]
    assert [x is not None for x in taken] == short
    if make is _plain:
        assert len(runs[0][2]) == 3  # delivered


def test_a_packet_in_a_batch_goes_the_long_way(monkeypatch):
    lab, a, b = build()
    monkeypatch.setattr(Device, "_send_lone", lambda self, packet, now: pytest.fail("a batch is not lone"))
    out = a.device.send_packets([segment(1, 56), segment(2, 56)], lab.now)
    assert len(written(b.device.receive_datagrams(datagrams(out), a.endpoint, lab.now))) == 2


# ---- receive: SendPath's twin, ReceivePath._receive_lone

def _data(lab, a, b):
    return datagrams(a.device.send_packets([segment(1, 56)], lab.now)) * 1


def _replayed(lab, a, b):
    d = datagrams(a.device.send_packets([segment(2, 56)], lab.now))
    return d + d


def _forged(lab, a, b):
    d = bytearray(datagrams(a.device.send_packets([segment(3, 56)], lab.now))[0])
    d[-1] ^= 1
    return [bytes(d)]


def _keepalive(lab, a, b):
    out = []
    a.device.send_keepalive(next(iter(a.device.peers.values())), lab.now, "test", out)
    return datagrams(out)


def _unknown_index(lab, a, b):
    return [bytes([4, 0, 0, 0]) + bytes(44)]


def _spoofed_source(lab, a, b):  # an inner source b does not route to a: the long way drops it
    return datagrams(a.device.send_packets([ipv4(6, tcp(bytes(56), seq=1, flags=0x10), src="10.0.0.77",
                                                 dst="10.0.0.2")], lab.now))


RECEIVED = [(_data, [True]), (_replayed, [True, True]), (_forged, [True]), (_keepalive, [False]),
            (_unknown_index, [False]), (_spoofed_source, [False])]


@pytest.mark.parametrize("endpoint", ["peer's", "roamed"])
@pytest.mark.parametrize("make, short", RECEIVED, ids=[c[0].__name__ for c in RECEIVED])
def test_a_lone_datagram_is_received_as_the_long_way_receives_it(monkeypatch, make, short, endpoint):
    runs = []
    for taken in both_ways(monkeypatch, "_receive_lone"):
        lab, a, b = build()
        lab.now += 3.0
        inputs = make(lab, a, b)
        source = a.endpoint if endpoint == "peer's" else ("192.0.2.9", 4000)
        taken.clear()
        mark = len(b.recorder.events)
        out = []
        for i, d in enumerate(inputs):
            out += b.device.receive_datagrams([d], source, lab.now + 0.01 * (i + 1))
        runs.append((written(out), datagrams(out), state(b, lab.now + 0.05), all_events(b, mark)))
    assert runs[0] == runs[1]
    # from a new endpoint the first goes the long way (roaming: WP §2.1), the rest find it known
    assert [x is not None for x in taken] == (short if endpoint == "peer's" else [False] + short[1:])
    if make is _data:
        assert len(runs[0][0]) == 1
