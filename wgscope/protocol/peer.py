"""A peer: its keys, endpoint, sessions, timers, staged packets and counters (WG-GO device/peer.go)."""

from __future__ import annotations

from collections import Counter, deque

from .constants import QUEUE_STAGED_SIZE
from .cookie import CookieGenerator
from .crypto import same_secret
from .endpoint import endpoint_text
from .keypair import Keypairs
from .noise import ZERO_PSK, HandshakeState
from .timers import TIMER_NAMES, Timer
from ..keytext import encode


class Peer:
    def __init__(self, public_key: bytes, preshared_key: bytes | None = None, endpoint: tuple | None = None,
                 persistent_keepalive: int = 0, label: str | None = None) -> None:
        self.public_key = public_key
        self.name = encode(public_key)  # how events and sinks name the peer
        self.label = label  # a human name from the configuration, if any
        self.handshake = HandshakeState(remote_static=public_key, preshared_key=preshared_key or ZERO_PSK)
        self.cookies = CookieGenerator(public_key)
        self.endpoint = endpoint
        self.persistent_keepalive = persistent_keepalive
        self.keypairs = Keypairs()
        self.staged: deque[bytes] = deque()
        self.staged_limit = QUEUE_STAGED_SIZE
        self.timers = {name: Timer(name, self) for name in TIMER_NAMES}
        self.handshake_attempts = 0
        self.need_another_keepalive = False
        self.sent_last_minute_handshake = False
        self.last_handshake: float | None = None  # protocol clock
        self.last_handshake_wall: float | None = None
        # counters (WG-GO peer.go txBytes/rxBytes, plus what the dashboard shows)
        self.tx_bytes = 0
        self.rx_bytes = 0
        self.tx_packets = 0
        self.rx_packets = 0
        self.handshakes_completed = 0
        self.initiations_sent = 0
        self.initiations_since_handshake = 0  # initiations sent since the last completed handshake
        self.unanswered_initiations = 0  # initiations in a row that got neither a response nor a cookie reply
        self.retries = 0
        self.cookies_received = 0
        self.cookies_sent = 0
        self.keepalives_sent = 0
        self.keepalives_received = 0
        self.drops: Counter[str] = Counter()

    @property
    def preshared_key(self) -> bytes:
        return self.handshake.preshared_key

    @property
    def has_psk(self) -> bool:
        """Whether a PresharedKey is set (all zeros is none, as in wg), compared in constant time."""
        return not same_secret(self.handshake.preshared_key, ZERO_PSK)

    def __repr__(self) -> str:
        return f"<Peer {self.name[:8]} endpoint={endpoint_text(self.endpoint)}>"

    def snapshot(self, now: float, allowed_ips: list) -> dict:
        """A JSON-safe picture of the peer (no key material) for dashboards and `wg show`."""
        def kp(k):
            if k is None:
                return None
            return {"local_index": k.local_index, "remote_index": k.remote_index, "age": round(now - k.created, 3),
                    "initiator": k.is_initiator, "send_counter": k.send_counter, "rx_packets": k.rx_packets,
                    "tx_packets": k.tx_packets}

        return {
            "public_key": self.name,
            "label": self.label,
            "endpoint": endpoint_text(self.endpoint),
            "allowed_ips": [str(n) for n in allowed_ips],
            "persistent_keepalive": self.persistent_keepalive,
            "has_psk": self.has_psk,
            "handshake_state": self.handshake.state.value,
            "keypairs": {"current": kp(self.keypairs.current), "previous": kp(self.keypairs.previous),
                         "next": kp(self.keypairs.next)},
            "timers": {n: (round(t.deadline - now, 3) if t.deadline is not None else None)
                       for n, t in self.timers.items()},
            "staged": len(self.staged),
            "staged_limit": self.staged_limit,
            "last_handshake_wall": self.last_handshake_wall,
            "since_handshake": (round(now - self.last_handshake, 3) if self.last_handshake is not None else None),
            "tx_bytes": self.tx_bytes, "rx_bytes": self.rx_bytes,
            "tx_packets": self.tx_packets, "rx_packets": self.rx_packets,
            "handshakes": self.handshakes_completed, "initiations_sent": self.initiations_sent,
            "initiations_since_handshake": self.initiations_since_handshake,
            "unanswered_initiations": self.unanswered_initiations,
            "retries": self.retries, "cookies_received": self.cookies_received, "cookies_sent": self.cookies_sent,
            "keepalives_sent": self.keepalives_sent, "keepalives_received": self.keepalives_received,
            "drops": dict(self.drops),
        }
