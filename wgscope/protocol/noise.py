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
    AEAD, AEAD_OPEN, DH, HASH, KDF1, KDF2, KDF3, AuthenticationError, DHError, private_key_object, public_key,
)
from .messages import Initiation, Response
from . import tai64n

INITIAL_CHAIN_KEY = HASH(CONSTRUCTION)  # Ci := HASH(CONSTRUCTION)
INITIAL_HASH = HASH(INITIAL_CHAIN_KEY + IDENTIFIER)  # Hi := HASH(Ci || IDENTIFIER)
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
    key: object = field(default=None, repr=False)  # the private key object, built once (crypto.private_key_object)

    def __post_init__(self) -> None:
        self.key = private_key_object(self.private)
        self.public = public_key(self.key)
        self.mac1_key = HASH(LABEL_MAC1 + self.public)
        self.cookie_key = HASH(LABEL_COOKIE + self.public)


@dataclass
class HandshakeState:
    """Per-peer handshake state (WG-GO device/noise-protocol.go `Handshake`)."""

    remote_static: bytes
    preshared_key: bytes = ZERO_PSK
    precomputed_static_static: bytes = b""  # DH(S_priv_local, S_pub_remote)
    state: State = State.ZEROED
    hash: bytes = b""
    chaining_key: bytes = b""
    local_ephemeral: object = field(default=None, repr=False)  # private, as a key object (crypto.private_key_object)
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
        hs.precomputed_static_static = DH(local.key, hs.remote_static)
    except DHError:
        hs.precomputed_static_static = b""


def create_initiation(local: StaticIdentity, hs: HandshakeState, sender_index: int, ephemeral_private: bytes,
                      timestamp: bytes) -> Initiation:
    """Initiator, WP §5.4.2, with the ephemeral private key and the TAI64N `timestamp` given
    (entropy.Entropy supplies both). Returns the message with zero macs (cookie.py adds them)."""
    if not hs.precomputed_static_static:
        raise HandshakeError("invalid_public_key")
    C = INITIAL_CHAIN_KEY
    H = HASH(INITIAL_HASH + hs.remote_static)
    E_key = private_key_object(ephemeral_private)
    E_pub = public_key(E_key)
    C = KDF1(C, E_pub)
    H = HASH(H + E_pub)
    C, k = KDF2(C, DH(E_key, hs.remote_static))
    enc_static = AEAD(k, 0, local.public, H)
    H = HASH(H + enc_static)
    C, k = KDF2(C, hs.precomputed_static_static)
    enc_ts = AEAD(k, 0, timestamp, H)
    H = HASH(H + enc_ts)
    hs.chaining_key, hs.hash = C, H
    hs.local_ephemeral = E_key
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
                    static_static: Callable[[bytes], bytes | None] | None = None) -> OpenedInitiation:
    """Responder, first half of WP §5.4.2: decrypt the initiator's identity and timestamp.

    `static_static(remote_static)` gives the peer's precomputed DH(S_priv, S_pub_remote), or None
    for a key that is no configured peer: then the initiation is refused (unknown_peer) before
    the second DH and the timestamp, as WG-GO ConsumeMessageInitiation does."""
    C = INITIAL_CHAIN_KEY
    H = HASH(INITIAL_HASH + local.public)
    C = KDF1(C, msg.ephemeral)
    H = HASH(H + msg.ephemeral)
    try:
        C, k = KDF2(C, DH(local.key, msg.ephemeral))
        remote_static = AEAD_OPEN(k, 0, msg.encrypted_static, H)
        H = HASH(H + msg.encrypted_static)
        if static_static is None:
            ss = DH(local.key, remote_static)
        else:
            ss = static_static(remote_static)
            if ss is None:
                raise HandshakeError("unknown_peer", remote_static)
            if not ss:  # the peer's key gave an all-zero DH (precompute)
                raise DHError("low-order remote static")
        C, k = KDF2(C, ss)
        timestamp = AEAD_OPEN(k, 0, msg.encrypted_timestamp, H)
    except (AuthenticationError, DHError):
        raise HandshakeError("decryption_failed") from None
    H = HASH(H + msg.encrypted_timestamp)
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


def create_response(hs: HandshakeState, sender_index: int, ephemeral_private: bytes) -> Response:
    """Responder, WP §5.4.3, with the ephemeral private key given (entropy.Entropy supplies it)."""
    if hs.state is not State.INITIATION_CONSUMED:
        raise HandshakeError("wrong_state")
    C, H = hs.chaining_key, hs.hash
    E_key = private_key_object(ephemeral_private)
    E_pub = public_key(E_key)
    C = KDF1(C, E_pub)
    H = HASH(H + E_pub)
    try:
        C = KDF1(C, DH(E_key, hs.remote_ephemeral))
        C = KDF1(C, DH(E_key, hs.remote_static))
    except DHError:
        raise HandshakeError("invalid_public_key") from None
    C, tau, k = KDF3(C, hs.preshared_key)
    H = HASH(H + tau)
    enc_nothing = AEAD(k, 0, b"", H)
    H = HASH(H + enc_nothing)
    hs.chaining_key, hs.hash = C, H
    hs.local_ephemeral = E_key
    hs.local_index = sender_index
    hs.state = State.RESPONSE_CREATED
    return Response(sender_index, hs.remote_index, E_pub, enc_nothing, _ZERO_MAC, _ZERO_MAC)


def consume_response(local: StaticIdentity, hs: HandshakeState, msg: Response) -> None:
    """Initiator, second half of WP §5.4.3. Commits only if everything authenticates."""
    if hs.state is not State.INITIATION_CREATED:
        raise HandshakeError("wrong_state")
    C, H = hs.chaining_key, hs.hash
    C = KDF1(C, msg.ephemeral)
    H = HASH(H + msg.ephemeral)
    try:
        C = KDF1(C, DH(hs.local_ephemeral, msg.ephemeral))
        C = KDF1(C, DH(local.key, msg.ephemeral))
    except DHError:
        raise HandshakeError("decryption_failed") from None
    C, tau, k = KDF3(C, hs.preshared_key)
    H = HASH(H + tau)
    try:
        AEAD_OPEN(k, 0, msg.encrypted_nothing, H)
    except AuthenticationError:
        raise HandshakeError("decryption_failed") from None
    H = HASH(H + msg.encrypted_nothing)
    hs.chaining_key, hs.hash = C, H
    hs.remote_ephemeral = msg.ephemeral
    hs.remote_index = msg.sender
    hs.state = State.RESPONSE_CONSUMED


def derive_transport_keys(hs: HandshakeState) -> tuple[bytes, bytes, bool]:
    """WP §5.4.5: (T_send, T_recv) := KDF2(C, ε), swapped for the responder. Zeroes the handshake."""
    if hs.state is State.RESPONSE_CONSUMED:
        initiator = True
    elif hs.state is State.RESPONSE_CREATED:
        initiator = False
    else:
        raise HandshakeError("wrong_state")
    t1, t2 = KDF2(hs.chaining_key, b"")
    send, recv = (t1, t2) if initiator else (t2, t1)
    hs.chaining_key = hs.hash = hs.remote_ephemeral = b""
    hs.local_ephemeral = None
    hs.state = State.ZEROED
    return send, recv, initiator
