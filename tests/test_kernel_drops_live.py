"""Packets the kernel drops before a live node reads them are reported, not lost in silence.

A real `wgscope up` in a namespace is stopped (SIGSTOP) while packets for its peer are sent into
its TUN; the kernel's tun driver queues what it can and drops the rest (the link's tx_dropped).
Once the node runs again, each of those is a packet_dropped event, reason tun_queue_full, and
the count agrees with the kernel's.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from livenet import Keys, PYTHON, start_wgscope, wgscope_config
from netns import namespaces, unique, wait_for

FLOOD = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
sent = 0
for _ in range(int(sys.argv[1])):
    try:
        s.sendto(b"x" * 200, ("10.77.0.2", 9))
        sent += 1
    except BlockingIOError:
        pass
print(sent)
"""


def _tx_dropped(ns, ifname: str) -> int:
    link = json.loads(ns.run(f"ip -s -j link show {ifname}").stdout)[0]
    return link["stats64"]["tx"]["dropped"]


@pytest.mark.root
def test_packets_dropped_on_a_stalled_nodes_tun_are_events_with_the_kernels_count(tmp_path):
    ifname = unique("wgkd")
    events = tmp_path / "events.jsonl"
    config = wgscope_config(tmp_path / "wg.conf", Keys(), listen_port=None, addresses=["10.77.0.1/24"],
                            peers=[{"public_key": Keys().public_b64, "allowed_ips": ["10.77.0.2/32"]}])
    with namespaces("kd") as (ns,):
        node = start_wgscope(ns, tmp_path, ifname, config, "--events", str(events))
        os.killpg(node.proc.pid, signal.SIGSTOP)
        try:
            sent = int(ns.run(f"{PYTHON} -c '{FLOOD}' 3000").stdout)
            dropped = _tx_dropped(ns, ifname)
        finally:
            os.killpg(node.proc.pid, signal.SIGCONT)
        assert sent == 3000 and dropped > 0  # the TUN's queue (txqueuelen 500) cannot hold them all

        def reported() -> list:
            lines = events.read_text().splitlines() if events.exists() else []
            return [e for e in map(json.loads, lines)
                    if e.get("event") == "packet_dropped" and e.get("reason") == "tun_queue_full"]

        wait_for(lambda: len(reported()) >= dropped, timeout=10, what="the TUN drops reported")
        time.sleep(1.5)  # one more look: nothing counted twice
        dropped = _tx_dropped(ns, ifname)  # the kernel's count at the end (the node reads again by now)
        assert node.terminate() == 0
        assert len(reported()) == dropped
        assert {e["kind"] for e in reported()} == {"inner_packet"}
