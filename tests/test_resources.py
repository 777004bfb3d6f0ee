"""Resource bounds: nothing grows without limit, thousands of peers work.

Per-peer staged queues hold at most QUEUE_STAGED_SIZE packets (WG-GO QueueStagedSize), so
total staged memory is bounded by peers x 128 x MTU; a peer that never answers, fed constant
traffic for a simulated hour, keeps one handshake index, one timer heap entry per timer, no
rate limiter entries and a bounded queue; 3000 configured peers route and handshake. The
figure per configured peer is bench/memory_per_peer.py (`make bench`).
"""

from __future__ import annotations

import ipaddress
import tracemalloc

from bench.memory_per_peer import measure
from fuzz_session import consistency_problems
from lab_helpers import pair

from wgscope.events import INFO
from wgscope.protocol.constants import QUEUE_STAGED_SIZE
from wgscope.protocol.crypto import public_key
from wgscope.protocol.entropy import generate_private_key
from wgscope.runtime import packets
from wgscope.runtime.lab import Lab
from wgscope.protocol.timers import TIMER_NAMES


def test_a_peer_that_never_answers_grows_nothing_over_an_hour():
    lab, a, b = pair(seed=21, level=INFO, keepalive=25)
    ghost = public_key(generate_private_key())  # configured, never present on the network
    a.device.add_peer(ghost, endpoint=("203.0.113.200", 51820), allowed_ips=["10.0.0.200/32"], label="ghost")
    peer = a.device.peers[ghost]
    samples = []
    tracemalloc.start()
    try:
        for minute in range(60):
            for second in range(0, 60, 2):  # constant traffic to both: one packet each every 2 s
                a.send_packet(packets.udp("10.0.0.1", 1, "10.0.0.200", 2, b"x" * 100 + bytes([second])))
                a.send_packet(packets.udp("10.0.0.1", 1, "10.0.0.2", 2, b"y" * 100 + bytes([second])))
                lab.run(2)
            a.recorder.clear()
            b.recorder.clear()
            b.tun_received.clear()
            dev = a.device
            samples.append((len(dev.index_table), len(dev.wheel), len(peer.staged), len(dev.ratelimiter),
                            tracemalloc.get_traced_memory()[0]))
            assert consistency_problems(dev, lab.now) == []
    finally:
        tracemalloc.stop()
    indices, heap, staged, limiter, _ = zip(*samples)
    assert max(indices) <= 1 + 4  # ghost: its handshake; bravo: current, previous, next + handshake
    assert max(heap) <= 2 * len(TIMER_NAMES) * 2 + 4  # entries per timer stay bounded (lazy heap)
    assert max(staged) <= QUEUE_STAGED_SIZE and max(limiter) == 0
    assert peer.handshake.local_index in a.device.index_table  # still trying, with one index
    assert len(peer.drops) <= 2  # a few reasons, each a counter, not a list
    traced = [s[4] for s in samples]
    # after a warm-up (counters' keys, caches) the traced heap is flat: measured +1.4 KiB from minute 20 to 90
    assert traced[-1] - traced[20] < 64 * 1024, f"heap grew {traced[-1] - traced[20]} bytes in 40 minutes"
    assert a.recorder is not None and a.peer(b).handshakes_completed >= 25  # bravo rekeyed all along


def test_total_staged_memory_is_bounded_by_peers_times_queue():
    lab = Lab(seed=22, level=INFO)
    hub = lab.add_node("hub", "192.0.2.1", 51820, tunnel="10.1.0.1/16")
    ghosts = []
    for i in range(50):
        key = public_key(generate_private_key())
        hub.device.add_peer(key, endpoint=("203.0.113.9", 20000 + i), allowed_ips=[f"10.1.1.{i + 1}/32"])
        ghosts.append(hub.device.peers[key])
    lab.network.blocked.add(("192.0.2.1", "203.0.113.9"))
    for n in range(300):
        for i in range(50):
            hub.send_packet(packets.udp("10.1.0.1", 1, f"10.1.1.{i + 1}", 2, n.to_bytes(2, "big") * 600))
    staged = [len(p.staged) for p in ghosts]
    assert staged == [QUEUE_STAGED_SIZE] * 50
    total = sum(len(pkt) for p in ghosts for pkt in p.staged)
    assert total <= 50 * QUEUE_STAGED_SIZE * 1420
    assert sum(p.drops["queue_overflow"] for p in ghosts) == 50 * (300 - QUEUE_STAGED_SIZE)
    # the newest packets are the ones kept (WG-GO StagePacket drops the oldest)
    assert ghosts[0].staged[-1][28:30] == (299).to_bytes(2, "big")


def test_three_thousand_peers_route_and_handshake():
    lab = Lab(seed=23, level=INFO)
    hub = lab.add_node("hub", "192.0.2.1", 51820, tunnel="10.64.0.1/14")
    net = ipaddress.ip_network("10.64.0.0/14")
    sample = {7, 100, 999, 1500, 2222, 2999}
    spokes = {}
    for i in range(3000):
        addr = net[i + 2]
        if i in sample:
            spoke = lab.add_node(f"spoke{i}", f"198.51.100.{len(spokes) + 1}", 51820, tunnel=f"{addr}/14")
            spokes[i] = spoke
            key = spoke.public_key
            spoke.device.add_peer(hub.public_key, endpoint=hub.endpoint, allowed_ips=["10.64.0.1/32"], now=lab.now)
        else:
            key = public_key(generate_private_key())
        hub.device.add_peer(key, endpoint=None, allowed_ips=[f"{addr}/32"], now=lab.now)
    assert len(hub.device.peers) == 3000
    for i, spoke in spokes.items():
        spoke.ping("10.64.0.1", i)
        lab.run(0.2)
    lab.run(1)
    for i, spoke in spokes.items():
        assert spoke.echo_replies() == [i], f"spoke {i} got no reply"
    for i, spoke in spokes.items():  # and the hub reaches each by its allowed IP
        hub.ping(str(net[i + 2]), 10000 + i)
    lab.run(1)
    assert sorted(hub.echo_replies()) == sorted(10000 + i for i in spokes)
    assert len(hub.device.index_table) == len(spokes)
    assert consistency_problems(hub.device, lab.now) == []


def test_memory_per_peer_is_a_few_kilobytes():
    figures = measure(peers=300, sessions=30)
    assert figures["sessions"] == 30
    assert figures["configured_bytes_per_peer"] < 16 * 1024
    assert figures["session_bytes_per_peer"] < 32 * 1024
    # a full queue costs its packets and little more: the bound of QUEUE_STAGED_SIZE holds in bytes
    assert figures["staged_full_bytes_per_peer"] < QUEUE_STAGED_SIZE * (1420 + 200)
