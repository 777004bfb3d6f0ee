"""The sliding anti-replay window (WP §5.4.6, RFC 6479).

Same layout and decisions as wireguard-go's replay/replay.go: a ring of 128 blocks of 64
bits; the window covers REPLAY_WINDOW_SIZE (8128) counters behind the greatest accepted one.
The counter is validated only after the packet authenticated (WP §5.4.6).
"""

from __future__ import annotations

from .constants import REJECT_AFTER_MESSAGES, REPLAY_BLOCK_BITS, REPLAY_RING_BLOCKS, REPLAY_WINDOW_SIZE

_BLOCK_SHIFT = REPLAY_BLOCK_BITS.bit_length() - 1  # 6
_BIT_MASK = REPLAY_BLOCK_BITS - 1
_RING_MASK = REPLAY_RING_BLOCKS - 1

ACCEPTED = None
TOO_OLD = "counter_too_old"
DUPLICATE = "counter_replayed"
LIMIT = "counter_limit"


class AntiReplayWindow:
    __slots__ = ("last", "ring")

    def __init__(self) -> None:
        self.last = 0
        self.ring = [0] * REPLAY_RING_BLOCKS

    def check(self, counter: int, limit: int = REJECT_AFTER_MESSAGES) -> str | None:
        """Accept and record `counter`; return None, or the reason it is refused."""
        if counter >= limit:
            return LIMIT
        block = counter >> _BLOCK_SHIFT
        ring = self.ring
        if counter > self.last:
            current = self.last >> _BLOCK_SHIFT
            diff = min(block - current, REPLAY_RING_BLOCKS)
            for i in range(current + 1, current + diff + 1):
                ring[i & _RING_MASK] = 0
            self.last = counter
        elif self.last - counter > REPLAY_WINDOW_SIZE:
            return TOO_OLD
        block &= _RING_MASK
        bit = 1 << (counter & _BIT_MASK)
        old = ring[block]
        if old & bit:
            return DUPLICATE
        ring[block] = old | bit
        return ACCEPTED

    def accept_run(self, counters) -> bool:
        """Record a run of counters that are each greater than the one before and than every counter
        accepted so far: `check` would accept each in turn, and this leaves the window as those
        calls would (the blocks the run moves past cleared, one bit per counter). Only the bits of
        the blocks the ring still holds at the end are written. False, with nothing recorded, when
        the run does not start above the greatest accepted counter or reaches the limit."""
        first, last = counters[0], counters[-1]
        if first <= self.last or last >= REJECT_AFTER_MESSAGES:
            return False
        ring = self.ring
        current, top = self.last >> _BLOCK_SHIFT, last >> _BLOCK_SHIFT
        for i in range(current + 1, current + min(top - current, REPLAY_RING_BLOCKS) + 1):
            ring[i & _RING_MASK] = 0
        oldest = (top - REPLAY_RING_BLOCKS + 1) << _BLOCK_SHIFT  # counters below fall out of the ring
        if last - first == len(counters) - 1:  # consecutive, the usual case: whole blocks of bits at once
            lo = max(first, oldest)
            while lo <= last:
                hi = min(last, lo | _BIT_MASK)
                ring[(lo >> _BLOCK_SHIFT) & _RING_MASK] |= ((1 << (hi - lo + 1)) - 1) << (lo & _BIT_MASK)
                lo = hi + 1
        else:
            for c in counters:
                if c >= oldest:
                    ring[(c >> _BLOCK_SHIFT) & _RING_MASK] |= 1 << (c & _BIT_MASK)
        self.last = last
        return True
