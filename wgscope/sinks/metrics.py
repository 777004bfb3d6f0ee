"""`--metrics HOST:PORT`: Prometheus metrics, read from `device.snapshot()` at scrape time.

A custom prometheus_client Collector builds every family when Prometheus scrapes, from the
same JSON-safe snapshot the dashboard uses, so the data path pays nothing: counters the core
keeps anyway (Peer.tx_bytes, Peer.drops, ...) are simply read.

Two sets of series:

- prometheus_wireguard_exporter's (github.com/MindFlavor/prometheus_wireguard_exporter,
  src/wireguard.rs), so the dashboards and alerts people already run work unchanged:
  `wireguard_sent_bytes_total`, `wireguard_received_bytes_total` (counters) and
  `wireguard_latest_handshake_seconds` (a gauge holding the UNIX time of the latest
  handshake, 0 when none — despite its HELP text upstream), with the exporter's labels in
  its order: `interface`, `public_key` (the peer's), `allowed_ips` (comma-joined as in
  `wg show dump`, `(none)` when empty) and `friendly_name` only where the configuration
  names the peer (`# Name = ...`; the exporter's `-n` mode).
- wgscope's own (`wgscope_*`): drops by reason, timer countdowns, the staged queue,
  handshake attempts, keypair ages, under-load state, TUN/UDP counters. Per-peer ones carry
  `interface`, `public_key` and `friendly_name` (empty when unknown), so they join with the
  exporter's series on `public_key`.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

__all__ = ["SnapshotCollector", "MetricsServer", "parse_listen_address", "BYTES_SENT_HELP",
           "BYTES_RECEIVED_HELP"]

# ---------------------------------------------------------------- prometheus_wireguard_exporter's series
# Its HELP texts come first, word for word, so a reader who knows the exporter recognises them;
# what follows says exactly what wgscope counts (Peer.tx_bytes / Peer.rx_bytes, as wg show does).
BYTES_SENT_HELP = ("Bytes sent to the peer. wgscope counts the UDP payload of every WireGuard message it sends "
                   "to the peer: handshake initiations and responses, transport data and keepalives, as wireguard-go "
                   "counts for wg show's 'transfer: sent'. Cookie replies are not counted (they answer an "
                   "endpoint before any peer is identified).")
BYTES_RECEIVED_HELP = ("Bytes received from the peer. wgscope counts the UDP payload of every WireGuard message from "
                       "the peer that authenticated: handshake initiations and responses it accepted, transport data "
                       "and keepalives that decrypted, as wireguard-go counts for wg show's 'transfer: received'. "
                       "Cookie replies and dropped datagrams are not counted (drops: wgscope_peer_drops_total).")
LATEST_HANDSHAKE_HELP = ("Seconds from the last handshake. As in prometheus_wireguard_exporter (and wg show "
                         "dump), the value is the UNIX time in whole seconds of the latest completed "
                         "handshake, 0 if none: its age is time() - wireguard_latest_handshake_seconds.")

_PEER_LABELS = ["interface", "public_key", "friendly_name"]

# (snapshot key, metric name, help) for plain per-peer counters.
_PEER_COUNTERS = [
    ("tx_packets", "wgscope_peer_transmit_packets", "Transport data messages (keepalives included) sent."),
    ("rx_packets", "wgscope_peer_receive_packets", "Transport data messages (keepalives included) accepted."),
    ("handshakes", "wgscope_peer_handshakes", "Completed handshakes (session key pairs established)."),
    ("initiations_sent", "wgscope_peer_handshake_initiations_sent", "Handshake initiations sent (first "
     "attempts and retries)."),
    ("retries", "wgscope_peer_handshake_retries", "Handshake initiations retransmitted after REKEY_TIMEOUT."),
    ("cookies_received", "wgscope_peer_cookie_replies_received", "Cookie replies received from the peer."),
    ("cookies_sent", "wgscope_peer_cookie_replies_sent", "Cookie replies sent to the peer's endpoint."),
    ("keepalives_sent", "wgscope_peer_keepalives_sent", "Keepalive messages sent."),
    ("keepalives_received", "wgscope_peer_keepalives_received", "Keepalive messages received."),
]

# (snapshot key, metric name, help) for per-peer gauges about the handshake in progress
# (Peer.initiations_since_handshake, Peer.unanswered_initiations).
_PEER_ATTEMPT_GAUGES = [
    ("initiations_since_handshake", "wgscope_peer_handshake_initiations_since_handshake",
     "Handshake initiations sent since the latest completed handshake."),
    ("unanswered_initiations", "wgscope_peer_handshake_unanswered_initiations",
     "Initiations sent in a row that got neither a response nor a cookie reply (0 once the peer answers)."),
]


def parse_listen_address(text: str) -> tuple[str, int]:
    """'HOST:PORT', '[V6]:PORT' or ':PORT' (all addresses) -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"metrics address must be HOST:PORT, got {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host and not _is_hostname_or_ip(host):
        raise ValueError(f"metrics address has a bad host: {host!r}")
    return host or "0.0.0.0", int(port_text)


