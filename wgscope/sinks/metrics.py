"""`--metrics HOST:PORT`: Prometheus metrics, read from `device.snapshot()` at scrape time.

A custom prometheus_client Collector builds every family when Prometheus scrapes, from the
same JSON-safe snapshot the dashboard uses, so the data path pays nothing: counters the core
keeps anyway (Peer.tx_bytes, Peer.drops, ...) are simply read. Per-peer series carry the
labels `interface`, `peer` (full base64 public key) and `name` (the configuration's label).
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["SnapshotCollector", "MetricsServer", "parse_listen_address"]

_PEER_LABELS = ["interface", "peer", "name"]

# (snapshot key, metric name, help) for plain per-peer counters.
_PEER_COUNTERS = [
    ("tx_bytes", "wgscope_peer_transmit_bytes", "Bytes of WireGuard datagrams sent to the peer (WG-GO txBytes)."),
    ("rx_bytes", "wgscope_peer_receive_bytes", "Bytes of authenticated WireGuard datagrams received from the peer."),
    ("tx_packets", "wgscope_peer_transmit_packets", "Transport data messages sent to the peer."),
    ("rx_packets", "wgscope_peer_receive_packets", "Transport data messages accepted from the peer."),
    ("handshakes", "wgscope_peer_handshakes", "Completed handshakes (session key pairs established)."),
    ("initiations_sent", "wgscope_peer_handshake_initiations_sent", "Handshake initiations sent."),
    ("retries", "wgscope_peer_handshake_retries", "Handshake initiations retransmitted after REKEY_TIMEOUT."),
    ("cookies_received", "wgscope_peer_cookie_replies_received", "Cookie replies received from the peer."),
    ("keepalives_sent", "wgscope_peer_keepalives_sent", "Keepalive messages sent."),
    ("keepalives_received", "wgscope_peer_keepalives_received", "Keepalive messages received."),
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
        iface = self.interface
        dev = [iface]
        peers = snap.get("peers", [])

        g = GaugeMetricFamily("wgscope_peers", "Configured peers.", labels=["interface"])
        g.add_metric(dev, len(peers))
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
        c = CounterMetricFamily("wgscope_drops", "Datagrams dropped before a peer was known, by reason.",
                                labels=["interface", "reason"])
        for reason, n in sorted(snap.get("drops", {}).items()):
            c.add_metric(dev + [reason], n)
        yield c

        yield from _io_families(dev, snap.get("io"))

        counters = {key: CounterMetricFamily(name, doc, labels=_PEER_LABELS) for key, name, doc in _PEER_COUNTERS}
        drops = CounterMetricFamily("wgscope_peer_drops", "Datagrams or packets of the peer dropped, by reason.",
                                    labels=_PEER_LABELS + ["reason"])
        last = GaugeMetricFamily("wgscope_peer_last_handshake_timestamp_seconds",
                                 "Wall-clock time of the latest completed handshake (0: never).", labels=_PEER_LABELS)
        since = GaugeMetricFamily("wgscope_peer_seconds_since_handshake",
                                  "Seconds since the latest completed handshake.", labels=_PEER_LABELS)
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
            for reason, n in sorted(p.get("drops", {}).items()):
                drops.add_metric(labels + [reason], n)
            last.add_metric(labels, p.get("last_handshake_wall") or 0)
            if p.get("since_handshake") is not None:
                since.add_metric(labels, p["since_handshake"])
            staged.add_metric(labels, p.get("staged", 0))
            staged_limit.add_metric(labels, p.get("staged_limit", 0))
            keypairs = p.get("keypairs") or {}
            for slot in ("current", "previous", "next"):
                kp = keypairs.get(slot)
                if kp is not None:
                    ages.add_metric(labels + [slot], kp.get("age", 0))
            up.add_metric(labels, int(keypairs.get("current") is not None))
        yield from counters.values()
        yield from (drops, last, since, staged, staged_limit, ages, up)


_IO_COUNTERS = (  # (metric, help, snapshot key); the tun_* ones only where the node has a TUN
    ("wgscope_tun_packets", "IP packets taken from the TUN (after segmentation).", "tun_packets"),
    ("wgscope_tun_gso_writes", "Writes to the TUN of a TCP super-packet coalesced from decrypted segments.",
     "tun_gso_writes"),
    ("wgscope_tun_coalesced_packets", "Decrypted packets written as part of a super-packet.", "tun_coalesced"),
    ("wgscope_tun_write_drops", "Decrypted packets the TUN refused (queue full, link down).", "tun_write_drops"),
    ("wgscope_udp_send_errors", "Datagrams the UDP sockets failed to send.", "udp_send_errors"),
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
