"""`wgscope doctor CONFIG --capture FILE`: captures of a misbehaving tunnel, made in the in-process
lab with the real protocol core (LabCapture keeps only the initiator's key log, as a capture
taken on that machine would), diagnosed through the replay engine."""

from __future__ import annotations

import json
import re

import pytest

from wgscope.cli import main
from wgscope.keytext import encode
from wgscope.replay.labcapture import LabCapture
from wgscope.runtime.lab import Lab

PSK = bytes(range(32))


def make(tmp_path, kind: str) -> tuple[str, str]:
    lab = Lab(seed=3)
    a = lab.add_node("a", "192.0.2.1", tunnel="10.0.0.1/24")
    b = lab.add_node("b", "192.0.2.2", tunnel="10.0.0.2/24")
    lab.connect(a, b, psk=PSK)
    if kind == "psk":
        b.device.set_preshared_key(b.device.peers[a.public_key], bytes(reversed(PSK)))
    elif kind == "unknown":
        b.device.remove_peer(a.public_key)
    elif kind == "load":
        b.device.set_forced_load(True, 0.0)
    elif kind == "port":  # a's Endpoint for b names a port b does not listen on
        a.device.set_endpoint(a.device.peers[b.public_key], ("192.0.2.2", 51999))
    config = tmp_path / f"{kind}.conf"
    config.write_text(f"[Interface]\nPrivateKey = {encode(a.device.identity.private)}\nAddress = 10.0.0.1/24\n\n"
                      f"[Peer]\nPublicKey = {encode(b.public_key)}\nPresharedKey = {encode(PSK)}\n"
                      f"AllowedIPs = 10.0.0.2/32\nEndpoint = 192.0.2.2:51820\n")
    config.chmod(0o600)
    capture = tmp_path / f"{kind}.pcapng"
    with LabCapture(lab, capture, nodes=[a]):
        a.ping("10.0.0.2")
        lab.run(12)
        if kind == "port":  # then the peer initiates, and its handshake completes
            b.ping("10.0.0.1")
            lab.run(2)
    return str(config), str(capture)


def diagnose(capsys, config, capture) -> tuple[int, dict]:
    rc = main(["doctor", config, "--capture", capture, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def codes(doc):
    return {f["code"] for f in doc["findings"] if f["severity"] in ("warning", "error")}


@pytest.mark.parametrize("kind, status, expected", [
    ("healthy", "healthy", set()),
    ("psk", "problem", {"capture_psk_mismatch"}),
    ("unknown", "problem", {"capture_handshake_unanswered"}),
    ("load", "warning", {"capture_under_load"}),
])
def test_capture_diagnosis(tmp_path, capsys, kind, status, expected):
    rc, doc = diagnose(capsys, *make(tmp_path, kind))
    assert doc["status"] == status and codes(doc) == expected, doc["findings"]
    assert rc == (3 if status == "problem" else 0)
    assert doc["capture"]["wireguard"] > 0
    if kind == "healthy":
        assert doc["verdict"].startswith("healthy: 1 handshake completed")


def test_wrong_endpoint_port_is_not_blamed_on_keys(tmp_path, capsys):
    """The capture holds a handshake the peer initiated and completed: that proves the keys, so doctor
    leads with the wrong port it can see, not with 'the peer does not know our public key'."""
    rc, doc = diagnose(capsys, *make(tmp_path, "port"))
    assert rc == 3 and codes(doc) == {"capture_wrong_endpoint"}, doc["findings"]
    assert re.fullmatch(r"problem: \S+'s Endpoint for \S+ has the wrong port: 192\.0\.2\.2:51999, but \S+ is at "
                        r"192\.0\.2\.2:51820", doc["verdict"]), doc["verdict"]
    (f,) = [f for f in doc["findings"] if f["code"] == "capture_wrong_endpoint"]
    assert "Endpoint = 192.0.2.2:51820" in f["fix"] and "keys are proven right" in f["explanation"]
    assert any("completed" in e and "both static keys are right" in e for e in f["evidence"])
    config, capture = make(tmp_path, "port")
    main(["doctor", config, "--capture", capture])
    text = capsys.readouterr().out
    assert "does not know our public key" not in text and not re.search(r"<[a-z_ ]+>", text, re.I)


def test_unanswered_without_proof_names_real_values(tmp_path, capsys):
    """No handshake completed: key mistakes lead, and every value is filled from the capture."""
    rc, doc = diagnose(capsys, *make(tmp_path, "unknown"))
    (f,) = [f for f in doc["findings"] if f["code"] == "capture_handshake_unanswered"]
    assert f["explanation"].index("public key") < f["explanation"].index("firewall")
    assert "--dport 51820" in f["explanation"] and "192.0.2.2:51820" in f["explanation"]
    assert not re.search(r"<[a-z_ ]+>", json.dumps(doc), re.I)


def test_capture_that_is_not_a_capture(tmp_path, capsys):
    config, _ = make(tmp_path, "healthy")
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    rc, doc = diagnose(capsys, config, str(junk))
    assert rc == 3 and codes(doc) == {"capture_unreadable"}
