"""--metrics: a real HTTP scrape of a lab node, parsed with prometheus_client's own parser."""

from __future__ import annotations

import argparse
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


def samples(family, **labels):
    return [s for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_scrape_shows_per_peer_series():
    lab, a, b = pair()
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    sinks = attach_sinks(a.bus, parser.parse_args(["--metrics", "127.0.0.1:0"]),
                         lambda: a.device.snapshot(lab.now), "alpha", warn=None)
    try:
        for seq in range(3):
            a.ping("10.0.0.2", seq)
            lab.run(1)
        lab.network.send(b.endpoint, a.endpoint, b"\x01\0\0\0" + bytes(144))  # bad mac1: a device drop
        lab.run(1)
        a.device.set_forced_load(True, lab.now)
        fams = scrape(sinks.metrics.url)
    finally:
        sinks.close()
    peer = encode(b.public_key)
    labels = {"interface": "alpha", "peer": peer, "name": "bravo"}
    p = a.device.peers[b.public_key]
    assert samples(fams["wgscope_peer_transmit_bytes"], **labels)[0].value == p.tx_bytes > 0
    assert samples(fams["wgscope_peer_receive_bytes"], **labels)[0].value == p.rx_bytes > 0
    assert samples(fams["wgscope_peer_transmit_packets"], **labels)[0].value == 3
    assert samples(fams["wgscope_peer_receive_packets"], **labels)[0].value == 3
    assert samples(fams["wgscope_peer_handshakes"], **labels)[0].value == 1
    assert fams["wgscope_peer_handshakes"].type == "counter"
    last = samples(fams["wgscope_peer_last_handshake_timestamp_seconds"], **labels)[0].value
    assert last == pytest.approx(p.last_handshake_wall)
    ages = {s.labels["slot"]: s.value for s in samples(fams["wgscope_peer_keypair_age_seconds"], **labels)}
    assert set(ages) == {"current"} and 2.9 < ages["current"] < 4.1
    assert samples(fams["wgscope_peer_staged_packets"], **labels)[0].value == 0
    assert samples(fams["wgscope_peer_session_established"], **labels)[0].value == 1
    assert samples(fams["wgscope_drops"], interface="alpha", reason="bad_mac1")[0].value == 1
    assert samples(fams["wgscope_under_load"], interface="alpha")[0].value == 1
    assert samples(fams["wgscope_peers"], interface="alpha")[0].value == 1


def test_peer_drops_by_reason():
    lab, a, b = pair()
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    sinks = attach_sinks(a.bus, parser.parse_args(["--metrics", "127.0.0.1:0"]),
                         lambda: a.device.snapshot(lab.now), "alpha", warn=None)
    try:
        a.ping("10.0.0.2")
        lab.run(1)
        kp = a.device.peers[b.public_key].keypairs.current
        # a transport message for alpha's session with a forged tag: decryption_failed, charged to the peer
        lab.network.send(b.endpoint, a.endpoint, b"\x04\0\0\0" + kp.local_index.to_bytes(4, "little")
                         + (99).to_bytes(8, "little") + bytes(32))
        lab.run(1)
        fams = scrape(sinks.metrics.url)
    finally:
        sinks.close()
    drops = samples(fams["wgscope_peer_drops"], peer=encode(b.public_key), reason="decryption_failed")
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
