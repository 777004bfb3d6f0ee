"""Transport keypairs and the current/previous/next slots (WP §5.4.5, §6.1; WG-GO device/keypair.go)."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .constants import REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME
from .antireplay import AntiReplayWindow


class _FirstUse:
    """Holds a keypair's `send` or `recv` slot until its first seal or open, then builds the
    ChaCha20Poly1305 context and puts it in the slot: a responder's keypair whose initiator never
    sends data (a handshake flood) builds neither (~3 us a handshake), and once built the data
    path reads the context from the slot as before (a class-level __getattr__ or a property
    would slow every attribute read of a Keypair on the data path)."""

    __slots__ = ("key", "keypair", "slot", "aead")

    def __init__(self, keypair: "Keypair", slot: str, key: bytes) -> None:
        self.keypair, self.slot, self.key, self.aead = keypair, slot, key, None

    def _built(self) -> ChaCha20Poly1305:
        aead = self.aead
        if aead is None:
            aead = self.aead = ChaCha20Poly1305(self.key)
            keypair, self.keypair, self.key = self.keypair, None, b""
            if keypair is not None and getattr(keypair, self.slot) is self:
                setattr(keypair, self.slot, aead)
        return aead

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        return self._built().encrypt(nonce, data, associated_data)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        return self._built().decrypt(nonce, data, associated_data)


class Keypair:
    __slots__ = ("send", "recv", "send_counter", "replay", "local_index", "remote_index", "created",
                 "is_initiator", "peer", "expired_reported", "rx_packets", "tx_packets")

    def __init__(self, send_key: bytes, recv_key: bytes, local_index: int, remote_index: int,
                 created: float, is_initiator: bool, peer) -> None:
        self.send = _FirstUse(self, "send", send_key)  # a ChaCha20Poly1305 from its first use on
        self.recv = _FirstUse(self, "recv", recv_key)
        self.send_counter = 0
        self.replay = AntiReplayWindow()
        self.local_index = local_index
        self.remote_index = remote_index
        self.created = created
        self.is_initiator = is_initiator
        self.peer = peer
        self.expired_reported = False
        self.rx_packets = 0
        self.tx_packets = 0

    def expired_reason(self, now: float) -> str | None:
        """Why this keypair may not be used any more (WP §6.1), or None."""
        if now - self.created >= REJECT_AFTER_TIME:
            return "reject_after_time"
        if self.send_counter >= REJECT_AFTER_MESSAGES:
            return "reject_after_messages"
        return None

    def zero(self) -> None:
        # Drop the cipher objects; the key bytes themselves live in cryptography's context.
        self.send = self.recv = None


class Keypairs:
    """current: in use; previous: still accepted for receiving; next: responder's, unconfirmed."""

    __slots__ = ("current", "previous", "next")

    def __init__(self) -> None:
        self.current: Keypair | None = None
        self.previous: Keypair | None = None
        self.next: Keypair | None = None

    def all(self) -> list[Keypair]:
        return [k for k in (self.current, self.previous, self.next) if k is not None]

    def indices(self) -> dict[str, int | None]:
        return {slot: (k.local_index if k else None)
                for slot, k in (("current", self.current), ("previous", self.previous), ("next", self.next))}
