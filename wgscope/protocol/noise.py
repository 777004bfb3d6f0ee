"""The Noise_IKpsk2 handshake as WireGuard uses it (WP §5.4.2–5.4.3, §5.4.5).

Pure functions over a per-peer `HandshakeState` record. The device finds peers and indices; this
module only computes. Names follow the whitepaper: C (chaining key), H (hash), E (ephemeral),
S (static), Q (pre-shared key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from enum import Enum

from .constants import CONSTRUCTION, IDENTIFIER, LABEL_COOKIE, LABEL_MAC1, TIMESTAMP_SIZE
from .crypto import (
    AEAD, AEAD_OPEN, DH, HASH, KDF1, KDF1_with, KDF2, KDF3, AuthenticationError, DHError, hmac_key, public_key,
)
from .messages import Initiation, Response
from . import tai64n

INITIAL_CHAIN_KEY = HASH(CONSTRUCTION)  # Ci := HASH(CONSTRUCTION)
INITIAL_HASH = HASH(INITIAL_CHAIN_KEY + IDENTIFIER)  # Hi := HASH(Ci || IDENTIFIER)
_INITIAL_CHAIN_PADS = hmac_key(INITIAL_CHAIN_KEY)  # KDF1(Ci, msg.ephemeral) is keyed by a constant
ZERO_PSK = bytes(32)
_ZERO_MAC = bytes(16)


class HandshakeError(Exception):
    """A handshake message that does not authenticate or does not fit the state. `reason` is stable;
    `remote_static` is the initiator's static public key when it decrypted (unknown_peer), else b""."""

    def __init__(self, reason: str, remote_static: bytes = b""):
        super().__init__(reason)
        self.reason = reason
        self.remote_static = remote_static


class State(Enum):
    ZEROED = "zeroed"
    INITIATION_CREATED = "initiation_created"
    INITIATION_CONSUMED = "initiation_consumed"
    RESPONSE_CREATED = "response_created"
    RESPONSE_CONSUMED = "response_consumed"


@dataclass
class StaticIdentity:
    """The device's own long-term key pair and the keys derived from it once."""

    private: bytes
    public: bytes = b""
    mac1_key: bytes = b""  # HASH(LABEL_MAC1 || S_pub) — checks mac1 of messages sent to us
    cookie_key: bytes = b""  # HASH(LABEL_COOKIE || S_pub) — encrypts our cookie replies
    initial_hash: bytes = b""  # HASH(Hi || S_pub): a responder's H before every initiation it opens

    def __post_init__(self) -> None:
        self.public = public_key(self.private)
        self.mac1_key = HASH(LABEL_MAC1 + self.public)
        self.cookie_key = HASH(LABEL_COOKIE + self.public)
        self.initial_hash = HASH(INITIAL_HASH + self.public)


@dataclass
class HandshakeState:
    """Per-peer handshake state (WG-GO device/noise-protocol.go `Handshake`)."""

    remote_static: bytes
    preshared_key: bytes = ZERO_PSK
    precomputed_static_static: bytes = b""  # DH(S_priv_local, S_pub_remote)
    state: State = State.ZEROED
    hash: bytes = b""
    chaining_key: bytes = b""
    local_ephemeral: bytes | None = field(default=None, repr=False)  # the ephemeral private key
    remote_ephemeral: bytes = b""
    local_index: int = 0
    remote_index: int = 0
    last_timestamp: bytes = bytes(TIMESTAMP_SIZE)  # greatest TAI64N seen from this peer
    last_initiation_consumption: float = float("-inf")
    last_sent_handshake: float = float("-inf")
    initiation_sent_at: float | None = None

    def zero(self) -> None:
        self.state = State.ZEROED
        self.hash = self.chaining_key = self.remote_ephemeral = b""
        self.local_ephemeral = None
        self.local_index = self.remote_index = 0


def precompute(local: StaticIdentity, hs: HandshakeState) -> None:
    try:
        hs.precomputed_static_static = DH(local.private, hs.remote_static)
    except DHError:
        hs.precomputed_static_static = b""


# ---------------------------------------------------------------- the optional step record (x-ray)
# Each function below takes `trace`: None (always, on the node's paths) or a list to which it
# appends one (formula, values) pair per step, in the whitepaper's notation, for wgscope/xray.py
# and the handshake notebook. When None the cost is one `is not None` test per step.


