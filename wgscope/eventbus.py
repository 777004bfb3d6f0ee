"""The event bus: how events travel from the core to the sinks (the catalogue is wgscope/events.py).

An Event has a stable name, the time it happened (the protocol clock passed into the core),
the same instant as wall-clock time (the node's `Device.wall`), the peer it concerns (base64
public key, or None) and the catalogue's fields. Levels follow logging's numbers, plus TRACE
below DEBUG for per-packet events: the core checks `bus.trace` (a plain attribute) before it
records one, so leaving them off costs one attribute read.

Secrets never travel as events. The core hands handshake secrets to `bus.publish_secret`,
which reaches only sinks that subscribed with `subscribe_secrets` — the keylog and the
capture writer, which exist only when the user asked for keys.

Import these names from wgscope.events, which re-exports them beside the catalogue.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

if TYPE_CHECKING:
    from .events import EventType


TRACE = 5
DEBUG = 10
INFO = 20
WARNING = 30
LEVEL_NAMES = {TRACE: "trace", DEBUG: "debug", INFO: "info", WARNING: "warning"}
LEVELS = {v: k for k, v in LEVEL_NAMES.items()}


class Event(NamedTuple):
    """One event: `time` is the protocol clock the core was given, `wall` the same instant as
    wall-clock time (Unix seconds, UTC), from the node's own offset (`Device.wall(now)`)."""

    name: str
    time: float
    peer: str | None
    fields: dict[str, Any]
    level: int
    wall: float = 0.0

    @property
    def timestamp(self) -> str:
        """`wall` as ISO 8601 UTC with microseconds, e.g. 2026-12-01T09:00:00.123456Z."""
        return iso_wall(self.wall)

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.name, "time": self.time, "timestamp": self.timestamp, "peer": self.peer,
                **self.fields}


def iso_wall(wall: float, timespec: str = "microseconds") -> str:
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).isoformat(timespec=timespec).replace(
        "+00:00", "Z")


class HandshakeSecrets(NamedTuple):
    """Handed to secret subscribers only (keylog, capture DSB). Never an Event."""

    time: float
    local_static_private: bytes
    remote_static_public: bytes
    local_ephemeral_private: bytes
    preshared_key: bytes
    role: str


Sink = Callable[[Event], None]
# A record sink takes what the bus gathered since the last flush: records (name, time, peer, a, b, c)
# in emission order, the Events the generic records (name GENERIC) point at (a = index into
# `generic`), and the wall offset (wall = time + offset).
RecordSink = Callable[[list, list, float], None]


def _address(a: int, b: int, c: int) -> str:
    """A packed address: a = IP version, b/c = the high/low 64 bits of the address."""
    return str(ipaddress.IPv4Address(c) if a == 4 else ipaddress.IPv6Address((b << 64) | c))


# Per-packet events travel as three unsigned integers (a, b, c), packed by the core with
# `bus.record(etype, now, peer, a, b, c)` and turned into the catalogue's fields only when read.
# Every other event is "generic": its Event is kept as built by `emit`.
PACKED: dict[str, Callable[[int, int, int], dict[str, Any]]] = {
    "transport_sent": lambda a, b, c: {"receiver_index": a, "counter": b, "size": c},
    "transport_received": lambda a, b, c: {"receiver_index": a, "counter": b, "size": c},
    "packet_staged": lambda a, b, c: {"depth": a},
    "route_found": lambda a, b, c: {"dst": _address(a, b, c)},
    "source_allowed": lambda a, b, c: {"src": _address(a, b, c)},
}
M64 = (1 << 64) - 1
GENERIC = ""  # the name slot of a record that stands for an Event built by emit

FLUSH_RECORDS = 4096  # records gathered before the record sinks get them
FLUSH_INTERVAL = 1.0  # protocol seconds: a quiet node's records still leave within about this


def _same_clock(now: float) -> float:
    return now


STRICT_ENV = "WGSCOPE_STRICT_EVENTS"  # "1": every bus checks each event's fields against the catalogue


