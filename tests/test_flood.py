"""Handshake floods: cookie mode, mac2 for the legitimate, bounded cost.

A flood of initiations with a valid mac1 and a bogus rest pushes the node under load; from
then on such messages cost a MAC and a cookie reply, not a Curve25519 operation; a real peer
still completes its handshake with mac2 from its cookie; the per-source rate limit
(20 per second, burst 5: WG-GO ratelimiter/ratelimiter.go packetsPerSecond/packetsBurstable,
kernel drivers/net/wireguard/ratelimiter.c PACKETS_PER_SECOND/PACKETS_BURSTABLE) holds a
flooder that earns cookies, keyed by IPv4 address or IPv6 /64; memory stays bounded; and the
node leaves cookie mode UNDER_LOAD_AFTER_TIME after the flood stops.

First in the lab (exact, simulated time); then against a live `wgscope up` in namespaces with
wireguard-go as the legitimate peer and tests/flood.py as the flooding process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flood import Flooder
from lab_helpers import pair, times

from wgscope.events import INFO
from wgscope.protocol.actions import SendDatagram
from wgscope.protocol.constants import (
    RATELIMIT_BURST, RATELIMIT_PACKETS_PER_SECOND, REKEY_TIMEOUT, UNDER_LOAD_AFTER_TIME, UNDER_LOAD_QUEUE_DEPTH,
)


def rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def flood(lab, node, flooder: Flooder, sources: list, count: int, rate: float, start: float,
          earn_cookies: bool = False) -> None:
    """Schedule `count` bogus initiations at `rate`/s from `sources` (round robin) into `node`."""
    def one(i: int) -> None:
        src = sources[i % len(sources)]
        actions = node.device.receive_datagram(flooder.initiation(src, lab.now), src, lab.now)
        for act in actions:
            if type(act) is SendDatagram and tuple(act.endpoint) == src and earn_cookies:
                flooder.take_reply(src, act.data, lab.now)
        node.apply([a for a in actions if not (type(a) is SendDatagram and tuple(a.endpoint) == src)])

    for i in range(count):
        lab.schedule(start + i / rate, lambda i=i: one(i))


def noise_work(node, sources=None, since=float("-inf")) -> list:
    """Flood initiations that reached the Noise code (a DH each) and failed to decrypt there."""
    evs = [e for e in node.recorder.of("handshake_initiation_rejected")
           if e.fields["reason"] == "decryption_failed" and e.time >= since]
    return evs if sources is None else from_sources(evs, sources)


def from_sources(events, sources) -> list:
    hosts = {f"{h}:{p}" if ":" not in h else f"[{h}]:{p}" for h, p in sources}
    return [e for e in events if e.fields.get("endpoint") in hosts]


def test_flood_enters_cookie_mode_peer_completes_with_mac2_and_mode_is_left():
    lab, a, b = pair(seed=11, level=INFO)
    sources = [(f"198.51.100.{i}", 40000 + i) for i in range(1, 13)]
    rate, seconds = 500, 10
    rss_before = rss_kib()
    flood(lab, b, Flooder(b.public_key), sources, rate * seconds, rate, start=0.0)
    lab.run(1)
    a.ping("10.0.0.2", 1)  # a legitimate handshake in the middle of the flood
    cpu = time.process_time()
    lab.run(seconds + 3)
    cpu = time.process_time() - cpu
    entered, left = times(b, "under_load_entered"), times(b, "under_load_left")
    assert len(entered) == 1 and entered[0] < 1, "the flood did not bring cookie mode"
    assert len(left) == 1 and seconds <= left[0] <= seconds + UNDER_LOAD_AFTER_TIME + 0.01
    # a: first initiation answered with a cookie, the retry carries mac2 and completes, mid-flood
    sent = a.recorder.of("handshake_initiation_sent")
    assert [e.fields["mac2"] for e in sent] == [False, True]
    assert a.recorder.of("cookie_reply_received")
    done = times(a, "handshake_completed")
    assert done and done[0] < seconds and done[0] - 1 < REKEY_TIMEOUT + 1
    assert a.echo_replies() == [1]
    # flood packets did no Curve25519 work once under load: only the first window reached the Noise code
    assert 0 < len(noise_work(b, sources)) <= UNDER_LOAD_QUEUE_DEPTH
    assert b.device.cookies_sent >= rate * seconds - UNDER_LOAD_QUEUE_DEPTH
    assert len(b.device.ratelimiter) <= 1  # bogus mac2 never reaches the rate limiter
    assert set(b.device.index_table) == {k.local_index for k in b.peer(a).keypairs.all()}
    grown = rss_kib() - rss_before
    print(f"\nflood: {rate * seconds} initiations, {cpu / (rate * seconds) * 1e6:.0f} us CPU each "
          f"(incl. the lab), RSS +{grown} KiB")
    assert grown < 64 * 1024


def test_cookie_earning_flooder_is_held_to_the_rate_limit():
    lab, a, b = pair(seed=12, level=INFO)
    src = ("198.51.100.77", 4444)
    rate, seconds = 300, 5
    flooder = Flooder(b.public_key)
    flood(lab, b, flooder, [src], rate * seconds, rate, start=0.0, earn_cookies=True)
    lab.run(seconds + 0.5)
    assert flooder.cookies_earned >= 1
    loaded_at = times(b, "under_load_entered")[0]
    rejected = [e.fields["reason"] for e in b.recorder.of("handshake_initiation_rejected") if e.time >= loaded_at]
    assert rejected.count("rate_limited") > 0 and "bad_mac2" in rejected
    passed = noise_work(b, since=loaded_at + 1e-9)
    # what got past the limiter under load: the burst plus 20 per second, no more
    assert 0 < len(passed) <= RATELIMIT_BURST + RATELIMIT_PACKETS_PER_SECOND * (seconds - loaded_at) + 1


def test_rate_limiter_table_is_bounded_by_recent_sources():
    """Two waves of 250 cookie-earning sources, one after the other: the first wave's buckets are
    collected once idle for RATELIMIT_GC_INTERVAL, so the table follows recent sources, not history."""
    lab, a, b = pair(seed=13, level=INFO)
    b.device.set_forced_load(True, 0.0)
    first = [(f"203.0.113.{i}", 5000 + i) for i in range(1, 251)]
    second = [(f"198.51.100.{i}", 5000 + i) for i in range(1, 251)]
    flooder = Flooder(b.public_key)
    flood(lab, b, flooder, first, 1500, 1000, start=0.0, earn_cookies=True)
    flood(lab, b, flooder, second, 2500, 1000, start=1.5, earn_cookies=True)
    sizes = []
    for _ in range(40):
        lab.run(0.1)
        sizes.append(len(b.device.ratelimiter))
    assert max(sizes) <= len(first) + len(second)
    assert sizes[14] == len(first) and sizes[34] == len(second), sizes
    lab.run(3)  # idle entries are collected at the next message
    flood(lab, b, flooder, first[:1], 2, 10, start=lab.now)
    lab.run(1)
    assert len(b.device.ratelimiter) == 1


def test_ipv6_sources_share_their_64():
    lab, a, b = pair(seed=14, level=INFO)
    b.device.set_forced_load(True, 0.0)
    sources = [(f"2001:db8:7:7::{i:x}", 6000 + i) for i in range(1, 201)]
    flooder = Flooder(b.public_key)
    flood(lab, b, flooder, sources, 1000, 1000, start=0.0, earn_cookies=True)
    lab.run(1.5)
    assert len(b.device.ratelimiter) == 1  # one /64, one bucket (kernel ratelimiter.c)
    passed = noise_work(b, sources)
    assert 0 < len(passed) <= RATELIMIT_BURST + RATELIMIT_PACKETS_PER_SECOND * 1 + 1


# ---------------------------------------------------------------- live, in namespaces
@pytest.mark.root
@pytest.mark.timeout(120)
def test_live_flood_against_wgscope_up(tmp_path):
    from conftest import require_tools
    from livenet import ping
    from test_interop_wggo import wggo_pair

    require_tools("wireguard-go", "wg", "ping")
    with wggo_pair(tmp_path, wggo_knows=True) as p:
        # the flooder lives in B, beside wireguard-go: same underlay, its own UDP sockets
        pid = p.node.proc.pid
        pub = next(line.split()[-1] for line in p.node.output().splitlines() if "public key" in line)
        rss_before = rss_kib(_python_child(pid))
        flooder = p.b.popen([sys.executable, str(Path(__file__).parent / "flood.py"), "192.0.2.1", "51820",
                             pub, "15000", "1500", "--sources", "8"], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        # mid-flood, wireguard-go initiates: its first try draws a cookie, the retry has mac2
        ping(p.b, "10.9.0.1", count=2, timeout=20)
        out, _ = flooder.communicate(timeout=60)
        report = json.loads(out)
        assert report["replies"] > 0  # cookie replies came back to the flooder
        time.sleep(UNDER_LOAD_AFTER_TIME + 1.5)
        names = [e["event"] for e in p.events()]
        assert "under_load_entered" in names and "cookie_reply_sent" in names
        assert names.index("under_load_left") > names.index("under_load_entered")
        wggo = "192.0.2.2:51821"
        consumed = [e for e in p.events("handshake_initiation_consumed") if e["endpoint"] == wggo]
        assert consumed, "wireguard-go never got through the flood"
        left = p.events("under_load_left")[0]["time"]
        cookie_to_wggo = [e for e in p.events("cookie_reply_sent") if e["endpoint"] == wggo]
        # wireguard-go was answered with a cookie, then got in with mac2 while the node was still loaded
        assert cookie_to_wggo and cookie_to_wggo[0]["time"] < consumed[0]["time"] < left
        grown = rss_kib(_python_child(pid)) - rss_before
        print(f"\nlive flood: {report}, wgscope RSS +{grown} KiB")
        assert grown < 64 * 1024
        ping(p.b, "10.9.0.1", count=2)  # still serving after the flood


def _python_child(pid: int) -> int:
    """`ip netns exec` execs the command, so the Popen pid is wgscope's own; follow a child if any."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return int(kids[0]) if kids and b"wgscope" in Path(f"/proc/{kids[0]}/cmdline").read_bytes() else pid