def _trace_start(trace: list, H: bytes) -> None:
    trace.append(("Ci := HASH(CONSTRUCTION)", {"C": INITIAL_CHAIN_KEY}))
    trace.append(("Hi := HASH(Ci || IDENTIFIER)", {"H": INITIAL_HASH}))
    trace.append(("Hi := HASH(Hi || Sr_pub)", {"H": H}))


def create_initiation(local: StaticIdentity, hs: HandshakeState, sender_index: int, ephemeral_private: bytes,
                      timestamp: bytes, trace: list | None = None) -> Initiation:
    """Initiator, WP §5.4.2, with the ephemeral private key and the TAI64N `timestamp` given
    (entropy.Entropy supplies both). Returns the message with zero macs (cookie.py adds them)."""
    if not hs.precomputed_static_static:
        raise HandshakeError("invalid_public_key")
    H = HASH(INITIAL_HASH + hs.remote_static)
    E_pub = public_key(ephemeral_private)
    C = KDF1_with(_INITIAL_CHAIN_PADS, E_pub)  # KDF1(Ci, msg.ephemeral)
    if trace is not None:
        _trace_start(trace, H)
        trace.append(("(Ei_priv, Ei_pub) := DH-GENERATE(); msg.ephemeral := Ei_pub",
                      {"Ei_priv": ephemeral_private, "Ei_pub": E_pub}))
        trace.append(("Ci := KDF1(Ci, msg.ephemeral)", {"C": C}))
    H = HASH(H + E_pub)
    dh = DH(ephemeral_private, hs.remote_static)
    C, k = KDF2(C, dh)
    enc_static = AEAD(k, 0, local.public, H)
    if trace is not None:
        trace.append(("Hi := HASH(Hi || msg.ephemeral)", {"H": H}))
        trace.append(("(Ci, κ) := KDF2(Ci, DH(Ei_priv, Sr_pub))", {"dh": dh, "C": C, "κ": k}))
        trace.append(("msg.static := AEAD(κ, 0, Si_pub, Hi)", {"κ": k, "Si_pub": local.public, "H": H,
                                                              "msg.static": enc_static}))
    H = HASH(H + enc_static)
    C, k = KDF2(C, hs.precomputed_static_static)
    enc_ts = AEAD(k, 0, timestamp, H)
    if trace is not None:
        trace.append(("Hi := HASH(Hi || msg.static)", {"H": H}))
        trace.append(("(Ci, κ) := KDF2(Ci, DH(Si_priv, Sr_pub))",
                      {"dh": hs.precomputed_static_static, "C": C, "κ": k}))
        trace.append(("msg.timestamp := AEAD(κ, 0, TAI64N(), Hi)", {"κ": k, "timestamp": timestamp, "H": H,
                                                                   "msg.timestamp": enc_ts}))
    H = HASH(H + enc_ts)
    if trace is not None:
        trace.append(("Hi := HASH(Hi || msg.timestamp)", {"H": H}))
    hs.chaining_key, hs.hash = C, H
    hs.local_ephemeral = ephemeral_private
    hs.local_index = sender_index
    hs.state = State.INITIATION_CREATED
    return Initiation(sender_index, E_pub, enc_static, enc_ts, _ZERO_MAC, _ZERO_MAC)


@dataclass
class OpenedInitiation:
    """An initiation that decrypted: who sent it and the state to commit if it is accepted."""

    remote_static: bytes
    timestamp: bytes
    remote_ephemeral: bytes
    remote_index: int
    chaining_key: bytes
    hash: bytes


