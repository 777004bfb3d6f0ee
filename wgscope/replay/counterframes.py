"""Which frame carried each counter a flow accepted, for the findings that name an earlier frame
("counter 7 seen again": the frame that first carried 7; a reordering: the newest counter's frame).

Only counters inside the anti-replay window behind the newest are ever asked for (a duplicate is
judged so only within the window, and the newest counter's frame is always kept), so older ones are
dropped once there are twice the window's worth. A run the observer takes at once (observe_runs.py)
is usually consecutive counters in consecutive frames: one span (first counter, last counter, first
frame) instead of an entry per message.
"""

from __future__ import annotations

from ..protocol.constants import REPLAY_WINDOW_SIZE

_MAX_SPANS = 256  # past this, spans wholly behind the window are dropped


class CounterFrames:
    __slots__ = ("single", "spans")

    def __init__(self) -> None:
        self.single: dict[int, int] = {}  # counter -> frame, one message at a time
        self.spans: list[tuple[int, int, int]] = []  # (first counter, last counter, frame of the first)

    def get(self, counter: int) -> int | None:
        frame = self.single.get(counter)
        if frame is None:
            for first, last, frame0 in reversed(self.spans):
                if first <= counter <= last:
                    return frame0 + counter - first
        return frame

    def add(self, counter: int, frame: int, newest: int) -> None:
        """An accepted message; `newest`: the flow's greatest accepted counter."""
        single = self.single
        single[counter] = frame
        if len(single) > 2 * REPLAY_WINDOW_SIZE:
            oldest = newest - REPLAY_WINDOW_SIZE
            self.single = {c: f for c, f in single.items() if c >= oldest}

    def add_run(self, counters: list, frames: list, newest: int) -> None:
        """A run of accepted messages (counters rising); `newest`: its last counter."""
        n = len(counters)
        if counters[-1] - counters[0] == n - 1 and frames[-1] - frames[0] == n - 1:
            spans = self.spans
            spans.append((counters[0], counters[-1], frames[0]))
            if len(spans) > _MAX_SPANS:
                oldest = newest - REPLAY_WINDOW_SIZE
                self.spans = [s for s in spans if s[1] >= oldest]
            return
        single = self.single
        single.update(zip(counters, frames))
        if len(single) > 2 * REPLAY_WINDOW_SIZE:
            oldest = newest - REPLAY_WINDOW_SIZE
            self.single = {c: f for c, f in single.items() if c >= oldest}

    def values(self) -> list[int]:
        """Every frame still kept."""
        return [*self.single.values(), *(f0 + k for first, last, f0 in self.spans for k in range(last - first + 1))]
