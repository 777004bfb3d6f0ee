"""A re-executed side's comparison: what its core sent against what the side put on the wire.

`Comparison` is the half of ReplayNode (node.py) that judges: each datagram the core produces
waits in `pending` until the wire shows the same bytes (agreement), the same inner packet on
the same session (counters may differ where the capture point missed a send), or, where a
random input was not revealed, the same kind near the same time. Anything else is a
divergence: a finding with its frame number and a sentence in the protocol's terms. After
MAX_DIVERGENCES the side stops being re-executed and is only observed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.actions import SendDatagram, WritePacket
from ..protocol.constants import KEEPALIVE_TIMEOUT, REKEY_AFTER_TIME, TRANSPORT_MIN_SIZE
from ..protocol.messages import KIND_NAMES, MessageError, message_type, transport_fields
from .entropy import EARLY, LATE
from .rules import REKEY_ON_SEND, TIMER_RULES

MAX_DIVERGENCES = 50  # per side; past this the side is only observed (the report says so)


@dataclass
class Pending:
    """A datagram the core sent that the wire has not shown yet."""

    time: float
    data: bytes
    kind: str
    cause: str  # what made the core send it: "frame N", "timer"
    inner: bytes | None = None  # transport: the inner packet fed to make it; keepalive: b""

    def same_content(self, kind: str, data: bytes, inner: bytes | None) -> bool:
        """Transport carrying the same inner packet on the same session: counters may differ
        where the capture point missed some of the side's sends (loss before it, reordering)."""
        if kind != self.kind or kind not in ("transport", "keepalive"):
            return False
        if self.data[4:8] != data[4:8]:
            return False
        return kind == "keepalive" or (inner is not None and self.inner == inner)


ARTICLE = {"initiation": "an initiation", "response": "a response", "cookie_reply": "a cookie reply",
           "transport": "transport data", "keepalive": "a keepalive", "invalid": "an invalid datagram"}


def wire_kind(data: bytes) -> str:
    try:
        kind = KIND_NAMES[message_type(data)]
    except MessageError:
        return "invalid"
    return "keepalive" if kind == "transport" and len(data) == TRANSPORT_MIN_SIZE else kind


class Comparison:
    """Mixed into ReplayNode: needs its device, entropy, name, find, pending, overdue, agreed,
    by_kind, divergences, written, batch and stopped_at/stop_reason."""

    def _produced(self, actions: list, t: float, cause: str, inner: bytes | list | None = None) -> None:
        """`inner`: the inner packet fed, or the list of a run's (its transport datagrams in order)."""
        run = iter(inner) if type(inner) is list else None
        for action in actions:
            if type(action) is SendDatagram:
                kind = wire_kind(action.data)
                why = cause
                if kind == "initiation" and cause.startswith("frame") and self._rekeying(t):
                    why = f"{cause}: {REKEY_ON_SEND}"
                content = b"" if kind == "keepalive" else None if kind != "transport" else \
                    inner if run is None else next(run, None)
                self.pending.append(Pending(t, action.data, kind, why, content))
            elif type(action) is WritePacket:
                self.written += 1

    def _compare(self, frame: int, t: float, kind: str, data: bytes, inner: bytes | None) -> None:
        for queue in (self.pending, self.overdue):
            for i, p in enumerate(queue):
                if p.data == data or p.same_content(kind, data, inner):
                    del queue[i]
                    self.agreed[kind] += 1
                    self._late(frame, t, p)
                    return
        for queue in (self.pending, self.overdue):
            for i, p in enumerate(queue):
                if p.kind == kind and kind in ("initiation", "response", "cookie_reply") and self._unrevealed(p.time):
                    del queue[i]
                    self.by_kind[kind] += 1  # a random input was not in the capture: kind and timing only
                    self._late(frame, t, p)
                    if kind != "cookie_reply":  # the session keys now differ from the node's: it cannot be followed
                        self._stop(frame, f"frame {frame}: the {kind}'s ephemeral key is in neither the capture nor "
                                   "a key log, so the session it makes cannot be re-executed; from here this side "
                                   "is observed (message kinds and timing)")
                    return
        if kind == "keepalive" and self._early_keepalive(frame, t, data):
            return
        expected = ", ".join(f"{ARTICLE[p.kind]} ({p.cause})" for p in list(self.pending)[:3]) or "nothing"
        self._diverge([frame], t, f"{self.name}'s address sent {ARTICLE[kind]} its protocol core does not "
                      f"produce at this point (the core had {expected} to send): altered, spoofed, or the "
                      "node departs from the protocol")

    def _rekeying(self, t: float) -> bool:
        return any(kp is not None and kp.is_initiator and t - kp.created > REKEY_AFTER_TIME
                   for peer in self.device.peers.values() for kp in (peer.keypairs.current,))

    def _early_keepalive(self, frame: int, t: float, data: bytes) -> bool:
        """A keepalive before the core's keepalive timer: say by how much, then send it now."""
        receiver = transport_fields(data)[0]
        for peer in self.device.peers.values():
            timer = peer.timers["send_keepalive"]
            if timer.deadline is not None and any(kp.remote_index == receiver for kp in peer.keypairs.all()):
                self._diverge([frame], t, f"{self.name} sent a keepalive {timer.deadline - t:.3f} s before its "
                              f"protocol core would; {TIMER_RULES['send_keepalive']}")
                self._produced(self.device.send_keepalive_now(peer, t, "passive"), t, f"frame {frame}")
                return self._compare_quiet(data)
        return False

    def _compare_quiet(self, data: bytes) -> bool:
        for i, p in enumerate(self.pending):
            if p.data == data:
                del self.pending[i]
                return True
        return False

    def _unrevealed(self, when: float) -> bool:
        return any(abs(t - when) <= LATE for t, _ in self.entropy.unknown)

    def _late(self, frame: int, t: float, p: Pending) -> None:
        delay = t - p.time
        if delay > LATE or delay < -EARLY:
            self._diverge([frame], t, f"{self.name} sent {ARTICLE[p.kind]} {delay:.3f} s after its protocol "
                          f"core did ({p.cause})")

    def _missing(self, p: Pending) -> None:
        self._diverge([], p.time, f"{self.name}'s protocol core sent {ARTICLE[p.kind]} at this time "
                      f"({p.cause}); the node sent none within {KEEPALIVE_TIMEOUT:g} s")

    def _diverge(self, frames: list, t: float, detail: str) -> None:
        self.divergences += 1
        self.find("divergence", frames, detail, t, self.name)
        if self.divergences >= MAX_DIVERGENCES:
            self._stop(frames[0] if frames else -1, f"{MAX_DIVERGENCES} divergences: from here this side is "
                       "observed, not re-executed")

    def _stop(self, frame: int, why: str) -> None:
        self.stopped_at, self.stop_reason = frame, why
        self.batch.clear()
        self.pending.clear()
        self.overdue.clear()