def open_initiation(local: StaticIdentity, msg: Initiation,
                    static_static: Callable[[bytes], bytes | None] | None = None,
                    trace: list | None = None, dh: bytes | None = None) -> OpenedInitiation:
    """Responder, first half of WP §5.4.2: decrypt the initiator's identity and timestamp.

    `static_static(remote_static)` gives the peer's precomputed DH(S_priv, S_pub_remote), or None
    for a key that is no configured peer: then the initiation is refused (unknown_peer) before
    the second DH and the timestamp, as WG-GO ConsumeMessageInitiation does. `dh`: DH(Sr_priv,
    Ei_pub) when it was computed ahead (protocol/lookahead.py), else it is computed here."""
    H = local.initial_hash  # HASH(Hi || Sr_pub)
    C = KDF1_with(_INITIAL_CHAIN_PADS, msg.ephemeral)  # KDF1(Ci, msg.ephemeral)
    if trace is not None:
        _trace_start(trace, H)
        trace.append(("Ci := KDF1(Ci, msg.ephemeral)", {"Ei_pub": msg.ephemeral, "C": C}))
    H = HASH(H + msg.ephemeral)
    try:
        if dh is None:
            dh = DH(local.private, msg.ephemeral)
        C, k = KDF2(C, dh)
        if trace is not None:
            trace.append(("Hi := HASH(Hi || msg.ephemeral)", {"H": H}))
            trace.append(("(Ci, κ) := KDF2(Ci, DH(Sr_priv, Ei_pub))", {"dh": dh, "C": C, "κ": k}))
        remote_static = AEAD_OPEN(k, 0, msg.encrypted_static, H)
        if trace is not None:
            trace.append(("Si_pub := AEAD-OPEN(κ, 0, msg.static, Hi)", {"κ": k, "H": H, "msg.static":
                                                                       msg.encrypted_static, "Si_pub": remote_static}))
        H = HASH(H + msg.encrypted_static)
        if static_static is None:
            ss = DH(local.private, remote_static)
        else:
            ss = static_static(remote_static)
            if ss is None:
                raise HandshakeError("unknown_peer", remote_static)
            if not ss:  # the peer's key gave an all-zero DH (precompute)
                raise DHError("low-order remote static")
        C, k = KDF2(C, ss)
        if trace is not None:
            trace.append(("Hi := HASH(Hi || msg.static)", {"H": H}))
            trace.append(("(Ci, κ) := KDF2(Ci, DH(Sr_priv, Si_pub))", {"dh": ss, "C": C, "κ": k}))
        timestamp = AEAD_OPEN(k, 0, msg.encrypted_timestamp, H)
        if trace is not None:
            trace.append(("timestamp := AEAD-OPEN(κ, 0, msg.timestamp, Hi)", {
                "κ": k, "H": H, "msg.timestamp": msg.encrypted_timestamp, "timestamp": timestamp}))
    except (AuthenticationError, DHError):
        raise HandshakeError("decryption_failed") from None
    H = HASH(H + msg.encrypted_timestamp)
    if trace is not None:
        trace.append(("Hi := HASH(Hi || msg.timestamp)", {"H": H}))
    return OpenedInitiation(remote_static, timestamp, msg.ephemeral, msg.sender, C, H)


def accept_initiation(hs: HandshakeState, opened: OpenedInitiation, now: float, flood_interval: float) -> None:
    """Responder: the replay and flood checks (WP §5.1; WG-GO ConsumeMessageInitiation), then commit."""
    if not tai64n.after(opened.timestamp, hs.last_timestamp):
        raise HandshakeError("stale_timestamp")
    if now < hs.last_initiation_consumption + flood_interval:
        raise HandshakeError("flood")
    hs.hash, hs.chaining_key = opened.hash, opened.chaining_key
    hs.remote_ephemeral = opened.remote_ephemeral
    hs.remote_index = opened.remote_index
    hs.last_timestamp = opened.timestamp
    hs.last_initiation_consumption = now
    hs.state = State.INITIATION_CONSUMED


def create_response(hs: HandshakeState, sender_index: int, ephemeral_private: bytes,
                    trace: list | None = None, ephemeral_public: bytes | None = None) -> Response:
    """Responder, WP §5.4.3, with the ephemeral private key given (entropy.Entropy supplies it,
    and its public key when that was derived ahead: Entropy.ephemeral_keypair)."""
    if hs.state is not State.INITIATION_CONSUMED:
        raise HandshakeError("wrong_state")
    C, H = hs.chaining_key, hs.hash
    E_pub = public_key(ephemeral_private) if ephemeral_public is None else ephemeral_public
    C = KDF1(C, E_pub)
    H = HASH(H + E_pub)
    if trace is not None:
        trace.append(("(Er_priv, Er_pub) := DH-GENERATE(); msg.ephemeral := Er_pub",
                      {"Er_priv": ephemeral_private, "Er_pub": E_pub}))
        trace.append(("Cr := KDF1(Cr, msg.ephemeral)", {"C": C}))
        trace.append(("Hr := HASH(Hr || msg.ephemeral)", {"H": H}))
    try:
        dh_ee = DH(ephemeral_private, hs.remote_ephemeral)
        C = KDF1(C, dh_ee)
        if trace is not None:
            trace.append(("Cr := KDF1(Cr, DH(Er_priv, Ei_pub))", {"dh": dh_ee, "C": C}))
        dh_se = DH(ephemeral_private, hs.remote_static)
        C = KDF1(C, dh_se)
        if trace is not None:
            trace.append(("Cr := KDF1(Cr, DH(Er_priv, Si_pub))", {"dh": dh_se, "C": C}))
    except DHError:
        raise HandshakeError("invalid_public_key") from None
    C, tau, k = KDF3(C, hs.preshared_key)
    H = HASH(H + tau)
    enc_nothing = AEAD(k, 0, b"", H)
    if trace is not None:
        trace.append(("(Cr, τ, κ) := KDF3(Cr, Q)", {"Q": hs.preshared_key, "C": C, "τ": tau, "κ": k}))
        trace.append(("Hr := HASH(Hr || τ)", {"H": H}))
        trace.append(("msg.empty := AEAD(κ, 0, ε, Hr)", {"κ": k, "H": H, "msg.empty": enc_nothing}))
    H = HASH(H + enc_nothing)
    if trace is not None:
        trace.append(("Hr := HASH(Hr || msg.empty)", {"H": H}))
    hs.chaining_key, hs.hash = C, H
    hs.local_ephemeral = ephemeral_private
    hs.local_index = sender_index
    hs.state = State.RESPONSE_CREATED
    return Response(sender_index, hs.remote_index, E_pub, enc_nothing, _ZERO_MAC, _ZERO_MAC)


