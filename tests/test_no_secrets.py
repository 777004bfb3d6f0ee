"""No event or log line carries key material (base64 or hex of any private, pre-shared,
ephemeral or transport key) — whether or not a key log was requested; keys go only to the
key log and the capture's secrets blocks, and only when asked for."""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json

import pytest

from lab_helpers import pair

from wgscope.protocol import device as device_module
from wgscope.protocol.entropy import generate_private_key
from wgscope.runtime.lab import LAB_EPOCH
from wgscope.sinks.jsonlog import EventLogSink
from wgscope.sinks.setup import add_sink_arguments, attach_sinks

PSK = generate_private_key()  # any 32 random bytes


def spellings(key: bytes) -> list[str]:
    return [base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode(),
            base64.b64encode(key).decode().rstrip("="), key.hex(), key.hex().upper()]


class KeyWitness:
    """Records every secret the scenario makes: static keys, ephemerals (via the device's
    Entropy's ephemeral_private) and transport keys (by wrapping derive_transport_keys)."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.keys: list[bytes] = [PSK]
        original = device_module.derive_transport_keys

        def derive(hs):
            send, recv, initiator = original(hs)
            self.keys += [send, recv]
            return send, recv, initiator

        monkeypatch.setattr(device_module, "derive_transport_keys", derive)

    def watch(self, node) -> None:
        self.keys.append(node.device.identity.private)
        draw = node.device.entropy.ephemeral_private

        def ephemeral(message: str, peer: bytes) -> bytes:
            key = draw(message, peer)
            self.keys.append(key)
            return key

        self.monkeypatch.setattr(node.device.entropy, "ephemeral_private", ephemeral)

    def fresh_key(self) -> bytes:
        key = generate_private_key()
        self.keys.append(key)
        return key


def scenario(witness: KeyWitness, sink_args: list[str], tmp_path) -> tuple[str, object]:
    """Everything that makes events: PSK handshake, data, cookies under load, rekey, roaming,
    bad datagrams, configuration changes, a new private key and a removed peer."""
    lab, a, b = pair(seed=11, connect=False)
    witness.watch(a)
    witness.watch(b)
    out, warn = io.StringIO(), io.StringIO()
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    args = parser.parse_args(["--events", "-", "--events-level", "trace", "--events-format", "json", *sink_args])
    with contextlib.redirect_stdout(out):
        sinks = attach_sinks(a.bus, args, lambda: a.device.snapshot(lab.now), "alpha", warn=warn)
    console = io.StringIO()
    b.bus.subscribe(EventLogSink(console, "console", LAB_EPOCH, "bravo"), 5)
    lab.connect(a, b, psk=PSK)
    for seq in range(3):
        a.ping("10.0.0.2", seq)
        lab.run(1)
    b.device.set_forced_load(True, lab.now)
    lab.advance(200)
    a.ping("10.0.0.2", 10)
    lab.run(8)
    b.device.set_forced_load(None, lab.now)
    b.move("198.51.100.9")
    b.ping("10.0.0.1", 11)
    lab.run(1)
    for bad in (b"", b"\x01\0\0\0" + bytes(144), b"\x04\0\0\0" + bytes(40), b"\x03\0\0\0" + bytes(60)):
        lab.network.send(b.endpoint, a.endpoint, bad)
    lab.run(1)
    peer = a.peer(b)
    a.device.set_preshared_key(peer, generate_private_key(), lab.now)
    a.device.set_allowed_ips(peer, ["10.0.0.2/32", "10.9.0.0/16"], True, lab.now)
    new_key = witness.fresh_key()  # any fresh private key, recorded as a secret
    a.device.set_private_key(new_key, lab.now)
    witness.keys.append(peer.preshared_key)
    a.device.remove_peer(b.public_key, lab.now)
    lab.run(1)
    snapshots = json.dumps([a.device.snapshot(lab.now), b.device.snapshot(lab.now)])
    sinks.close()
    recorded = "\n".join(repr(e) + json.dumps(e.as_dict(), default=str)
                         for n in (a, b) for e in n.recorder.events)
    text = "\n".join([out.getvalue(), console.getvalue(), warn.getvalue(), recorded, snapshots])
    return text, sinks


def assert_no_key_in(text: str, keys: list[bytes]) -> None:
    assert len(keys) > 10
    for key in keys:
        if key == bytes(32):
            continue
        for s in spellings(key):
            assert s not in text, f"key material leaked into events/logs: {s[:6]}..."


def test_no_key_material_in_events_or_logs_without_keylog(monkeypatch, tmp_path):
    witness = KeyWitness(monkeypatch)
    text, sinks = scenario(witness, [], tmp_path)
    assert "handshake_completed" in text and "cookie_reply_sent" in text and "endpoint_changed" in text
    assert '"level": "trace"' in text  # the per-packet events were on, and clean too
    assert_no_key_in(text, witness.keys)
    assert sinks.keylog is None and sinks.capture is None


def test_with_keylog_keys_go_only_to_the_keylog(monkeypatch, tmp_path):
    witness = KeyWitness(monkeypatch)
    keylog, capture = tmp_path / "k.log", tmp_path / "c.pcapng"
    text, sinks = scenario(witness, ["--keylog", str(keylog), "--capture", str(capture)], tmp_path)
    assert_no_key_in(text, witness.keys)
    logged = keylog.read_text()
    assert base64.b64encode(PSK).decode() in logged  # the positive control: the key log has them
    ephemerals_logged = [line.split(" = ")[1] for line in logged.splitlines()
                         if line.startswith("LOCAL_EPHEMERAL_PRIVATE_KEY")]
    assert len(ephemerals_logged) >= 2
    assert all(base64.b64decode(e) in witness.keys for e in ephemerals_logged)
    assert base64.b64encode(PSK) in capture.read_bytes()  # and the capture's secrets blocks


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_config_changed_never_shows_keys(fmt):
    from wgscope.events import INFO, EventBus
    from wgscope.protocol.device import Device

    out = io.StringIO()
    bus = EventBus(INFO)
    bus.subscribe(EventLogSink(out, fmt), INFO)
    key, psk = generate_private_key(), generate_private_key()
    dev = Device(generate_private_key(), bus=bus)
    peer = dev.add_peer(generate_private_key(), preshared_key=psk)
    dev.set_preshared_key(peer, generate_private_key(), 1.0)
    dev.set_private_key(key, 2.0)
    assert "config_changed" in out.getvalue()
    assert_no_key_in(out.getvalue(), [key, psk] * 6)
