"""The handshake x-ray: steps recorded by noise.py's own trace hook, checked side against side."""

from __future__ import annotations

import pytest

from wgscope import xray
from wgscope.protocol import noise, tai64n
from wgscope.protocol.cookie import CookieChecker
from wgscope.protocol.crypto import HASH, clamp
from wgscope.protocol.entropy import Entropy
from wgscope.protocol.messages import INITIATION_SIZE, RESPONSE_SIZE


def key(label: str) -> bytes:
    return clamp(HASH(label.encode()))


S_I, S_R, E_I, E_R = key("si"), key("sr"), key("ei"), key("er")
PSK = HASH(b"psk")


def whole(**kw) -> xray.XRay:
    return xray.xray_handshake(S_I, S_R, psk=PSK, initiator_ephemeral=E_I, responder_ephemeral=E_R,
                               timestamp=tai64n.stamp(1_767_225_600.0), sender_index=7, receiver_index=9, **kw)


def test_both_sides_compute_the_same_chain_and_hash():
    xr = whole()
    ini = [s for s in xr.steps if s.message == "initiation" and s.side == "initiator"]
    res = [s for s in xr.steps if s.message == "initiation" and s.side == "responder"]
    # the four DHs, each on its own step; three AEADs; every H the two sides compute agrees
    dhs = [s.formula for s in xr.steps if "DH(" in s.formula and "dh" in s.values]
    assert len([f for f in dhs if "Ei_priv, Sr_pub" in f or "Si_priv, Sr_pub" in f]) == 2
    assert any("Er_priv, Ei_pub" in f for f in dhs) and any("Er_priv, Si_pub" in f for f in dhs)
    assert len([s for s in xr.steps if s.op == "AEAD" and s.side in ("initiator", "responder")]) == 6
    h_ini = [s.values["H"] for s in ini if s.formula.startswith("Hi := HASH")]
    h_res = [s.values["H"] for s in res if s.formula.startswith("Hi := HASH")]
    assert h_ini == h_res and len(h_ini) == 5  # IDENTIFIER, Sr_pub, ephemeral, static, timestamp
    assert xr.value("Si_pub := AEAD-OPEN", "Si_pub") == noise.StaticIdentity(S_I).public
    assert xr.value("(Cr, τ, κ) := KDF3", "Q") == PSK


def test_macs_and_layout_match_the_wire():
    xr = whole()
    wire = xr.messages["initiation"]
    assert len(wire) == INITIATION_SIZE and len(xr.messages["response"]) == RESPONSE_SIZE
    responder = noise.StaticIdentity(S_R)
    assert CookieChecker(responder.mac1_key, responder.cookie_key, Entropy.seeded(1)).check_mac1(wire)
    assert xr.value("msg.mac1", "msg.mac1", "initiation") == wire[116:132]
    rows = xray.layout("initiation", wire)
    assert [r[2] for r in rows] == ["type", "reserved", "sender", "ephemeral", "static", "timestamp", "mac1", "mac2"]
    assert rows[-1][0] + rows[-1][1] == INITIATION_SIZE and rows[2][3] == (7).to_bytes(4, "little")
    assert rows[3][3] == xr.value("(Ei_priv", "Ei_pub")
    # with a cookie, mac2 is MAC(cookie, msg_β) and no longer zero
    with_cookie = whole(cookie=bytes(range(16)))
    assert with_cookie.messages["initiation"][-16:] == with_cookie.value("msg.mac2", "msg.mac2") != bytes(16)


