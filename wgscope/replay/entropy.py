"""The random inputs of a re-executed side, taken from what the capture and its keys reveal.

The core draws every random or wall-clock input from an Entropy (wgscope/protocol/entropy.py).
A side's own handshake messages on the wire show what it drew: the sender index of each
initiation and response, the ephemeral public key (whose private half a key log may hold),
and the TAI64N timestamp inside an initiation (readable with the ephemeral, passive.py). So
when the core asks, this Entropy answers with the values of the matching wire message (the
next one the side sent, at about the same time). What the capture cannot reveal (an
ephemeral missing from the key log, the cookie secret) comes from the default source and is
recorded in `unknown`: those messages are then compared by kind and timing, not by bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.constants import COOKIE_NONCE_SIZE, KEEPALIVE_TIMEOUT, REKEY_TIMEOUT
from ..protocol.entropy import Entropy

# A live node taps what it sends with the time of the core call that made it; a capture taken
# beside a node sees it a little later. Timers of Go and Python run late, never early.
EARLY = 0.05
LATE = 1.0
# How far ahead a message the core creates may find its wire twin: a node whose timer runs late
# (by up to this) still gets its own index and ephemeral, so the lateness itself is the finding.
HORIZON = KEEPALIVE_TIMEOUT


@dataclass
class WireMessage:
    """One handshake message a side sent, as the capture shows it."""

    frame: int
    time: float
    kind: str  # initiation | response | cookie_reply
    sender: int  # sender index (receiver index of a cookie reply)
    ephemeral: bytes = b""
    timestamp: bytes | None = None  # TAI64N of an initiation, when readable
    nonce: bytes = b""  # a cookie reply's
    used: bool = False


class CaptureEntropy(Entropy):
    def __init__(self, messages: list[WireMessage], ephemerals: dict[bytes, bytes]) -> None:
        super().__init__()
        self.messages = messages  # in capture order
        self.ephemerals = ephemerals  # ephemeral public -> private (key log, DSB)
        self.now = 0.0  # the node sets the time of each core call
        self.current: dict[str, WireMessage | None] = {}
        self.unknown: list[tuple[float, str]] = []  # (time, what could not be taken from the capture)
        self._next = 0  # messages before this index are used or too old
        self._asked: set[str] = set()  # messages whose index was given, their ephemeral not yet

    # ---------------------------------------------------------------- matching
    def _match(self, kind: str) -> WireMessage | None:
        msgs, now = self.messages, self.now
        i = self._next
        while i < len(msgs) and (msgs[i].used or msgs[i].time < now - EARLY):
            i += 1
        self._next = i
        for m in msgs[i:]:
            if m.time > now + HORIZON:
                return None
            if not m.used and m.kind == kind:
                return m
        return None

    def next_time(self, kind: str) -> float | None:
        """When the side next sent a message of this kind, after now (for the timers' jitter)."""
        for m in self.messages[self._next:]:
            if not m.used and m.kind == kind and m.time >= self.now:
                return m.time
        return None

    def answered_with_cookie(self, sender_index: int) -> bool:
        """Did the side answer the handshake message with this sender index by a cookie reply (so
        it was under load, an input no capture carries when it was forced)?"""
        now = self.now
        return any(m.kind == "cookie_reply" and not m.used and m.sender == sender_index
                   and now - EARLY <= m.time <= now + LATE for m in self.messages[self._next:])

    # ---------------------------------------------------------------- the core's inputs
    def index(self, message: str, peer: bytes) -> int:
        if message in self._asked:  # asked again for this message: the wire's index is taken here
            self.current[message] = None
            return super().index(message, peer)
        self._asked.add(message)
        m = self._match(message)
        self.current[message] = m
        if m is None:
            self.unknown.append((self.now, f"{message} sender index"))
            return super().index(message, peer)
        m.used = True
        return m.sender

    def ephemeral_private(self, message: str, peer: bytes) -> bytes:
        self._asked.discard(message)
        m = self.current.get(message)
        private = self.ephemerals.get(m.ephemeral) if m is not None else None
        if private is None:
            self.unknown.append((self.now, f"{message} ephemeral key"))
            return super().ephemeral_private(message, peer)
        return private

    def tai64n(self, wall: float) -> bytes:
        m = self.current.get("initiation")
        if m is not None and m.timestamp is not None:
            return m.timestamp
        return super().tai64n(wall)  # the capture's clock: what a wgscope node's own capture stamps

    def jitter(self, maximum: float) -> float:
        """Fit the retransmit (REKEY_TIMEOUT + jitter) or new-handshake (KEEPALIVE_TIMEOUT +
        REKEY_TIMEOUT + jitter) deadline to the side's next initiation, when it falls in range.
        Otherwise the largest jitter: the node sent nothing then, so its timer, if it was not
        cancelled first, fired as late as the protocol lets it."""
        when = self.next_time("initiation")
        if when is not None:
            for base in (REKEY_TIMEOUT, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT):
                jitter = when - self.now - base
                if -EARLY <= jitter <= maximum + EARLY:
                    return min(max(jitter, 0.0), maximum)
        return maximum

    def cookie_nonce(self) -> bytes:
        m = self._match("cookie_reply")
        if m is None or len(m.nonce) != COOKIE_NONCE_SIZE:
            return super().cookie_nonce()
        m.used = True
        return m.nonce

    def cookie_secret(self) -> bytes:
        self.unknown.append((self.now, "cookie secret"))
        return super().cookie_secret()
