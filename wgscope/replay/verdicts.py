"""A re-executed side's verdict on each datagram, in the live node's own comment format.

The capture writer (sinks/capture.py) turns the events of one core call into a packet comment
("wgscope: dir=in peer=.. kind=.. verdict=dropped reason=.."); this is the same judge, fed by
the re-executed Device's bus, with the comment handed back instead of written to a file. So an
annotated replay says what the node said, word for word.
"""

from __future__ import annotations

from ..events import INFO, EventBus
from ..sinks.capture import CaptureWriter, _classify, parse_comment

__all__ = ["VerdictJudge", "parse_comment"]


class VerdictJudge(CaptureWriter):
    def __init__(self, bus: EventBus) -> None:  # noqa: super().__init__ would open a file
        self._fresh = []
        self._batch = []
        self._peer_of_index = {}
        self._closed = False
        bus.subscribe(self._on_event, INFO)

    def tap(self, direction: str, src: tuple, dst: tuple, data: bytes, now: float) -> str:
        """The comment the live node's capture writer would give this datagram now."""
        if self._fresh:
            self._batch, self._fresh = self._fresh, []
        elif direction == "in":
            self._batch = []
        verdict = _classify(direction, data, src if direction == "in" else dst)
        self._judge(verdict, data)
        return verdict.comment()
