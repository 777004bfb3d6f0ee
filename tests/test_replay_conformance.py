"""Conformance of another implementation (issue 13, item 4): with one side's keys, replay
re-executes that side and says where its timing departs from the protocol, in the protocol's
terms. The "other implementation" here is the lab's own node with one constant changed while it
runs (the fake clock makes each capture take milliseconds); replay re-executes it with the real
constants."""

from __future__ import annotations

import pytest

from wgscope.protocol import keypair as keypair_module
from wgscope.protocol import receive as receive_module
from wgscope.protocol import send as send_module
from wgscope.protocol import timer_hooks
from wgscope.replay import replay_capture
from wgscope.replay.labcapture import LabCapture

from test_replay_lab import two_nodes


def divergences(r, who=None):
    return [f for f in r.findings if f.kind == "divergence"]


def keepalive_after_7s(lab, a, b):
    a.ping("10.0.0.2")
    lab.run(12)


def retry_after(lab, a, b, seconds=20):
    lab.network.blocked.add(("192.0.2.1", "192.0.2.2"))
    a.ping("10.0.0.2")
    lab.run(seconds)


def talk_for(seconds):
    def run(lab, a, b):
        for i in range(int(seconds // 10)):
            a.ping("10.0.0.2", seq=i)
            lab.run(10)
    return run


CASES = {
    # (module, constant, value while the "other implementation" runs), scenario, what replay must say
    "keepalive early": ([(timer_hooks, "KEEPALIVE_TIMEOUT", 7.0)], keepalive_after_7s,
                        "s before its protocol core would; a passive keepalive follows data received by "
                        "KEEPALIVE_TIMEOUT (10 s)"),
    "retry early": ([(timer_hooks, "REKEY_TIMEOUT", 3.0), (send_module, "REKEY_TIMEOUT", 3.0)], retry_after,
                    "s after its previous one; the protocol sends at most one initiation per REKEY_TIMEOUT (5 s)"),
    "retry late": ([(timer_hooks, "REKEY_TIMEOUT", 8.0)], retry_after,
                   "s after its protocol core did (timer retransmit_handshake: an unanswered initiation is retried "
                   "after REKEY_TIMEOUT (5 s) + up to 334 ms jitter"),
    "no rekey at 120 s": ([(send_module, "REKEY_AFTER_TIME", 1000.0)], talk_for(170),
                          "starts a rekey (WP §6.2)"),
    "retries past 90 s": ([(timer_hooks, "MAX_TIMER_HANDSHAKES", 25)], lambda lab, a, b: retry_after(lab, a, b, 120),
                          "s after its protocol core gave up; the protocol retries for REKEY_ATTEMPT_TIME (90 s)"),
    # bravo (the responder, which never rekeys) answers on a keypair past REJECT_AFTER_TIME;
    # alpha, the same implementation, neither rekeys nor stops either
    "data past 180 s": ([(keypair_module, "REJECT_AFTER_TIME", 1000.0), (send_module, "REKEY_AFTER_TIME", 1000.0),
                         (receive_module, "REJECT_AFTER_TIME", 1000.0),
                         (receive_module, "REKEY_ON_RECEIVE_AGE", 1000.0)],
                        talk_for(200), "old (reject after time); no keypair is used past REJECT_AFTER_TIME (180 s)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_departures_from_the_protocol_are_named(tmp_path, monkeypatch, case):
    patches, scenario, sentence = CASES[case]
    lab, a, b = two_nodes(seed=2)
    path = tmp_path / "other.pcapng"
    with monkeypatch.context() as m:
        for module, name, value in patches:
            m.setattr(module, name, value)
        # the key log of one side only: that side is re-executed
        with LabCapture(lab, path, nodes=[b if case == "data past 180 s" else a]):
            scenario(lab, a, b)
    r = replay_capture(path)
    found = divergences(r)
    assert any(sentence in f.detail for f in found), [f.detail for f in found]
    assert all(f.frames or "sent none" in f.detail for f in found)
    assert [n["name"] for n in r.nodes] == [r.nodes[0]["name"]]  # one side re-executed


def test_a_conforming_capture_has_no_divergence(tmp_path):
    lab, a, b = two_nodes(seed=2)
    path = tmp_path / "same.pcapng"
    with LabCapture(lab, path, nodes=[a]):
        retry_after(lab, a, b)
        lab.network.blocked.clear()
        talk_for(200)(lab, a, b)
    r = replay_capture(path)
    assert divergences(r) == [] and r.nodes[0]["divergences"] == 0


def test_a_counter_past_the_limit_is_named(tmp_path):
    """A transport message the side sealed with its own key but a counter past REJECT_AFTER_MESSAGES."""
    from wgscope.protocol.constants import REJECT_AFTER_MESSAGES
    from wgscope.protocol.crypto import nonce
    from wgscope.protocol.messages import pack_transport_header
    from wgscope.runtime import packets

    lab, a, b = two_nodes(seed=2)
    path = tmp_path / "limit.pcapng"
    with LabCapture(lab, path, nodes=[a]):
        a.ping("10.0.0.2")
        lab.run(1)
        kp = a.peer(b).keypairs.current
        inner = packets.echo("10.0.0.1", "10.0.0.2", 9).ljust(96, b"\0")
        counter = REJECT_AFTER_MESSAGES + 5
        lab.network.send(a.endpoint, b.endpoint, pack_transport_header(kp.remote_index, counter)
                         + kp.send.encrypt(nonce(counter), inner, None))
        lab.run(1)
    (found,) = divergences(replay_capture(path))
    assert "past REJECT_AFTER_MESSAGES" in found.detail and found.frames
