"""Event sinks built on structlog: JSON lines (`--events FILE|-`) and a readable console line.

A bus Event enters a structlog pipeline of small processors, each doing one thing:

    add_wall_timestamp  the event's wall time -> ISO 8601 UTC `timestamp` (JSON keeps `time`, the
                        protocol clock, beside it; the console shows the wall time of day)
    add_level           the catalogue level ("trace", "debug", "info")
    add_category        the catalogue category ("handshake", "cookie", ...)
    shorten_peer        console only: the first 8 base64 characters of the peer key
    drop_empty          console only: fields that are None say nothing
    JSONRenderer | ConsoleRenderer

The bus only calls a sink for events at or above the level it subscribed with, and the core
builds per-packet (TRACE) events only when some sink asked for them, so the data path pays
for structlog only when the user asked for `--events-level trace`.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any, Callable, TextIO

import structlog

from ..events import CATALOGUE, LEVEL_NAMES, Event, iso_wall

Processor = Callable[[Any, str, dict], dict]

__all__ = ["EventLogSink", "json_processors", "console_processors", "add_wall_timestamp", "add_level",
           "add_category", "shorten_peer", "drop_empty"]


def add_wall_timestamp(wall_offset: float = 0.0, short: bool = False) -> Processor:
    """`wall` (the Event's wall clock, UTC; or `time` + wall_offset for a dict without one) ->
    `timestamp`, ISO 8601. JSON keeps `time` too: it is what replay and the lab compare; the
    console shows only HH:MM:SS.mmm."""

    def processor(_logger, _name, event_dict: dict) -> dict:
        t = event_dict.get("time")
        wall = event_dict.pop("wall", None)
        if wall is None and isinstance(t, (int, float)):
            wall = t + wall_offset
        if wall is not None:
            if short:
                event_dict.pop("time")
                event_dict["timestamp"] = iso_wall(wall, "milliseconds")[11:23]
            else:
                event_dict["timestamp"] = iso_wall(wall)
        return event_dict

    return processor


def add_level(_logger, _name, event_dict: dict) -> dict:
    et = CATALOGUE.get(event_dict.get("event"))
    event_dict["level"] = LEVEL_NAMES.get(et.level, str(et.level)) if et else "info"
    return event_dict


def add_category(_logger, _name, event_dict: dict) -> dict:
    et = CATALOGUE.get(event_dict.get("event"))
    if et is not None:
        event_dict["category"] = et.category
    return event_dict


def shorten_peer(_logger, _name, event_dict: dict) -> dict:
    peer = event_dict.get("peer")
    if isinstance(peer, str) and len(peer) > 8:
        event_dict["peer"] = peer[:8]
    return event_dict


def drop_empty(_logger, _name, event_dict: dict) -> dict:
    for key in [k for k, v in event_dict.items() if v is None]:
        del event_dict[key]
    return event_dict


def _order_for_json(_logger, _name, event_dict: dict) -> dict:
    """Stable leading keys so `jq`/grep readers find them in the same place on every line."""
    head = {k: event_dict.pop(k) for k in ("timestamp", "level", "event", "category", "node", "peer", "time")
            if k in event_dict}
    head.update(event_dict)
    return head


def json_processors(wall_offset: float) -> list:
    return [add_wall_timestamp(wall_offset), add_level, add_category, _order_for_json,
            structlog.processors.JSONRenderer(serializer=json.dumps, default=str)]


# structlog 25.5 renamed pad_event to pad_event_to; name the column width either way.
_PAD = ({"pad_event_to": 28} if "pad_event_to" in inspect.signature(structlog.dev.ConsoleRenderer).parameters
        else {"pad_event": 28})


def console_processors(wall_offset: float, colors: bool) -> list:
    return [add_wall_timestamp(wall_offset, short=True), add_level, shorten_peer, drop_empty,
            structlog.dev.ConsoleRenderer(colors=colors, sort_keys=False, **_PAD,
                                          exception_formatter=structlog.dev.plain_traceback)]


class EventLogSink:
    """A bus sink that renders each Event through a structlog pipeline, one line per event.

    `target` is a path (overwritten), "-" (stdout) or an open text stream. `fmt` is "json",
    "console" or "auto" (console when the target is a terminal, JSON otherwise).
    """

    def __init__(self, target: str | TextIO, fmt: str = "auto", wall_offset: float = 0.0,
                 node: str | None = None) -> None:
        if isinstance(target, str):
            if target == "-":
                self._stream, self._owns = sys.stdout, False
            else:
                self._stream, self._owns = open(target, "w", encoding="utf-8"), True
        else:
            self._stream, self._owns = target, False
        tty = bool(getattr(self._stream, "isatty", lambda: False)())
        if fmt == "auto":
            fmt = "console" if tty else "json"
        if fmt not in ("json", "console"):
            raise ValueError(f"unknown events format {fmt!r} (json, console)")
        self.format = fmt
        processors = json_processors(wall_offset) if fmt == "json" else console_processors(wall_offset, tty)
        self._log = structlog.wrap_logger(structlog.WriteLogger(self._stream), processors=processors,
                                          wrapper_class=structlog.BoundLogger)
        if node:
            self._log = self._log.bind(node=node)
        self.lines = 0

    def __call__(self, ev: Event) -> None:
        self._log.msg(ev.name, peer=ev.peer, time=ev.time, wall=ev.wall, **ev.fields)
        self.lines += 1

    def close(self) -> None:
        if self._owns:
            self._stream.close()
        else:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                pass
