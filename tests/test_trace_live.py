"""Two live nodes write every event of every level to .wgtrace files: readable while they run
(flushed about every second), complete when they stop, and the two sides' records agree."""

from __future__ import annotations

import time

import pytest

from conftest import require_tools
from livenet import Keys, ping, start_wgscope, wgscope_config
from netns import namespaces, unique, veth, wait_for
from wgscope.trace.reader import read_events

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def test_live_nodes_trace_every_packet(tmp_path):
    require_tools("ping")
    with namespaces("TA", "TB") as (a, b):
        veth(a, "192.0.2.1/24", b, "192.0.2.2/24")
        ka, kb = Keys(), Keys()
        ifa, ifb = unique("wta"), unique("wtb")
        ca = wgscope_config(tmp_path / "a.conf", ka, listen_port=51820, addresses=["10.9.0.1/24"],
                            peers=[dict(public_key=kb.public_b64, allowed_ips=["10.9.0.2/32"], endpoint="192.0.2.2:51821")])
        cb = wgscope_config(tmp_path / "b.conf", kb, listen_port=51821, addresses=["10.9.0.2/24"],
                            peers=[dict(public_key=ka.public_b64, allowed_ips=["10.9.0.1/32"])])
        ta, tb = tmp_path / "a.wgtrace", tmp_path / "b.wgtrace"
        nodes = [start_wgscope(a, tmp_path, ifa, ca, "--events", str(ta), "--events-level", "trace"),
                 start_wgscope(b, tmp_path, ifb, cb, "--events", str(tb), "--events-level", "trace")]
        started = time.time()
        ping(a, "10.9.0.2")
        a.run("ping -c 5 -i 0.2 10.9.0.2")
        # a running node's records reach its file within about a second, with no event to carry them
        wait_for(lambda: sum(e.name == "transport_received" for e in read_events(ta)) >= 5, 10,
                 what="A's trace while it runs")
        for n in nodes:
            assert n.terminate() == 0, n.output()
    sent = [e for e in read_events(ta) if e.name == "transport_sent" and e.fields["size"]]
    received = [e for e in read_events(tb) if e.name == "transport_received"]
    assert len(sent) >= 6
    # every data packet A sent, B received: same receiver index and counter
    assert {(e.fields["receiver_index"], e.fields["counter"]) for e in sent} <= \
           {(e.fields["receiver_index"], e.fields["counter"]) for e in received}
    names_a = {e.name for e in read_events(ta)}
    assert {"interface_up", "handshake_completed", "route_found", "packet_staged", "timer_armed",
            "source_allowed"} <= names_a and "events_lost" not in names_a
    walls = [e.wall for e in read_events(ta)]
    assert started - 30 < walls[0] <= walls[-1] < time.time() + 1  # wall-clock time, not the protocol clock