def _is_hostname_or_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host == "localhost" or all(part.isalnum() or "-" in part for part in host.split("."))


class SnapshotCollector(Collector):
    """Turns one device snapshot into metric families at each scrape."""

    def __init__(self, snapshot_fn: Callable[[], dict], interface: str) -> None:
        self.snapshot_fn = snapshot_fn
        self.interface = interface

    def _snapshot(self) -> dict:
        # The node may be changing its peer table in another thread while we read it.
        for _ in range(3):
            try:
                return self.snapshot_fn()
            except RuntimeError:
                continue
        return self.snapshot_fn()

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        peers = snap.get("peers", [])
        yield from _exporter_families(self.interface, peers)
        yield from _device_families([self.interface], snap)
        yield from _io_families([self.interface], snap.get("io"))
        yield from _peer_families(self.interface, peers)


def allowed_ips_label(peer: dict) -> str:
    """The allowed_ips label as prometheus_wireguard_exporter writes it: `wg show dump`'s field."""
    return ",".join(peer.get("allowed_ips") or []) or "(none)"


def _exporter_families(iface: str, peers: list[dict]) -> Iterator[Metric]:
    """wireguard_sent_bytes_total, wireguard_received_bytes_total, wireguard_latest_handshake_seconds.

    The exporter adds friendly_name only to peers it has a name for, so the label set varies by
    peer: samples are built directly rather than through add_metric's fixed label names."""
    sent = CounterMetricFamily("wireguard_sent_bytes", BYTES_SENT_HELP)
    received = CounterMetricFamily("wireguard_received_bytes", BYTES_RECEIVED_HELP)
    latest = GaugeMetricFamily("wireguard_latest_handshake_seconds", LATEST_HANDSHAKE_HELP)
    for p in peers:
        labels = {"interface": iface, "public_key": p.get("public_key", ""), "allowed_ips": allowed_ips_label(p)}
        if p.get("label"):
            labels["friendly_name"] = p["label"]
        sent.samples.append(Sample("wireguard_sent_bytes_total", labels, p.get("tx_bytes", 0)))
        received.samples.append(Sample("wireguard_received_bytes_total", labels, p.get("rx_bytes", 0)))
        latest.samples.append(Sample("wireguard_latest_handshake_seconds", labels,
                                     int(p.get("last_handshake_wall") or 0)))
    yield from (sent, received, latest)


def _device_families(dev: list[str], snap: dict) -> Iterator[Metric]:
    g = GaugeMetricFamily("wgscope_peers", "Configured peers.", labels=["interface"])
    g.add_metric(dev, len(snap.get("peers", [])))
    yield g
    g = GaugeMetricFamily("wgscope_under_load", "1 while handshake messages need a valid mac2 (cookie "
                          "mechanism active, WP 5.3).", labels=["interface", "forced"])
    forced = snap.get("forced_load")
    g.add_metric(dev + ["auto" if forced is None else str(bool(forced)).lower()], int(bool(snap.get("under_load"))))
    yield g
    g = GaugeMetricFamily("wgscope_handshake_rate", "Handshake messages per second seen recently.",
                          labels=["interface"])
    g.add_metric(dev, float(snap.get("handshake_rate") or 0.0))
    yield g
    c = CounterMetricFamily("wgscope_cookie_replies_sent", "Cookie replies sent under load.", labels=["interface"])
    c.add_metric(dev, snap.get("cookies_sent", 0))
    yield c
    c = CounterMetricFamily("wgscope_drops", "Datagrams or packets dropped before a peer was known (bad mac1, "
                            "unknown index, no route, ...), by reason.", labels=["interface", "reason"])
    for reason, n in sorted(snap.get("drops", {}).items()):
        c.add_metric(dev + [reason], n)
    yield c