@pytest.mark.root
@pytest.mark.timeout(120)
def test_live_cookie_earning_flooder_is_held_to_the_rate_limit(tmp_path):
    """One source that decrypts its cookie replies and floods with a valid mac2: the live node lets
    through no more than the burst plus 20 per second into the Noise code."""
    from test_interop_wggo import wggo_pair

    with wggo_pair(tmp_path) as p:
        pub = next(line.split()[-1] for line in p.node.output().splitlines() if "public key" in line)
        rate, count = 500, 2500
        flooder = p.b.popen([sys.executable, str(Path(__file__).parent / "flood.py"), "192.0.2.1", "51820",
                             pub, str(count), str(rate), "--earn-cookies"], stdout=subprocess.PIPE, text=True)
        report = json.loads(flooder.communicate(timeout=60)[0])
        assert report["cookies"] >= 1
        time.sleep(0.5)
        src = f"192.0.2.2:{report['ports'][0]}"
        loaded = p.events("under_load_entered")[0]["time"]
        rejected = [e for e in p.events("handshake_initiation_rejected") if e["endpoint"] == src]
        reasons = [e["reason"] for e in rejected]
        assert "rate_limited" in reasons and "bad_mac2" in reasons
        passed = [e for e in rejected if e["reason"] == "decryption_failed" and e["time"] > loaded]
        window = report["seconds"]
        print(f"\nlive cookie-earning flood: {report['sent']} sent in {window} s, {len(passed)} reached the Noise code")
        assert 0 < len(passed) <= RATELIMIT_BURST + RATELIMIT_PACKETS_PER_SECOND * window + 2
