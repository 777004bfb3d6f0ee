"""A re-executed side's verdict on each datagram, in the live node's own comment format.

The capture writer (sinks/capture.py) turns the events of one core call into a packet comment
("wgscope: dir=in peer=.. kind=.. verdict=dropped reason=.."); this is the same judge, fed by
the re-executed Device's bus, with the comment handed back instead of written to a file. So an
annotated replay says what the node said, word for word.

A bulk transfer's datagrams mostly get one comment each from a core call that emitted nothing at
INFO: while no event comes, the comment depends only on the direction, the datagram's length and
first 8 bytes (the type, reserved bytes and index `_classify` reads) and the remote endpoint, so
it is remembered for those (`_said`, emptied by every event: an event may name a peer for an
index or be the verdict itself).
"""

from __future__ import annotations

from ..events import INFO, EventBus
from ..sinks.capture import CaptureWriter, _classify, parse_comment

__all__ = ["VerdictJudge", "parse_comment"]

_SAID_MAX = 4096


class VerdictJudge(CaptureWriter):
    def __init__(self, bus: EventBus) -> None:  # noqa: super().__init__ would open a file
        self._fresh = []
        self._batch = []
        self._peer_of_index = {}
        self._closed = False
        self._said: dict = {}  # (direction, length, first 8 bytes, remote) -> comment, since the last event
        bus.subscribe(self._on_event, INFO)

    def _on_event(self, ev) -> None:
        self._said.clear()
        super()._on_event(ev)

    def tap(self, direction: str, src: tuple, dst: tuple, data: bytes, now: float) -> str:
        """The comment the live node's capture writer would give this datagram now."""
        if self._fresh:
            self._batch, self._fresh = self._fresh, []
        elif direction == "in":
            self._batch = []
        remote = src if direction == "in" else dst
        if self._batch:
            return self._comment(direction, data, remote)
        key = (direction, len(data), bytes(data[:8]), remote)
        said = self._said.get(key)
        if said is None:
            if len(self._said) >= _SAID_MAX:
                self._said.clear()
            said = self._said[key] = self._comment(direction, data, remote)
        return said

    def _comment(self, direction: str, data: bytes, remote: tuple) -> str:
        verdict = _classify(direction, data, remote)
        self._judge(verdict, data)
        return verdict.comment()