class EventBus:
    """One bus per node. Sinks subscribe with a level; the bus keeps the lowest as `level`.

    Two kinds of subscriber:
      subscribe(sink, level)          sink(Event) for each event at or above level, as it happens
      subscribe_records(sink, level)  sink(records, generic, wall_offset) every FLUSH_RECORDS records
                                      or FLUSH_INTERVAL (and on flush()): the binary trace writer.
                                      Records are gathered at the lowest level of these sinks.

    The core announces an event in one of two ways: `emit(etype, now, peer, **fields)` builds
    an Event; `record(etype, now, peer, a, b, c)` is for the per-packet events of PACKED and
    costs one tuple appended to a list when only record sinks want them (an Event is built
    only if an Event sink subscribed at TRACE). `wall(now)` is the node's wall clock (the
    Device sets it to `Device.wall`), stamped on every Event.

    A strict bus raises TypeError for an event whose fields are not exactly its catalogue entry's;
    strict defaults to on when the environment has WGSCOPE_STRICT_EVENTS=1 (the test suite)."""

    def __init__(self, level: int = INFO, strict: bool | None = None) -> None:
        self._sinks: list[tuple[int, Sink]] = []
        self._named_sinks: list[tuple[int, Sink, frozenset]] = []  # sinks of a few event names
        self._named: dict[str, list[tuple[int, Sink]]] = {}  # name -> those sinks
        self._history: deque[tuple] | None = None  # (etype, now, peer, fields): see keep_history
        self._history_level = WARNING + 1
        self._record_sinks: list[tuple[int, RecordSink]] = []
        self._secret_sinks: list[Callable[[HandshakeSecrets], None]] = []
        self._taps: list[Callable[[str, tuple, tuple, bytes, float], None]] = []
        self.tapping = False  # adapters check this before calling tap_datagram
        self.strict = os.environ.get(STRICT_ENV) == "1" if strict is None else strict
        self.wall: Callable[[float], float] = _same_clock
        self.records: list[tuple] = []
        self.generic: list[Event] = []
        self._flush_due = float("-inf")
        self.floor = level  # the level at which events are built even with no sink (history)
        self._relevel()

    def _relevel(self) -> None:
        event_level = min([lvl for lvl, _ in self._sinks], default=WARNING + 1)
        self.record_level = min([lvl for lvl, _ in self._record_sinks], default=WARNING + 1)
        self._named = {}
        for lvl, sink, names in self._named_sinks:
            for name in names:
                self._named.setdefault(name, []).append((lvl, sink))
        named_level = min([lvl for lvl, _, _ in self._named_sinks], default=WARNING + 1)
        # An Event is built only when a sink or the record sinks want its level (or a named sink its
        # name); below `level` emit returns at once. The floor and the history keep their levels'
        # events going through emit (strict checks, the history) without building an Event.
        self._build_level = min(event_level, self.record_level)
        self.level = min(self.floor, event_level, named_level, self.record_level, self._history_level)
        self.trace = self.level <= TRACE
        self.debug = self.level <= DEBUG
        self._trace_events = min(self.floor, event_level) <= TRACE
        if self._trace_events:
            self.record = self._record_event
        elif self.record_level <= TRACE:
            self.record = self._record
        else:
            self.record = self._record_nothing

    def subscribe(self, sink: Sink, level: int = INFO, names: frozenset[str] | None = None) -> Callable[[], None]:
        """sink(Event) for each event at or above `level`; with `names`, only events of those names
        (a sink that follows a few kinds costs the others nothing)."""
        if names is not None:
            return self._add(self._named_sinks, (level, sink, frozenset(names)))
        return self._add(self._sinks, (level, sink))

    def keep_history(self, size: int, level: int = INFO) -> Callable[[], list[Event]]:
        """Keep the last `size` events at or above `level` (the control socket's history for a view
        that attaches later) as the core emitted them: an Event is built for them only when the
        returned function is called (oldest first). Called again, it changes the level, keeping what
        it kept."""
        if self._history is None or self._history.maxlen != size:
            self._history = deque(self._history or (), maxlen=size)
        self._history_level = level
        self._relevel()
        history = self._history

        def read() -> list[Event]:
            wall = self.wall
            return [Event(etype.name, now, peer, fields, etype.level, wall(now)) for etype, now, peer, fields in
                    list(history)]

        return read

    def subscribe_records(self, sink: RecordSink, level: int = TRACE) -> Callable[[], None]:
        """`sink(records, generic, wall_offset)`; unsubscribing flushes first, so it misses nothing."""
        return self._add(self._record_sinks, (level, sink), flush=True)

    def _add(self, sinks: list, entry: tuple, flush: bool = False) -> Callable[[], None]:
        sinks.append(entry)
        self._relevel()

        def unsubscribe() -> None:
            if entry in sinks:
                if flush:
                    self.flush()
                sinks.remove(entry)
                self._relevel()

        return unsubscribe

    def subscribe_secrets(self, sink: Callable[[HandshakeSecrets], None]) -> None:
        self._secret_sinks.append(sink)

    @property
    def wants_secrets(self) -> bool:
        return bool(self._secret_sinks)

    def publish_secret(self, secrets: HandshakeSecrets) -> None:
        for sink in self._secret_sinks:
            sink(secrets)

    def add_datagram_tap(self, tap: Callable[[str, tuple, tuple, bytes, float], None]) -> None:
        """A tap sees every underlay datagram: tap(direction "in"|"out", src, dst, data, now).

        Adapter contract: after each core call, tap the input datagram (if any) first, then each
        SendDatagram the call returned, in order; the events the call emitted in between are the
        verdict on those datagrams (the capture writer turns them into packet comments)."""
        self._taps.append(tap)
        self.tapping = True

    def tap_datagram(self, direction: str, src: tuple, dst: tuple, data: bytes, now: float) -> None:
        for tap in self._taps:
            tap(direction, src, dst, data, now)

    def forget_history(self) -> None:
        """Stop keeping the history (its reader stays valid, with what it kept)."""
        self._history, self._history_level = None, WARNING + 1
        self._relevel()

    def emit(self, etype: EventType, now: float, peer: str | None = None, **fields: Any) -> None:
        if etype.level < self.level:
            return
        if self.strict and set(fields) != set(etype.fields):
            raise TypeError(f"{etype.name}: fields {sorted(fields)} != catalogue {sorted(etype.fields)}")
        if etype.level >= self._history_level:
            self._history.append((etype, now, peer, fields))
        named = self._named.get(etype.name) if self._named else None
        if etype.level < self._build_level and named is None:
            return  # no sink wants it: no Event built
        ev = Event(etype.name, now, peer, fields, etype.level, self.wall(now))
        for level, sink in self._sinks:
            if etype.level >= level:
                sink(ev)
        if named is not None:
            for level, sink in named:
                if etype.level >= level:
                    sink(ev)
        if etype.level >= self.record_level:
            generic = self.generic
            generic.append(ev)
            self._append((GENERIC, now, peer, len(generic) - 1, 0, 0))

    # ---------------------------------------------------------------- per-packet records
    def _record_nothing(self, etype: EventType, now: float, peer: str | None, a: int = 0, b: int = 0,
                        c: int = 0) -> None:
        pass

    def _record(self, etype: EventType, now: float, peer: str | None, a: int = 0, b: int = 0, c: int = 0) -> None:
        records = self.records
        records.append((etype.name, now, peer, a, b, c))
        if len(records) >= FLUSH_RECORDS or now >= self._flush_due:
            self.flush(now)

    def _record_event(self, etype: EventType, now: float, peer: str | None, a: int = 0, b: int = 0,
                      c: int = 0) -> None:
        """Some Event sink wants per-packet events: build the Event the record stands for."""
        if etype.level < self.level:
            return
        if self.record_level <= etype.level:
            self._record(etype, now, peer, a, b, c)
        ev = Event(etype.name, now, peer, PACKED[etype.name](a, b, c), etype.level, self.wall(now))
        for level, sink in self._sinks:
            if etype.level >= level:
                sink(ev)

    def _append(self, entry: tuple) -> None:
        records = self.records
        records.append(entry)
        if len(records) >= FLUSH_RECORDS or entry[1] >= self._flush_due:
            self.flush(entry[1])

    def flush(self, now: float | None = None) -> None:
        """Hand the gathered records to the record sinks (also when a node stops or a reader asks)."""
        if now is not None:
            self._flush_due = now + FLUSH_INTERVAL
        records, generic = self.records, self.generic
        if not records:
            return
        self.records, self.generic = [], []
        offset = self.wall(0.0)
        for _level, sink in self._record_sinks:
            sink(records, generic, offset)
