"""Debian's real `prometheus` server scrapes two live wgscope nodes and answers PromQL.

Node A (namespace A) and node B (namespace B) talk over a veth; Prometheus runs in A and
scrapes A on 127.0.0.1 and B across the veth. The queries are the ones a WireGuard dashboard
asks (prometheus_wireguard_exporter's series) and wgscope's own (drops by reason).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import require_tools
from test_grafana_dashboard import dashboard_exprs
from livenet import Keys, ping, start_wgscope, wg_dump, wgscope_config
from netns import namespaces, unique, veth, wait_for

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

PROM = "127.0.0.1:9090"
README_QUERIES = ("time() - wireguard_latest_handshake_seconds > 180", "sum by (reason) (rate(wgscope_drops_total[5m]))")
CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: wgscope
    static_configs:
      - targets: ["127.0.0.1:9586", "192.0.2.2:9586"]
"""


def promql(ns, query: str) -> list[dict]:
    """The instant vector Prometheus answers for `query` (its HTTP API, from inside the namespace).

    A query Prometheus refuses (HTTP 400 with its error) fails the test; no answer yet gives []."""
    url = f"http://{PROM}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    code = ("import sys, urllib.request, urllib.error\n"
            "try: print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n"
            "except urllib.error.HTTPError as e: print(e.read().decode())")
    r = ns.run(f"{sys.executable} -c {shlex.quote(code)} {shlex.quote(url)}", check=False)
    if r.returncode or not r.stdout.strip():
        return []
    body = json.loads(r.stdout)
    assert body["status"] == "success", (query, body)
    return body["data"]["result"]


def value(ns, query: str) -> float | None:
    result = promql(ns, query)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def start_nodes_and_prometheus(tmp_path, a, b):
    """Two wgscope nodes (A names its peer "bravo", B names none) with --metrics, Prometheus
    scraping both, a ping through the tunnel and one datagram that fails mac1 at B; the keys
    and interface names."""
    veth(a, "192.0.2.1/24", b, "192.0.2.2/24")
    ka, kb = Keys(), Keys()
    ifa, ifb = unique("wpa"), unique("wpb")
    ca = wgscope_config(tmp_path / "a.conf", ka, listen_port=51820, addresses=["10.8.0.1/24"],
                        peers=[dict(public_key=kb.public_b64, allowed_ips=["10.8.0.2/32"],
                                    endpoint="192.0.2.2:51821", name="bravo")])
    cb = wgscope_config(tmp_path / "b.conf", kb, listen_port=51821, addresses=["10.8.0.2/24"],
                        peers=[dict(public_key=ka.public_b64, allowed_ips=["10.8.0.1/32"])])
    for ns, ifname, conf, address in ((a, ifa, ca, "127.0.0.1:9586"), (b, ifb, cb, "192.0.2.2:9586")):
        node = start_wgscope(ns, tmp_path, ifname, conf, "--metrics", address)
        assert f"  metrics      http://{address}/metrics\n" in node.output()  # `up` says where to scrape
    (tmp_path / "prometheus.yml").write_text(CONFIG)
    a.popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={PROM}"],
            stdout=open(tmp_path / "prometheus.log", "wb"), stderr=-2)
    ping(a, "10.8.0.2", count=3)
    # a datagram that fails mac1 (WP 5.4.4): B drops it as bad_mac1 before any peer is known
    a.run(f"{sys.executable} -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
          f"s.sendto(b'\\x01\\0\\0\\0' + bytes(144), ('192.0.2.2', 51821))\"")
    return ka, kb, ifa, ifb


def test_prometheus_answers_handshake_age_bytes_and_drops(tmp_path):
    require_tools("prometheus", "ping", "wg")
    with namespaces("A", "B") as (a, b):
        ka, kb, ifa, ifb = start_nodes_and_prometheus(tmp_path, a, b)
        handshake_done = time.time()

        # Both targets up, and a scrape taken after the traffic above
        wait_for(lambda: value(a, "sum(up)") == 2, 30, interval=0.5, what="prometheus to scrape both nodes")
        wait_for(lambda: value(a, f'wgscope_drops_total{{interface="{ifb}",reason="bad_mac1"}}') == 1, 15,
                 interval=0.5, what="the bad_mac1 drop to be scraped")

        # Latest handshake age, as existing alerts compute it from the exporter's series
        age = value(a, f'time() - wireguard_latest_handshake_seconds{{interface="{ifa}"}}')
        assert age is not None and -1 <= age <= time.time() - handshake_done + 30, age
        (row,) = promql(a, f'wireguard_latest_handshake_seconds{{interface="{ifa}"}}')
        assert row["metric"]["public_key"] == kb.public_b64 and row["metric"]["allowed_ips"] == "10.8.0.2/32"
        assert row["metric"]["friendly_name"] == "bravo"
        (row,) = promql(a, f'wireguard_latest_handshake_seconds{{interface="{ifb}"}}')
        assert "friendly_name" not in row["metric"]  # B's config names no peer

        # Bytes: what the exporter's series say equals what `wg show` says of the same node
        def agrees(ns, ifname, peer) -> bool:
            (dump,) = [line for line in wg_dump(ns, ifname) if line[0] == peer.public_b64]
            rx, tx = int(dump[5]), int(dump[6])
            assert tx > 0 and rx > 0
            return (value(a, f'wireguard_sent_bytes_total{{interface="{ifname}"}}') == tx
                    and value(a, f'wireguard_received_bytes_total{{interface="{ifname}"}}') == rx)

        for ns, ifname, peer in ((a, ifa, kb), (b, ifb, ka)):  # equal once a scrape follows the last packet
            wait_for(lambda: agrees(ns, ifname, peer), 10, interval=0.5, what=f"{ifname}'s bytes to match wg show")
        rate_query = f'sum(rate(wireguard_received_bytes_total{{interface="{ifb}"}}[1m]))'
        # rate() needs two scrapes of the series; on a loaded machine the bytes can agree at the first
        wait_for(lambda: value(a, rate_query) is not None, 10, interval=0.5, what="two scrapes for rate()")
        rate = value(a, rate_query)
        assert rate is not None and rate >= 0

        # Drops by reason, across both nodes
        by_reason = promql(a, "sum by (reason) (wgscope_drops_total)")
        drops = {r["metric"]["reason"]: float(r["value"][1]) for r in by_reason}
        assert drops.get("bad_mac1") == 1, drops
        assert value(a, f'wgscope_peer_handshakes_total{{interface="{ifa}",public_key="{kb.public_b64}"}}') >= 1

        # The README's two queries, as written there
        readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
        for query in README_QUERIES:
            assert query in readme
            promql(a, query)
        assert promql(a, README_QUERIES[0]) == []  # both sessions are fresh
        assert promql(a, README_QUERIES[1])

        # Every query of the shipped Grafana dashboard parses and evaluates on the real server
        for expr in dashboard_exprs():
            if expr.startswith("label_values("):
                continue  # a Grafana templating function, not PromQL
            promql(a, expr.replace("$interface", ".*").replace("$__rate_interval", "1m"))
