"""Transport keypairs and the current/previous/next slots (WP §5.4.5, §6.1; WG-GO device/keypair.go)."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .constants import REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME
from .antireplay import AntiReplayWindow


class Keypair:
    __slots__ = ("send", "recv", "send_counter", "replay", "local_index", "remote_index", "created",
                 "is_initiator", "peer", "expired_reported", "rx_packets", "tx_packets")

    def __init__(self, send_key: bytes, recv_key: bytes, local_index: int, remote_index: int,
                 created: float, is_initiator: bool, peer) -> None:
        self.send = ChaCha20Poly1305(send_key)
        self.recv = ChaCha20Poly1305(recv_key)
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
