"""Noise_IKpsk2 as WireGuard uses it: both roles, with and without PSK, and byte-for-byte
against an independent Noise implementation (the `noiseprotocol` package)."""

import os
import warnings

import pytest
from noise.connection import Keypair as NoiseKeypair
from noise.connection import NoiseConnection

from wgscope.protocol import crypto, noise, tai64n
from wgscope.protocol.entropy import generate_private_key
from wgscope.protocol.constants import IDENTIFIER, INITIATION_SIZE, RESPONSE_SIZE
from wgscope.protocol.messages import pack_initiation, pack_response, parse_initiation, parse_response
from wgscope.protocol.send import padded_length

T = 1_700_000_000.25


def _pair(psk=None):
    si, sr = generate_private_key(), generate_private_key()
    ini_id, res_id = noise.StaticIdentity(si), noise.StaticIdentity(sr)
    hs_i = noise.HandshakeState(res_id.public, psk or noise.ZERO_PSK)
    hs_r = noise.HandshakeState(ini_id.public, psk or noise.ZERO_PSK)
    noise.precompute(ini_id, hs_i)
    noise.precompute(res_id, hs_r)
    return ini_id, res_id, hs_i, hs_r


@pytest.mark.parametrize("psk", [None, os.urandom(32)], ids=["no-psk", "psk"])
def test_handshake_both_roles_derive_matching_keys(psk):
    ini_id, res_id, hs_i, hs_r = _pair(psk)
    init = noise.create_initiation(ini_id, hs_i, 11, generate_private_key(), tai64n.stamp(T))
    wire = pack_initiation(init)
    assert len(wire) == INITIATION_SIZE
    opened = noise.open_initiation(res_id, parse_initiation(wire))
    assert opened.remote_static == ini_id.public
    assert tai64n.unstamp(opened.timestamp) == pytest.approx(T, abs=0.02)
    noise.accept_initiation(hs_r, opened, now=0.0, flood_interval=0.02)
    resp = noise.create_response(hs_r, 22, generate_private_key())
    wire = pack_response(resp)
    assert len(wire) == RESPONSE_SIZE
    noise.consume_response(ini_id, hs_i, parse_response(wire))
    i_send, i_recv, i_role = noise.derive_transport_keys(hs_i)
    r_send, r_recv, r_role = noise.derive_transport_keys(hs_r)
    assert (i_role, r_role) == (True, False)
    assert i_send == r_recv and i_recv == r_send and i_send != i_recv


def test_psk_mismatch_fails_at_response():
    ini_id, res_id, hs_i, hs_r = _pair(os.urandom(32))
    hs_r.preshared_key = os.urandom(32)
    init = noise.create_initiation(ini_id, hs_i, 1, generate_private_key(), tai64n.stamp(T))
    noise.accept_initiation(hs_r, noise.open_initiation(res_id, init), 0.0, 0.02)
    resp = noise.create_response(hs_r, 2, generate_private_key())
    with pytest.raises(noise.HandshakeError) as e:
        noise.consume_response(ini_id, hs_i, resp)
    assert e.value.reason == "decryption_failed"
    assert hs_i.state is noise.State.INITIATION_CREATED  # nothing committed


def test_initiation_to_wrong_responder_fails():
    ini_id, res_id, hs_i, _ = _pair()
    other = noise.StaticIdentity(generate_private_key())
    init = noise.create_initiation(ini_id, hs_i, 1, generate_private_key(), tai64n.stamp(T))
    with pytest.raises(noise.HandshakeError, match="decryption_failed"):
        noise.open_initiation(other, init)


def test_stale_timestamp_and_flood_are_refused():
    ini_id, res_id, hs_i, hs_r = _pair()
    first = noise.open_initiation(res_id, noise.create_initiation(ini_id, hs_i, 1, generate_private_key(), tai64n.stamp(T)))
    noise.accept_initiation(hs_r, first, 0.0, 0.02)
    with pytest.raises(noise.HandshakeError, match="stale_timestamp"):
        noise.accept_initiation(hs_r, first, 10.0, 0.02)  # replayed initiation
    newer = noise.open_initiation(res_id, noise.create_initiation(ini_id, hs_i, 2, generate_private_key(), tai64n.stamp(T + 1)))
    with pytest.raises(noise.HandshakeError, match="flood"):
        noise.accept_initiation(hs_r, newer, 0.001, 0.02)
    noise.accept_initiation(hs_r, newer, 0.05, 0.02)


@pytest.mark.parametrize("psk", [bytes(32), os.urandom(32)], ids=["no-psk", "psk"])
def test_against_independent_noise_implementation(psk):
    """Our messages and transport keys equal noiseprotocol's for the same keys."""
    si, sr, ei, er = (generate_private_key() for _ in range(4))

    def conn(initiator, static, remote_pub, eph):
        c = NoiseConnection.from_name(b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s")
        c.set_as_initiator() if initiator else c.set_as_responder()
        c.set_prologue(IDENTIFIER)  # WireGuard's Hi := HASH(Ci || IDENTIFIER) is Noise's prologue
        c.set_psks(psk)
        c.set_keypair_from_private_bytes(NoiseKeypair.STATIC, static)
        if remote_pub:
            c.set_keypair_from_public_bytes(NoiseKeypair.REMOTE_STATIC, remote_pub)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c.set_keypair_from_private_bytes(NoiseKeypair.EPHEMERAL, eph)
        c.start_handshake()
        return c

    their_i = conn(True, si, crypto.public_key(sr), ei)
    their_r = conn(False, sr, None, er)
    m1 = their_i.write_message(tai64n.stamp(T))

    ini_id, res_id = noise.StaticIdentity(si), noise.StaticIdentity(sr)
    hs_i, hs_r = noise.HandshakeState(res_id.public, psk), noise.HandshakeState(ini_id.public, psk)
    noise.precompute(ini_id, hs_i)
    ours1 = pack_initiation(noise.create_initiation(ini_id, hs_i, 1, ei, tai64n.stamp(T)))
    assert ours1[8:116] == m1  # ephemeral, encrypted static, encrypted timestamp

    assert their_r.read_message(ours1[8:116]) == tai64n.stamp(T)  # they accept ours
    m2 = their_r.write_message(b"")
    noise.accept_initiation(hs_r, noise.open_initiation(res_id, parse_initiation(ours1)), 0.0, 0.02)
    ours2 = pack_response(noise.create_response(hs_r, 2, er))
    assert ours2[12:60] == m2  # ephemeral, encrypted nothing
    their_i.read_message(ours2[12:60])

    noise.consume_response(ini_id, hs_i, parse_response(ours2))
    send, recv, _ = noise.derive_transport_keys(hs_i)
    payload = os.urandom(45)
    padded = payload + bytes(padded_length(len(payload), 1420) - len(payload))
    assert crypto.AEAD(send, 0, padded, b"") == their_i.encrypt(padded)  # Split(): initiator sends with k1
    assert crypto.AEAD_OPEN(recv, 0, their_r.encrypt(b"pong"), b"") == b"pong"
