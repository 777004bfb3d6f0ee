"""Per-peer timers as deadlines (WP §6; WG-GO device/timers.go).

The core never sleeps: a timer is a deadline stored on the peer and scheduled in one heap
per device. `Device.next_deadline()` tells the adapter when to call `Device.tick(now)`.

Re-arming a pending timer to a later time (which happens on every packet for the
persistent keepalive) only moves the peer's deadline; the heap entry is checked when it
comes due and pushed again if the deadline moved, so the heap does not grow per packet.
"""

from __future__ import annotations

import heapq
import itertools

from ..events import TIMER_ARMED, TIMER_CANCELLED, EventBus

RETRANSMIT_HANDSHAKE = "retransmit_handshake"
SEND_KEEPALIVE = "send_keepalive"
NEW_HANDSHAKE = "new_handshake"
ZERO_KEY_MATERIAL = "zero_key_material"
PERSISTENT_KEEPALIVE = "persistent_keepalive"
TIMER_NAMES = (RETRANSMIT_HANDSHAKE, SEND_KEEPALIVE, NEW_HANDSHAKE, ZERO_KEY_MATERIAL, PERSISTENT_KEEPALIVE)


class Timer:
    __slots__ = ("name", "peer", "deadline", "scheduled")

    def __init__(self, name: str, peer) -> None:
        self.name = name
        self.peer = peer
        self.deadline: float | None = None  # None: not pending
        self.scheduled: float | None = None  # earliest heap entry for this timer

    @property
    def pending(self) -> bool:
        return self.deadline is not None


class TimerWheel:
    """The device's one heap of peer timers."""

    def __init__(self, bus: EventBus) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self.bus = bus

    def mod(self, timer: Timer, deadline: float, now: float) -> None:
        was_pending = timer.deadline is not None
        timer.deadline = deadline
        if timer.scheduled is None or deadline < timer.scheduled:
            timer.scheduled = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        if not was_pending and self.bus.debug:
            self.bus.emit(TIMER_ARMED, now, timer.peer.name, timer=timer.name, due_in=round(deadline - now, 6))

    def cancel(self, timer: Timer, now: float) -> None:
        if timer.deadline is not None:
            timer.deadline = None
            if self.bus.debug:
                self.bus.emit(TIMER_CANCELLED, now, timer.peer.name, timer=timer.name)

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            when, _, timer = heap[0]
            if timer.deadline is None or timer.scheduled != when:
                heapq.heappop(heap)  # cancelled, or superseded by an earlier entry
                if timer.scheduled == when:
                    timer.scheduled = None
                continue
            if timer.deadline > when:  # moved later: reschedule lazily
                heapq.heappop(heap)
                timer.scheduled = timer.deadline
                heapq.heappush(heap, (timer.deadline, next(self._seq), timer))
                continue
            return when
        return None

    def pop_due(self, now: float) -> Timer | None:
        """The next timer due at or before `now`, marked not pending; or None."""
        when = self.next_deadline()
        if when is None or when > now:
            return None
        _, _, timer = heapq.heappop(self._heap)
        timer.scheduled = None
        timer.deadline = None
        return timer

    def __len__(self) -> int:
        return len(self._heap)
