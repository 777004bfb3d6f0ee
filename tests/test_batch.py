"""Batches are the same protocol: Device.send_packets / receive_datagrams against the same
inputs handed over one at a time (send_packet / receive_datagram), on two labs built alike
(fixed static keys, one seed, so indices and timer jitter are drawn alike): the same packets
come out, and the peers end in the same state — counters, key pairs, every timer's deadline,
the keepalive flag — with the same INFO events on the way."""

from __future__ import annotations

import struct

import pytest

from lab_helpers import pair

from wgscope.events import DEBUG, INFO
from wgscope.protocol.actions import SendDatagram, WritePacket

from test_offload import ipv4, tcp

KA, KB = bytes(range(1, 33)), bytes(range(101, 133))


def build(keepalive: int = 0):
    lab, a, b = pair(seed=11, keepalive=keepalive, keys=(KA, KB), level=DEBUG)
    a.ping("10.0.0.2")
    lab.run(1)
    assert b.echo_replies() or a.echo_replies()
    return lab, a, b


def state(node, now):
    snap = node.device.snapshot(now)
    peers = snap["peers"]
    extra = [(p.name, p.need_another_keepalive, len(p.staged)) for p in node.device.peers.values()]
    return peers, extra, dict(snap["drops"])


def info_events(node, since: int):
    return [(e.name, e.peer, e.fields) for e in node.recorder.events[since:] if e.level >= INFO]


def segment(i: int, size: int = 1368, dst: str = "10.0.0.2") -> bytes:
    return ipv4(6, tcp(bytes([i]) * size, seq=i * 2000, flags=0x10), src="10.0.0.1", dst=dst)


OUTBOUND = [segment(0), segment(1, 100), segment(2), b"\x45\x00", segment(3, dst="10.0.0.99"),
            segment(4), segment(5, 0), segment(6)]


def datagrams(actions):
    return [a.data for a in actions if type(a) is SendDatagram]


def written(actions):
    return [a.packet for a in actions if type(a) is WritePacket]


@pytest.mark.parametrize("keepalive", [0, 25])
def test_send_batch_is_one_by_one(keepalive):
    runs = []
    for batched in (False, True):
        lab, a, b = build(keepalive)
        lab.now += 3.0  # let timers armed by the handshake sit mid-way
        now = lab.now
        mark = len(a.recorder.events)
        if batched:
            out = a.device.send_packets(OUTBOUND, now)
        else:
            out = [x for p in OUTBOUND for x in a.device.send_packet(p, now)]
        delivered = written(b.device.receive_datagrams(datagrams(out), a.endpoint, now))
        runs.append(([len(d) for d in datagrams(out)], written(out), delivered, state(a, now),
                     info_events(a, mark)))
    single, batch = runs
    assert batch[0] == single[0]  # same datagrams, same sizes (padding), same order
    assert batch[1] == single[1]  # the ICMP unreachable for 10.0.0.99
    assert batch[2] == single[2] == [p for p in OUTBOUND if p[:1] == b"\x45" and len(p) > 20 and p[19] == 2]
    assert batch[3] == single[3]
    assert batch[4] == single[4]


def _rekey_inputs(lab, a, b):
    """Datagrams for b: data under the current key pair, then the new initiator's keepalive and
    data under the next one (confirming it mid-run), a duplicate, a forgery, and a stray initiation."""
    now = lab.now
    peer_b = next(iter(a.device.peers.values()))
    old = datagrams(a.device.send_packets([segment(10), segment(11), segment(12, 40)], now))
    [init] = datagrams(a.device.initiate_handshake(peer_b, now))
    [resp] = datagrams(b.device.receive_datagram(init, a.endpoint, now))
    keepalive = datagrams(a.device.receive_datagram(resp, b.endpoint, now))
    new = datagrams(a.device.send_packets([segment(13), segment(14)], now))
    forged = bytearray(new[0])
    forged[-1] ^= 1
    return old[:2] + keepalive + new + [old[2], new[0], bytes(forged), bytes(148)]


def _two_segments(lab, a, b):
    """Two data packets with b's keepalive timer idle: the second must find it pending."""
    return datagrams(a.device.send_packets([segment(20), segment(21)], lab.now))


@pytest.mark.parametrize("inputs_for", [_two_segments, _rekey_inputs])
def test_receive_batch_is_one_by_one(inputs_for):
    runs = []
    for batched in (False, True):
        lab, a, b = build()
        lab.now += 6.0  # past REKEY_TIMEOUT, so a new initiation may go
        inputs = inputs_for(lab, a, b)
        lab.now += 0.5
        now = lab.now
        mark = len(b.recorder.events)
        if batched:  # as a GRO receive hands them: memoryview slices of one buffer
            buf = memoryview(b"".join(inputs))
            views, at = [], 0
            for d in inputs:
                views.append(buf[at:at + len(d)])
                at += len(d)
            out = b.device.receive_datagrams(views, a.endpoint, now)
        else:
            out = [x for d in inputs for x in b.device.receive_datagram(d, a.endpoint, now)]
        runs.append((written(out), [len(d) for d in datagrams(out)], state(b, now), info_events(b, mark)))
    single, batch = runs
    assert batch[0] == single[0]
    assert batch[1] == single[1]
    assert batch[2] == single[2]
    assert batch[3] == single[3]
    if inputs_for is _two_segments:
        assert len(batch[0]) == 2 and batch[2][1][0][1] is True  # need_another_keepalive
    else:
        assert len(batch[0]) == 5  # 2 old + 2 new data segments + the late old one
        names = [e[0] for e in batch[3]]
        assert "keypair_confirmed" in names and names.count("packet_dropped") == 3  # duplicate, forgery, junk


def test_a_full_queue_mid_batch_is_sent_not_dropped():
    """More packets in one batch than the staged queue holds (QUEUE_STAGED_SIZE): nothing is lost."""
    lab, a, b = build()
    peer_b = next(iter(a.device.peers.values()))
    count = peer_b.staged_limit * 2 + 5
    out = a.device.send_packets([segment(i % 200, 200) for i in range(count)], lab.now)
    assert len(datagrams(out)) == count
    assert peer_b.drops.get("queue_overflow", 0) == 0
    counters = [struct.unpack_from("<Q", d, 8)[0] for d in datagrams(out)]
    assert counters == list(range(counters[0], counters[0] + count))
