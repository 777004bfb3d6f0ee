"""docs/grafana-dashboard.json: valid JSON whose every query names only series wgscope serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from lab_helpers import pair
from wgscope.sinks.metrics import SnapshotCollector

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"
SERIES = re.compile(r"\b((?:wireguard|wgscope)_[a-z0-9_]+)")


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    return exprs


def served_series() -> set[str]:
    """Every series name a scrape can hold (TYPE lines are written even for families with no samples)."""
    lab, a, b = pair()
    a.ping("10.0.0.2")
    lab.run(1)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: a.device.snapshot(lab.now), "alpha"))
    text = generate_latest(registry).decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}


def test_every_dashboard_query_names_served_series():
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    served = served_series()
    for expr in exprs:
        names = SERIES.findall(expr)
        assert names, f"names no wgscope series: {expr}"
        assert set(names) <= served, f"{expr}: not served: {set(names) - served}"
    # the exporter's three series are the dashboard's backbone
    used = {n for e in exprs for n in SERIES.findall(e)}
    exporter = {"wireguard_sent_bytes_total", "wireguard_received_bytes_total", "wireguard_latest_handshake_seconds"}
    assert exporter <= used