@pytest.mark.parametrize("side", ["initiator", "responder"])
def test_from_captured_messages_with_one_sides_keys(side):
    xr = whole()
    ini_pub, res_pub = noise.StaticIdentity(S_I).public, noise.StaticIdentity(S_R).public
    mine = dict(initiator=(S_I, res_pub, E_I), responder=(S_R, ini_pub, E_R))[side]
    got = xray.xray_from_messages(xr.messages["initiation"], xr.messages["response"], side=side, private=mine[0],
                                  remote_public=mine[1], psk=PSK, ephemeral_private=mine[2])
    assert not got.notes
    want = xr.value("(Ti_send", "Ti_send")
    assert got.value("(Ti_send", "Ti_send") == want
    # a wrong PSK shows as a response that does not verify (initiator) or differs (responder)
    wrong = xray.xray_from_messages(xr.messages["initiation"], xr.messages["response"], side=side,
                                    private=mine[0], remote_public=mine[1], psk=bytes(32), ephemeral_private=mine[2])
    assert wrong.notes and ("does not verify" in wrong.notes[0] or "differs" in wrong.notes[0])


def test_render_redacts_secrets_unless_revealed():
    xr = whole()
    secret_hex = [v[:16].hex() for s in xr.steps for n, v in s.values.items()
                  if n in xray.SECRET and n != "C" and len(v) >= 16]
    text = xray.render(xr)
    assert "redacted" in text and not any(h in text for h in secret_hex)
    assert xr.value("Hi := HASH(Hi || msg.ephemeral)", "H")[:16].hex() in text  # public values stay
    shown = xray.render(xr, reveal=True)
    assert all(h in shown for h in secret_hex)
    # the opened TAI64N timestamp reads as the time the initiator stamped (whole() stamps 2026-01-01)
    assert f"timestamp      {tai64n.stamp(1_767_225_600.0).hex()} = 2026-01-01 00:00:00.000 UTC" in shown
    assert xray.stamp_time(b"\xff" * 12) == "no calendar time (TAI64N seconds out of range)"
    assert "[116:132] mac1" in shown


def test_trace_is_off_by_default():
    """The node's calls pass no trace: nothing is recorded, the handshake is the same."""
    me_i, me_r = noise.StaticIdentity(S_I), noise.StaticIdentity(S_R)
    hs = noise.HandshakeState(remote_static=me_r.public)
    noise.precompute(me_i, hs)
    plain = noise.create_initiation(me_i, hs, 7, E_I, tai64n.stamp(1_767_225_600.0))
    trace: list = []
    hs2 = noise.HandshakeState(remote_static=me_r.public)
    noise.precompute(me_i, hs2)
    traced = noise.create_initiation(me_i, hs2, 7, E_I, tai64n.stamp(1_767_225_600.0), trace=trace)
    assert plain == traced and hs.hash == hs2.hash and len(trace) == 12


def test_replay_xray_of_a_captured_handshake(capsys):
    """`wgscope replay CAPTURE --xray FRAME` on the sample capture (its DSB holds a key log)."""
    from pathlib import Path

    from wgscope.cli import main

    sample = str(Path(__file__).resolve().parent.parent / "captures" / "sample-lab.pcapng")
    assert main(["replay", sample, "--xray", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("handshake x-ray: initiation in frame 1, response in frame 2")
    assert "DH(Sr_priv, Ei_pub)" in out and "(Cr, τ, κ) := KDF3(Cr, Q)" in out and "Ti_send" in out
    assert "redacted" not in out and "[116:132] mac1" in out and "note:" not in out
    assert main(["replay", sample, "--xray", "3"]) == 1  # a transport message: one line, no traceback
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "frame 3" in err and "not a handshake" in err


def test_xray_without_keys_shows_only_public_fields():
    from wgscope.replay.keys import KeyRing
    from wgscope.xray_capture import xray_capture

    xr = whole()
    ring = KeyRing()
    ring.add_static_public(noise.StaticIdentity(S_R).public)
    got = xray_capture(ring, xr.messages["initiation"], xr.messages["response"])
    assert [s.formula.split(" :=")[0] for s in got.steps] == ["msg.mac1"] and "no private key" in got.notes[0]
    text = xray.render(got)
    assert "[  8: 40] ephemeral" in text and "Ti_send" not in text
