"""--metrics: a real HTTP scrape of a lab node, parsed with prometheus_client's own parser."""

from __future__ import annotations

import argparse
import contextlib
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab_helpers import pair
from wgscope.keytext import encode
from wgscope.sinks.metrics import parse_listen_address
from wgscope.sinks.setup import add_sink_arguments, attach_sinks


def scrape(url: str) -> dict:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


@contextlib.contextmanager
def metrics_of(lab, node):
    """--metrics on an ephemeral port for a lab node named alpha; closed after."""
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    sinks = attach_sinks(node.bus, parser.parse_args(["--metrics", "127.0.0.1:0"]),
                         lambda: node.device.snapshot(lab.now), "alpha", warn=None)
    try:
        yield sinks
    finally:
        sinks.close()


def samples(family, **labels):
    return [s for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_scrape_shows_per_peer_series():
    lab, a, b = pair()
    with metrics_of(lab, a) as sinks:
        for seq in range(3):
            a.ping("10.0.0.2", seq)
            lab.run(1)
        lab.network.send(b.endpoint, a.endpoint, b"\x01\0\0\0" + bytes(144))  # bad mac1: a device drop
        lab.run(1)
        a.device.set_forced_load(True, lab.now)
        fams = scrape(sinks.metrics.url)
    peer = encode(b.public_key)
    labels = {"interface": "alpha", "public_key": peer, "friendly_name": "bravo"}
    exporter = dict(labels, allowed_ips="10.0.0.2/32")  # prometheus_wireguard_exporter's label set
    p = a.device.peers[b.public_key]
    sent = samples(fams["wireguard_sent_bytes"], **exporter)
    assert len(sent) == 1 and sent[0].name == "wireguard_sent_bytes_total" and sent[0].value == p.tx_bytes > 0
    assert samples(fams["wireguard_received_bytes"], **exporter)[0].value == p.rx_bytes > 0
    assert fams["wireguard_sent_bytes"].type == "counter" and fams["wireguard_received_bytes"].type == "counter"
    latest = fams["wireguard_latest_handshake_seconds"]
    assert latest.type == "gauge" and samples(latest, **exporter)[0].value == int(p.last_handshake_wall)
    assert samples(fams["wgscope_peer_transmit_packets"], **labels)[0].value == 3
    assert samples(fams["wgscope_peer_receive_packets"], **labels)[0].value == 3
    assert samples(fams["wgscope_peer_handshakes"], **labels)[0].value == 1
    assert fams["wgscope_peer_handshakes"].type == "counter"
    ages = {s.labels["slot"]: s.value for s in samples(fams["wgscope_peer_keypair_age_seconds"], **labels)}
    assert set(ages) == {"current"} and 2.9 < ages["current"] < 4.1
    timers = {s.labels["timer"]: s.value for s in samples(fams["wgscope_peer_timer_seconds"], **labels)}
    assert set(timers) == {n for n, t in p.timers.items() if t.deadline is not None}
    assert all(timers[n] == pytest.approx(p.timers[n].deadline - lab.now, abs=0.01) for n in timers)
    assert samples(fams["wgscope_peer_staged_packets"], **labels)[0].value == 0
    assert samples(fams["wgscope_peer_session_established"], **labels)[0].value == 1
    assert samples(fams["wgscope_drops"], interface="alpha", reason="bad_mac1")[0].value == 1
    assert samples(fams["wgscope_under_load"], interface="alpha")[0].value == 1
    assert samples(fams["wgscope_peers"], interface="alpha")[0].value == 1


def test_exporter_series_without_name_or_handshake():
    """An unnamed peer gets no friendly_name label; no handshake yet reads 0 (the exporter's 'never')."""
    lab, a, b = pair()
    a.device.peers[b.public_key].label = None
    from wgscope.sinks.metrics import SnapshotCollector

    fams = {f.name: f for f in SnapshotCollector(lambda: a.device.snapshot(lab.now), "alpha").collect()}
    (sample,) = fams["wireguard_latest_handshake_seconds"].samples
    assert sample.labels == {"interface": "alpha", "public_key": encode(b.public_key), "allowed_ips": "10.0.0.2/32"}
    assert sample.value == 0
    assert fams["wireguard_sent_bytes"].samples[0].value == 0


def test_byte_counters_count_what_their_help_says():
    """Against the lab's wire: every message to the peer counts as sent; as received, only what
    authenticated; cookie replies count on neither side (wireguard-go's txBytes/rxBytes)."""
    from wgscope.sinks.metrics import SnapshotCollector

    lab, a, b = pair()
    wire = []
    lab.network.taps.append(wire.append)
    b.device.set_forced_load(True, lab.now)  # alpha's first initiation gets a cookie reply, the retry a response
    a.ping("10.0.0.2")
    lab.run(7)
    b.device.set_forced_load(None, lab.now)
    b.ping("10.0.0.1", seq=2)
    lab.run(1)

    def sizes(src, kinds=(1, 2, 4)):
        return sum(len(w.data) for w in wire if w.src == src.endpoint and w.delivered and w.data[0] in kinds)

    def value(node, family):
        fams = {f.name: f for f in SnapshotCollector(lambda: node.device.snapshot(lab.now), node.name).collect()}
        return fams[family].samples[0].value

    cookie_replies = [w for w in wire if w.data[0] == 3]
    assert len(cookie_replies) == 1 and a.peer(b).handshakes_completed == 1
    assert value(a, "wireguard_sent_bytes") == sizes(a) == a.peer(b).tx_bytes
    assert value(b, "wireguard_sent_bytes") == sizes(b)  # without the 64-byte cookie reply
    assert value(b, "wireguard_received_bytes") == sizes(a) - 148  # the initiation answered by a cookie
    assert value(a, "wireguard_received_bytes") == sizes(b)
    assert "Cookie replies are not counted" in SnapshotCollector(lambda: a.device.snapshot(lab.now), "a").collect(
    ).__next__().documentation


def test_unanswered_initiations_gauge():
    from wgscope.sinks.metrics import SnapshotCollector

    lab, a, b = pair()
    lab.network.blocked.add(("192.0.2.1", "192.0.2.2"))
    a.ping("10.0.0.2")
    lab.run(12)
    fams = {f.name: f for f in SnapshotCollector(lambda: a.device.snapshot(lab.now), "alpha").collect()}
    p = a.peer(b)
    assert p.unanswered_initiations == 3  # the first, then retries after REKEY_TIMEOUT (+ jitter) twice
    assert fams["wgscope_peer_handshake_unanswered_initiations"].samples[0].value == 3
    assert fams["wgscope_peer_handshake_initiations_since_handshake"].samples[0].value == 3


def test_peer_drops_by_reason():
    lab, a, b = pair()
    with metrics_of(lab, a) as sinks:
        a.ping("10.0.0.2")
        lab.run(1)
        kp = a.device.peers[b.public_key].keypairs.current
        # a transport message for alpha's session with a forged tag: decryption_failed, charged to the peer
        lab.network.send(b.endpoint, a.endpoint, b"\x04\0\0\0" + kp.local_index.to_bytes(4, "little")
                         + (99).to_bytes(8, "little") + bytes(32))
        lab.run(1)
        fams = scrape(sinks.metrics.url)
    drops = samples(fams["wgscope_peer_drops"], public_key=encode(b.public_key), reason="decryption_failed")
    assert drops and drops[0].value == 1


@pytest.mark.parametrize("text,want", [("127.0.0.1:9586", ("127.0.0.1", 9586)), (":9586", ("0.0.0.0", 9586)),
                                       ("[::1]:9586", ("::1", 9586)), ("localhost:0", ("localhost", 0))])
def test_listen_address(text, want):
    assert parse_listen_address(text) == want


@pytest.mark.parametrize("text", ["9586", "host:", "host:99999", "a b:1"])
def test_bad_listen_address_is_a_user_error(text):
    from wgscope.cli import UserError

    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    lab, a, _ = pair()
    with pytest.raises(UserError):
        attach_sinks(a.bus, parser.parse_args(["--metrics", text]), lambda: a.device.snapshot(lab.now), "x")
