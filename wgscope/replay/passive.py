"""Noise_IKpsk2 seen from the wire: the handshake computed by an observer holding *some* keys.

The live core (protocol/noise.py) is one side of the handshake and holds that side's keys.
An observer holds whatever the user supplied, so each Diffie-Hellman value is computed from
whichever of its two private halves is known — the same choices Wireshark makes
(epan/dissectors/packet-wireguard.c, wg_process_initiation / wg_process_response):

    initiation  dh1 = DH(S_r, E_i)   = DH(e_i, S_r)     responder static or initiator ephemeral
                dh2 = DH(S_r, S_i)   = DH(s_i, S_r)     either static private key
    response    dh3 = DH(E_r, E_i)   = DH(e_i, E_r)     either ephemeral private key
                dh4 = DH(E_r, S_i)   = DH(s_i, E_r)     responder ephemeral or initiator static

With static keys alone the peers and timestamps are recovered, but dh3 needs an ephemeral
key, so transport data stays sealed (WP §5.4: forward secrecy).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.crypto import AEAD_OPEN, DH, HASH, KDF1, KDF2, KDF3, AuthenticationError, DHError
from ..protocol.messages import Initiation, Response
from ..protocol.noise import INITIAL_CHAIN_KEY, INITIAL_HASH, ZERO_PSK
from .keys import KeyRing


@dataclass
class InitiationView:
    """What an observer learned from one initiation."""

    responder: bytes | None = None  # static public key whose mac1 key matches
    initiator: bytes | None = None  # decrypted static public key of the initiator
    timestamp: bytes | None = None  # TAI64N, when dh2 was computable
    chaining_key: bytes = b""  # C and H after the initiation, for the response
    hash: bytes = b""
    failure: str | None = None  # why decryption stopped: no_keys | decryption_failed


@dataclass
class ResponseView:
    send_i: bytes | None = None  # T_send of the initiator = T_recv of the responder
    send_r: bytes | None = None
    psk_used: bool = False
    initiator_psk: bool = False  # it opened under a PSK the initiator's own key log holds
    failure: str | None = None  # no_ephemeral_key | psk_unknown | decryption_failed


def mac1_owner(keyring: KeyRing, data: bytes) -> bytes | None:
    """The known static public key whose mac1 authenticates this handshake message: the
    core's own check (protocol/cookie.py CookieChecker.check_mac1), once per known key."""
    for pub, checker in keyring.mac1_checkers().items():
        if checker.check_mac1(data):
            return pub
    return None


def mac1_valid(pub: bytes, data: bytes, keyring: KeyRing) -> bool:
    checker = keyring.mac1_checkers().get(pub)
    return checker is not None and checker.check_mac1(data)


def _dh(private: bytes, public: bytes) -> bytes | None:
    try:
        return DH(private, public)
    except DHError:
        return None


def open_initiation(keyring: KeyRing, msg: Initiation, responder: bytes) -> InitiationView:
    """Decrypt what the keys allow of an initiation addressed to `responder` (its static public key)."""
    view = InitiationView(responder=responder)
    s_r = keyring.static_private.get(responder)
    e_i = keyring.ephemeral_private.get(msg.ephemeral)
    if s_r is None and e_i is None:
        view.failure = "no_keys"
        return view
    C = KDF1(INITIAL_CHAIN_KEY, msg.ephemeral)
    H = HASH(HASH(INITIAL_HASH + responder) + msg.ephemeral)
    dh1 = _dh(s_r, msg.ephemeral) if s_r is not None else _dh(e_i, responder)
    if dh1 is None:
        view.failure = "decryption_failed"
        return view
    C, k = KDF2(C, dh1)
    try:
        initiator = AEAD_OPEN(k, 0, msg.encrypted_static, H)
    except AuthenticationError:
        view.failure = "decryption_failed"
        return view
    view.initiator = initiator
    H = HASH(H + msg.encrypted_static)
    s_i = keyring.static_private.get(initiator)
    if s_r is None and s_i is None:
        view.failure = "no_keys"
        return view
    dh2 = _dh(s_r, initiator) if s_r is not None else _dh(s_i, responder)
    if dh2 is None:
        view.failure = "decryption_failed"
        return view
    C, k = KDF2(C, dh2)
    try:
        view.timestamp = AEAD_OPEN(k, 0, msg.encrypted_timestamp, H)
    except AuthenticationError:
        view.failure = "decryption_failed"
        return view
    view.chaining_key, view.hash = C, HASH(H + msg.encrypted_timestamp)
    return view


def open_response(keyring: KeyRing, init: InitiationView, init_ephemeral: bytes, msg: Response) -> ResponseView:
    """Finish the handshake from the wire and derive both transport keys (WP §5.4.3, §5.4.5)."""
    view = ResponseView()
    if not init.chaining_key or init.initiator is None:
        view.failure = "no_keys"
        return view
    e_i = keyring.ephemeral_private.get(init_ephemeral)
    s_i = keyring.static_private.get(init.initiator)
    e_r = keyring.ephemeral_private.get(msg.ephemeral)
    if e_r is not None:
        dh3, dh4 = _dh(e_r, init_ephemeral), _dh(e_r, init.initiator)
    elif e_i is not None and s_i is not None:
        dh3, dh4 = _dh(e_i, msg.ephemeral), _dh(s_i, msg.ephemeral)
    else:
        view.failure = "no_ephemeral_key"
        return view
    if dh3 is None or dh4 is None:
        view.failure = "decryption_failed"
        return view
    C = KDF1(init.chaining_key, msg.ephemeral)
    H0 = HASH(init.hash + msg.ephemeral)
    C = KDF1(KDF1(C, dh3), dh4)
    # Pre-shared keys: those logged with either ephemeral, then the configurations' (an all-zero
    # one only where a key log or configuration says "no pre-shared key"): never a guess.
    candidates = (keyring.psk_by_ephemeral.get(init_ephemeral, []) + keyring.psk_by_ephemeral.get(msg.ephemeral, [])
                  + keyring.psks)
    if not candidates:
        view.failure = "psk_unknown"
        return view
    for psk in candidates:
        C2, tau, k = KDF3(C, psk)
        H = HASH(H0 + tau)
        try:
            AEAD_OPEN(k, 0, msg.encrypted_nothing, H)
        except AuthenticationError:
            continue
        view.send_i, view.send_r = KDF2(C2, b"")
        view.psk_used = psk != ZERO_PSK
        view.initiator_psk = psk in keyring.psk_by_ephemeral.get(init_ephemeral, ())
        return view
    view.failure = "decryption_failed"
    return view
