"""Counters missing from a flow, kept as ranges: memory follows the gaps the capture shows,
never the numbers inside a packet (a forged counter of 2^60 is one range, not 2^60 entries)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

MAX_RANGES = 4096  # per flow; past this, further gaps are only counted


@dataclass
class Gap:
    lo: int
    hi: int  # inclusive
    before: int | None  # the frame that carried counter lo - 1
    after: int | None  # the frame that carried counter hi + 1


class LossRanges:
    __slots__ = ("ranges", "overflow")

    def __init__(self) -> None:
        self.ranges: list[Gap] = []  # sorted, disjoint
        self.overflow = 0  # counters in gaps not kept as ranges

    def add(self, lo: int, hi: int, before: int | None, after: int | None) -> None:
        """Counters lo..hi were skipped (above every range so far)."""
        if len(self.ranges) >= MAX_RANGES:
            self.overflow += hi - lo + 1
            return
        self.ranges.append(Gap(lo, hi, before, after))

    def fill(self, counter: int) -> bool:
        """A late counter arrived: take it out of its gap. True when it was missing."""
        ranges = self.ranges
        i = bisect_right([g.lo for g in ranges], counter) - 1 if len(ranges) > 8 else \
            next((k for k in range(len(ranges) - 1, -1, -1) if ranges[k].lo <= counter), -1)
        if i < 0 or ranges[i].hi < counter:
            return False
        g = ranges[i]
        if g.lo == g.hi:
            del ranges[i]
        elif counter == g.lo:
            g.lo += 1
        elif counter == g.hi:
            g.hi -= 1
        else:
            ranges.insert(i + 1, Gap(counter + 1, g.hi, None, g.after))
            g.hi = counter - 1
        return True

    def count(self) -> int:
        return sum(g.hi - g.lo + 1 for g in self.ranges) + self.overflow

    def __bool__(self) -> bool:
        return bool(self.ranges) or bool(self.overflow)

    def __len__(self) -> int:
        return self.count()
