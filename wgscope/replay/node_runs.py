"""A re-executed side's run of transport sends, fed to its core a TUN read at a time.

`sent_run` does what node.py `sent` does to each datagram of a run (consecutive transport
messages the side sent on one receiver index, counters rising), for as long as nothing in the
run asks for a decision per datagram: the observer opened every message, the side's keypair for
that index is current and steady (no handshake due: node.py `_steady`), no earlier datagram of
the core's waits to be matched, nothing is annotated, and no routes are being learned. Then the
run is cut into the batches node.py's `_run` makes (at most BATCH_MAX, spanning at most
BATCH_SPAN, none across a timer deadline), each batch goes through Device.send_packets, and the
datagrams the core returns are compared with the wire's: all equal, in order, is agreement for
each (what `flush` and compare.py `_compare` conclude then); anything else takes `flush`'s own path.

The core's seals of the run are served by a SealMemo (sealmemo.py: the wire's bytes, when the
key, the counter and the padded plaintext are proven equal). It returns how many datagrams
it took; the caller sends the rest through `sent` one by one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter

from ..protocol.actions import SendDatagram
from ..protocol.antireplay import AntiReplayWindow
from ..protocol.constants import REJECT_AFTER_MESSAGES, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME
from .sealmemo import SealMemo

_DATAGRAMS_ONLY = {SendDatagram}
_data = itemgetter(0)  # SendDatagram.data
_after = bytes.removeprefix  # d.removeprefix(w): what of d follows w (d itself when w is no prefix of it)


class RunSender:
    """Mixed into node.ReplayNode (which sets BATCH_MAX and BATCH_SPAN from node.py)."""

    def sent_run(self, frames: list, times: list, datas: list, inners: list, padded: list, counters: list,
                 receiver: int, judge: bool, batch) -> int:
        """`inners`, `padded`: what driver.Kept holds for the run; `batch` (Kept.batch) makes a
        batch's slices of them the packets and padded plaintexts."""
        if not self.active or judge or None in inners or counters[0] < self.prefed.get(receiver, 0) \
                or counters[-1] >= REJECT_AFTER_MESSAGES \
                or (not self.side.from_config and len(self.device.peers) >= 2):
            return 0
        keypair = self._own_keypair(receiver)
        if keypair is None or keypair.expired_reason(times[-1]) or not self._steady_for(keypair, times[-1], len(frames)):
            return 0
        if self.batch:
            self.flush()
        window = self.seen.get(receiver)
        if window is None:
            window = self.seen[receiver] = AntiReplayWindow()
        if type(keypair.send) is not SealMemo:
            keypair.send = SealMemo(keypair.send)
        memo = keypair.send
        ordered = times == sorted(times)  # as a capture's times are: its batches' ends found by bisection
        done, n = 0, len(frames)
        while done < n:
            if done:
                self.advance(times[done])
            if self.pending or self.overdue or not self.active:
                break
            end = self._batch_end(times, done, ordered)
            if end == done or not window.accept_run(counters[done:end]):
                break
            packets, pads = batch(inners[done:end], padded[done:end])
            memo.expect(counters[done:end], pads, datas[done:end])
            self._send_batch(frames, times, datas, packets, done, end)
            done = end
        memo.expect([], [], [])
        return done

    def _steady_for(self, keypair, t: float, n: int) -> bool:
        """node.py `_steady` for every send of a run of n ending at t (the counter rises by n)."""
        if keypair.is_initiator and (t + self.BATCH_SPAN - keypair.created > REKEY_AFTER_TIME
                                     or keypair.send_counter + n + self.BATCH_MAX > REKEY_AFTER_MESSAGES):
            return False
        return self._steady(keypair, t)

    def _batch_end(self, times: list, start: int, ordered: bool) -> int:
        """Where the batch starting at `start` ends: BATCH_MAX sends, BATCH_SPAN seconds, or the
        core's next deadline (a timer comes first). `ordered`: `times` never decrease, so the
        first send past the span or at the deadline is found by bisection."""
        when = self.device.next_deadline()
        limit = min(len(times), start + self.BATCH_MAX)
        last = times[start] + self.BATCH_SPAN
        if ordered:
            end = bisect_right(times, last, start, limit)
            return end if when is None else bisect_left(times, when, start, end)
        end = start
        while end < limit and times[end] <= last and (when is None or times[end] < when):
            end += 1
        return end

    def _send_batch(self, frames, times, datas, packets, start: int, end: int) -> None:
        """`packets`: the inner packets of datagrams start..end."""
        t = times[end - 1]
        self._clock_at(t)
        actions = self.device.send_packets(packets, t)
        wire = datas[start:end]
        if len(actions) == len(wire) and set(map(type, actions)) == _DATAGRAMS_ONLY \
                and same_bytes(list(map(_data, actions)), wire):
            self.agreed["transport"] += end - start
            return
        self._judge_batch(actions, t, frames[start], zip(frames[start:end], times[start:end], wire, packets), packets)


def same_bytes(made: list, wire: list) -> bool:
    """Whether made[i] == bytes(wire[i]) for every i (lists of equal length), without copying the
    wire's views (the capture's mapped bytes): for a non-empty bytes d, d.removeprefix(w) is b""
    exactly when d starts with w and is no longer, i.e. d == w byte for byte; an empty d (which
    removeprefix would hand back as b"") or a d that is not bytes (TypeError) is compared the plain way."""
    if all(made):
        try:
            return not any(map(_after, made, wire))
        except TypeError:
            pass
    return made == list(map(bytes, wire))  # bytes: a view compares a byte at a time