def _peer_families(iface: str, peers: list[dict]) -> Iterator[Metric]:
    counters = {key: CounterMetricFamily(name, doc, labels=_PEER_LABELS) for key, name, doc in _PEER_COUNTERS}
    attempts = {key: GaugeMetricFamily(name, doc, labels=_PEER_LABELS) for key, name, doc in _PEER_ATTEMPT_GAUGES}
    drops = CounterMetricFamily("wgscope_peer_drops", "Datagrams or packets of the peer dropped, by reason.",
                                labels=_PEER_LABELS + ["reason"])
    since = GaugeMetricFamily("wgscope_peer_seconds_since_handshake",
                              "Seconds since the latest completed handshake (absent: never).", labels=_PEER_LABELS)
    timers = GaugeMetricFamily("wgscope_peer_timer_seconds", "Seconds until each armed protocol timer fires "
                               "(wgscope/protocol/timers.py; absent: not armed).", labels=_PEER_LABELS + ["timer"])
    staged = GaugeMetricFamily("wgscope_peer_staged_packets", "Packets queued while waiting for a session.",
                               labels=_PEER_LABELS)
    staged_limit = GaugeMetricFamily("wgscope_peer_staged_packets_limit", "Capacity of the staged queue "
                                     "(QUEUE_STAGED_SIZE).", labels=_PEER_LABELS)
    ages = GaugeMetricFamily("wgscope_peer_keypair_age_seconds", "Age of each session key pair, by slot.",
                             labels=_PEER_LABELS + ["slot"])
    up = GaugeMetricFamily("wgscope_peer_session_established", "1 when the peer has a current key pair.",
                           labels=_PEER_LABELS)
    for p in peers:
        labels = [iface, p.get("public_key", ""), p.get("label") or ""]
        for key, family in counters.items():
            family.add_metric(labels, p.get(key, 0))
        for key, family in attempts.items():
            if p.get(key) is not None:
                family.add_metric(labels, p[key])
        for reason, n in sorted(p.get("drops", {}).items()):
            drops.add_metric(labels + [reason], n)
        if p.get("since_handshake") is not None:
            since.add_metric(labels, p["since_handshake"])
        for name, due in sorted((p.get("timers") or {}).items()):
            if due is not None:
                timers.add_metric(labels + [name], due)
        staged.add_metric(labels, p.get("staged", 0))
        staged_limit.add_metric(labels, p.get("staged_limit", 0))
        keypairs = p.get("keypairs") or {}
        for slot in ("current", "previous", "next"):
            kp = keypairs.get(slot)
            if kp is not None:
                ages.add_metric(labels + [slot], kp.get("age", 0))
        up.add_metric(labels, int(keypairs.get("current") is not None))
    yield from counters.values()
    yield from attempts.values()
    yield from (drops, since, timers, staged, staged_limit, ages, up)


_IO_COUNTERS = (  # (metric, help, snapshot key); the tun_* ones only where the node has a TUN
    ("wgscope_tun_packets", "IP packets taken from the TUN (after segmentation).", "tun_packets"),
    ("wgscope_tun_gso_writes", "Writes to the TUN of a TCP super-packet coalesced from decrypted segments.",
     "tun_gso_writes"),
    ("wgscope_tun_coalesced_packets", "Decrypted packets written as part of a super-packet.", "tun_coalesced"),
    ("wgscope_tun_write_drops", "Decrypted packets the TUN refused (queue full, link down).", "tun_write_drops"),
    ("wgscope_tun_queue_drops", "Packets the kernel dropped on the TUN's queue before the node read them.",
     "tun_queue_drops"),
    ("wgscope_udp_send_errors", "Datagrams the UDP sockets failed to send.", "udp_send_errors"),
    ("wgscope_udp_receive_drops", "Datagrams the kernel dropped at the UDP sockets before the node read them "
     "(receive buffer full).", "udp_receive_drops"),
)


def _io_families(dev: list[str], io: dict | None) -> Iterator[Metric]:
    """The live node's TUN and socket counters (absent for lab nodes)."""
    if not io:
        return
    for name, doc, key in _IO_COUNTERS:
        if key in io:
            c = CounterMetricFamily(name, doc, labels=["interface"])
            c.add_metric(dev, io[key])
            yield c
    if "tun_reads" not in io:
        return
    c = CounterMetricFamily("wgscope_tun_reads", "Reads from the TUN that returned data, by kind "
                            "(gso: a TSO/USO super-packet cut into segments).", labels=["interface", "kind"])
    c.add_metric(dev + ["gso"], io["tun_gso_reads"])
    c.add_metric(dev + ["single"], io["tun_reads"] - io["tun_gso_reads"])
    yield c
    c = CounterMetricFamily("wgscope_tun_offload_drops", "TUN reads whose virtio_net_hdr made no sense, by "
                            "reason.", labels=["interface", "reason"])
    for reason, n in sorted(io["tun_offload_drops"].items()):
        c.add_metric(dev + [reason], n)
    yield c
    g = GaugeMetricFamily("wgscope_tun_offload", "1 for each TUN offload the kernel granted (TUNSETOFFLOAD).",
                          labels=["interface", "offload"])
    for name in io["tun_offload"]:
        g.add_metric(dev + [name], 1)
    yield g


class MetricsServer:
    """An HTTP /metrics endpoint on its own registry (several nodes may share a process)."""

    def __init__(self, address: str, snapshot_fn: Callable[[], dict], interface: str) -> None:
        host, port = parse_listen_address(address)
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = SnapshotCollector(snapshot_fn, interface)
        self.registry.register(self.collector)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.host = host
        self.port = self._server.server_port
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else ("::1" if self.host == "::" else self.host)
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/metrics"

    def close(self) -> None:
        with self._lock:
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None
