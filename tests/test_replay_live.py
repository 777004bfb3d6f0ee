"""Replay is the node, live (issue 13): a wgscope node talking to wireguard-go writes its events
(--events-level trace) and its own capture (--capture); forged, truncated and replayed datagrams
are sent at it. `wgscope replay --events` of that capture re-executes the node and must write the
same events: kind for kind, and handshake and keypair events in the same order."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from conftest import require_tools
from livenet import WGSCOPE, Keys, ping, start_wgscope, start_wireguard_go, wg_peer, wgscope_config
from netns import namespaces, unique, veth
from wgscope.pcap import parse_frame, read_capture
from wgscope.sinks.capture import parse_comment

pytestmark = pytest.mark.root

# What only the adapter or the configuration says (the node starting and stopping, its
# configuration being loaded), and packets from the TUN that no peer's allowed IPs cover (the
# kernel's IPv6 router solicitations): none of it reaches the wire, so no capture can show it.
NOT_PROTOCOL = {"interface_up", "interface_down", "config_changed", "uapi_get", "uapi_set", "route_missing",
                "local_traffic_ignored"}
ORDERED = {"handshake", "session"}

FORGER = r"""
import os, random, socket, struct, sys
rng = random.Random(3)
dst = (sys.argv[1], int(sys.argv[2]))
replayed = bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for data in (struct.pack('<IIQ', 4, rng.getrandbits(32), rng.getrandbits(64)) + rng.randbytes(32),
             bytes([1, 0, 0, 0]) + rng.randbytes(144), bytes([2, 0, 0, 0]) + rng.randbytes(88),
             bytes([3, 0, 0, 0]) + rng.randbytes(60), bytes([1, 0, 0, 0]) + rng.randbytes(9),
             bytes([7, 0, 0, 0]) + rng.randbytes(30), b'\x04', rng.randbytes(77), replayed, replayed):
    s.sendto(data, dst)
"""


def _events(path) -> list[dict]:
    return [json.loads(line) for line in open(path) if line.strip()]


def _first_inbound_data(capture) -> bytes:
    """A transport data message wireguard-go sent the node (read back from the node's capture)."""
    for p in read_capture(capture):
        if parse_comment(p.comment).get("dir") == "in":
            d = parse_frame(p.linktype, p.data).payload
            if d[:1] == b"\x04" and len(d) > 32:
                return d
    raise AssertionError("no inbound transport data captured")


def test_live_node_and_its_replay_write_the_same_events(tmp_path):
    require_tools("wireguard-go", "wg", "ping")
    ka, kb = Keys(), Keys()
    live_events, capture, replay_events = tmp_path / "live.jsonl", tmp_path / "node.pcapng", tmp_path / "replay.jsonl"
    with namespaces("rla", "rlb") as (na, nb):
        veth(na, "192.0.2.1/24", nb, "192.0.2.2/24")
        ia, ib = unique("rla"), unique("rlb")
        conf = wgscope_config(tmp_path / f"{ia}.conf", ka, listen_port=51820, addresses=["10.77.0.1/24"],
                              peers=[{"public_key": kb.public_b64, "allowed_ips": ["10.77.0.2/32"],
                                      "endpoint": "192.0.2.2:51821"}])
        node = start_wgscope(na, tmp_path, ia, conf, "--events", str(live_events), "--events-format", "json",
                             "--events-level", "trace", "--capture", str(capture))
        start_wireguard_go(nb, ib, kb, tmp_path, listen_port=51821, address=["10.77.0.2/24"])
        wg_peer(nb, ib, ka.public_b64, allowed=["10.77.0.1/32"], endpoint="192.0.2.1:51820")
        ping(nb, "10.77.0.1", count=2)  # wireguard-go initiates: the node is the responder
        ping(na, "10.77.0.2", count=4)
        time.sleep(1.0)  # the capture writer flushes every 0.5 s
        replayed = _first_inbound_data(capture)
        subprocess.run(["ip", "netns", "exec", nb.name, sys.executable, "-c", FORGER, "192.0.2.1", "51820",
                        replayed.hex()], check=True, timeout=20)
        time.sleep(11)  # a passive keepalive (KEEPALIVE_TIMEOUT after the last data received)
        assert node.terminate() == 0
    # The node's configuration too: the peer's configured endpoint is in no capture (without it,
    # an endpoint first learned from the peer's initiation is an endpoint change, as for a node
    # configured without one).
    r = subprocess.run([WGSCOPE, "replay", str(capture), "--config", str(conf), "--events", str(replay_events),
                        "--events-level", "trace", "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    live = [e for e in _events(live_events) if e["event"] not in NOT_PROTOCOL]
    replay = [e for e in _events(replay_events) if e.get("node") == ia and e["event"] not in NOT_PROTOCOL]
    assert {e["node"] for e in live} == {ia}
    counts_live, counts_replay = Counter(e["event"] for e in live), Counter(e["event"] for e in replay)
    assert counts_replay == counts_live
    for kind in ("transport_sent", "transport_received", "keepalive_sent", "handshake_response_sent",
                 "keypair_created", "packet_dropped"):
        assert counts_live[kind] >= 1, kind
    reasons = Counter(e["reason"] for e in live if e["event"] == "packet_dropped")
    assert reasons == Counter(e["reason"] for e in replay if e["event"] == "packet_dropped")
    assert reasons["counter_replayed"] >= 1 and reasons["unknown_index"] >= 1 and reasons["unknown_type"] >= 1

    def ordered(events):
        return [(e["event"], e["peer"], e.get("sender_index"), e.get("local_index"), e.get("reason"))
                for e in events if e["category"] in ORDERED]

    assert ordered(replay) == ordered(live)
    (summary,) = result["nodes"]
    assert summary["name"] == ia and summary["divergences"] == 0, result["findings"]
