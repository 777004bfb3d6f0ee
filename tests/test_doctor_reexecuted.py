"""`wgscope doctor --capture FILE` reasons from replay's re-execution (issue 15, item 5): a response
the initiator's own core rejects is the pre-shared key mismatch, and each divergence replay finds
is a finding of its own, with its frame numbers and replay's sentence. The captures are made in
the lab with the real protocol core; no configuration is given (the capture's DSB is enough)."""

from __future__ import annotations

import json

from wgscope.cli import main
from wgscope.protocol import send as send_module
from wgscope.protocol import timer_hooks
from wgscope.replay.labcapture import LabCapture

from test_replay_lab import psk_mismatch_from_alpha, psk_mismatch_from_bravo, two_nodes

RETRY_RULE = "the protocol sends at most one initiation per REKEY_TIMEOUT (5 s)"


def doctor(capsys, capture) -> tuple[int, dict, str]:
    rc = main(["doctor", "--capture", str(capture), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert main(["doctor", "--capture", str(capture)]) == rc
    return rc, doc, capsys.readouterr().out


def test_psk_mismatch_from_the_initiators_own_core(tmp_path, capsys):
    path, alpha = psk_mismatch_from_alpha(tmp_path)
    live = alpha.recorder.of("handshake_response_rejected")
    assert live and {e.fields["reason"] for e in live} == {"decryption_failed"}
    rc, doc, text = doctor(capsys, path)
    assert rc == 3 and doc["verdict"] == "problem: the responses do not verify: the pre-shared keys differ"
    assert doc["config"] is None and doc["capture_file"] == str(path) and text.startswith(f"{path}: problem: ")
    (f,) = [f for f in doc["findings"] if f["code"] == "capture_psk_mismatch"]
    assert "re-executed" in f["explanation"] and "WP §5.4.3" in f["explanation"]
    # one line per response the node rejected, with the response's and its initiation's frames
    assert len(f["evidence"]) == len(live)
    assert f["evidence"][0].startswith("frame 2: the response to alpha's initiation in frame 1 does not verify")
    assert "capture_healthy" not in {g["code"] for g in doc["findings"]}
    assert "pre-shared keys differ" in text and "frame 2" in text


def test_psk_mismatch_seen_from_the_responders_side(tmp_path, capsys):
    """Only bravo's keys (bravo has the PSK, alpha none): bravo's responses verify under bravo's keys,
    yet alpha never sends on those sessions and initiates again. Not healthy: the PSKs differ."""
    path, a, b = psk_mismatch_from_bravo(tmp_path)
    assert a.recorder.of("handshake_response_rejected") and not b.recorder.of("transport_received")
    rc, doc, _ = doctor(capsys, path)
    assert rc == 3 and "pre-shared keys likely differ" in doc["verdict"], doc["verdict"]
    (f,) = [f for f in doc["findings"] if f["code"] == "capture_psk_mismatch"]
    assert f["evidence"][0].startswith("frame 2: ") and "initiated again" in f["evidence"][0]
    assert "capture_healthy" not in {g["code"] for g in doc["findings"]}


def test_a_matching_psk_is_not_a_mismatch(tmp_path, capsys):
    lab, a, b = two_nodes(seed=2)
    path = tmp_path / "same.pcapng"
    with LabCapture(lab, path, nodes=[a]):
        a.ping("10.0.0.2")
        lab.run(3)
    rc, doc, _ = doctor(capsys, path)
    found = {f["code"] for f in doc["findings"]}
    assert rc == 0 and "capture_psk_mismatch" not in found and "capture_divergence" not in found, found
    assert doc["verdict"].startswith("healthy: 1 handshake completed")


def test_divergences_are_findings_with_frames_and_replays_sentence(tmp_path, capsys, monkeypatch):
    """The "other implementation" retries every 3 s instead of REKEY_TIMEOUT (5 s) + jitter."""
    lab, a, b = two_nodes(seed=2)
    path = tmp_path / "early.pcapng"
    with monkeypatch.context() as m:
        m.setattr(timer_hooks, "REKEY_TIMEOUT", 3.0)
        m.setattr(send_module, "REKEY_TIMEOUT", 3.0)
        with LabCapture(lab, path, nodes=[a]):
            lab.network.blocked.add(("192.0.2.1", "192.0.2.2"))
            a.ping("10.0.0.2")
            lab.run(20)
    rc, doc, text = doctor(capsys, path)
    divergent = doc["capture"]["findings"]
    divergent = [f for f in divergent if f["kind"] == "divergence"]
    assert len(divergent) >= 4
    (f,) = [f for f in doc["findings"] if f["code"] == "capture_divergence"]  # one rule broken: one finding
    frames = sorted(n for d in divergent for n in d["frames"])
    assert f["severity"] == "warning"
    assert f["title"].startswith(f"frames {frames[0]}, {frames[1]}, ") and "sent an initiation" in f["title"]
    assert f["title"].endswith(f"({len(divergent)} times)")
    assert RETRY_RULE in f["explanation"] and "re-executed" in f["explanation"]
    assert f["evidence"][0].startswith(f"frame {frames[0]}: ") and RETRY_RULE in f["evidence"][0]
    assert "[warn] divergence\n" not in text and RETRY_RULE in " ".join(text.split())  # (wrapped)


def test_doctor_needs_a_config_or_a_capture(capsys):
    assert main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--capture" in err