def consume_response(local: StaticIdentity, hs: HandshakeState, msg: Response, trace: list | None = None) -> None:
    """Initiator, second half of WP §5.4.3. Commits only if everything authenticates."""
    if hs.state is not State.INITIATION_CREATED:
        raise HandshakeError("wrong_state")
    C, H = hs.chaining_key, hs.hash
    C = KDF1(C, msg.ephemeral)
    H = HASH(H + msg.ephemeral)
    if trace is not None:
        trace.append(("Cr := KDF1(Cr, msg.ephemeral)", {"Er_pub": msg.ephemeral, "C": C}))
        trace.append(("Hr := HASH(Hr || msg.ephemeral)", {"H": H}))
    try:
        dh_ee = DH(hs.local_ephemeral, msg.ephemeral)
        C = KDF1(C, dh_ee)
        dh_se = DH(local.private, msg.ephemeral)
        if trace is not None:
            trace.append(("Cr := KDF1(Cr, DH(Ei_priv, Er_pub))", {"dh": dh_ee, "C": C}))
        C = KDF1(C, dh_se)
        if trace is not None:
            trace.append(("Cr := KDF1(Cr, DH(Si_priv, Er_pub))", {"dh": dh_se, "C": C}))
    except DHError:
        raise HandshakeError("decryption_failed") from None
    C, tau, k = KDF3(C, hs.preshared_key)
    H = HASH(H + tau)
    if trace is not None:
        trace.append(("(Cr, τ, κ) := KDF3(Cr, Q)", {"Q": hs.preshared_key, "C": C, "τ": tau, "κ": k}))
        trace.append(("Hr := HASH(Hr || τ)", {"H": H}))
    try:
        AEAD_OPEN(k, 0, msg.encrypted_nothing, H)
    except AuthenticationError:
        raise HandshakeError("decryption_failed") from None
    if trace is not None:
        trace.append(("ε := AEAD-OPEN(κ, 0, msg.empty, Hr)", {"κ": k, "H": H, "msg.empty": msg.encrypted_nothing}))
    H = HASH(H + msg.encrypted_nothing)
    if trace is not None:
        trace.append(("Hr := HASH(Hr || msg.empty)", {"H": H}))
    hs.chaining_key, hs.hash = C, H
    hs.remote_ephemeral = msg.ephemeral
    hs.remote_index = msg.sender
    hs.state = State.RESPONSE_CONSUMED


def derive_transport_keys(hs: HandshakeState, trace: list | None = None) -> tuple[bytes, bytes, bool]:
    """WP §5.4.5: (T_send, T_recv) := KDF2(C, ε), swapped for the responder. Zeroes the handshake."""
    if hs.state is State.RESPONSE_CONSUMED:
        initiator = True
    elif hs.state is State.RESPONSE_CREATED:
        initiator = False
    else:
        raise HandshakeError("wrong_state")
    t1, t2 = KDF2(hs.chaining_key, b"")
    if trace is not None:
        trace.append(("(Ti_send = Tr_recv, Ti_recv = Tr_send) := KDF2(Cr, ε)", {"C": hs.chaining_key, "Ti_send": t1,
                                                                              "Ti_recv": t2}))
    send, recv = (t1, t2) if initiator else (t2, t1)
    hs.chaining_key = hs.hash = hs.remote_ephemeral = b""
    hs.local_ephemeral = None
    hs.state = State.ZEROED
    return send, recv, initiator
