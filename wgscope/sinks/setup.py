"""The observability options every node command shares, and wiring them to a node's bus.

    add_sink_arguments(parser)                      --events --events-level --events-format
                                                    --keylog --capture --metrics
    sinks = attach_sinks(bus, args, snapshot_fn, name)
    ...
    sinks.close()

`snapshot_fn()` returns the device snapshot at the node's current time (it is called at
scrape time by the metrics endpoint, and once here to learn the wall-clock offset).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Callable, TextIO

from typing import TYPE_CHECKING

from ..errors import UserError
from ..events import FLUSH_INTERVAL, LEVELS, EventBus

if TYPE_CHECKING:  # imported when sinks are attached: structlog and prometheus_client cost ~0.5 s to load,
    from .capture import CaptureWriter  # which every `wgscope` command line would pay to build its parser
    from .jsonlog import EventLogSink
    from .keylog import KeylogWriter
    from .metrics import MetricsServer
    from ..trace.writer import TraceWriter

__all__ = ["add_sink_arguments", "attach_sinks", "Sinks", "flush_while_running"]

EVENT_LEVELS = ("trace", "debug", "info")


def add_sink_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("observability")
    g.add_argument("--events", metavar="FILE|-", help="write every event: FILE.wgtrace as a binary trace "
                   "(fast enough for --events-level trace; read it with `wgscope events FILE`), another FILE as "
                   "JSON lines, '-' to stdout (a readable console line when stdout is a terminal)")
    g.add_argument("--events-level", choices=EVENT_LEVELS, default="info",
                   help="lowest event level written: info (default), debug (timers, keepalives), "
                        "trace (every packet: a binary trace costs a little, JSON lines slow the data path)")
    g.add_argument("--events-format", choices=("auto", "json", "console", "binary"), default="auto",
                   help="json, console, binary, or auto (binary for FILE.wgtrace, console on a terminal, "
                        "JSON otherwise)")
    g.add_argument("--keylog", metavar="FILE", help="append each handshake's keys in Wireshark's WireGuard "
                   "key log format (wg.keylog_file); the file holds secrets and is created 0600")
    g.add_argument("--capture", metavar="FILE.pcapng", help="record the node's UDP traffic as pcapng, with "
                   "the keys embedded (Wireshark decrypts it with no settings) and wgscope's verdict as a "
                   "comment on every packet; created 0600")
    g.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics at http://HOST:PORT/metrics "
                   "(':PORT' listens on all addresses)")


@dataclass
class Sinks:
    events: EventLogSink | TraceWriter | None = None
    keylog: KeylogWriter | None = None
    capture: CaptureWriter | None = None
    metrics: MetricsServer | None = None
    _unsubscribe: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for sink in (self.metrics, self.capture, self.keylog, self.events):
            if sink is not None:
                sink.close()


def _wall_offset(snapshot_fn: Callable[[], dict] | None) -> float:
    if snapshot_fn is None:
        return 0.0
    snap = snapshot_fn()
    return float(snap.get("wall", 0.0)) - float(snap.get("time", 0.0))


def attach_sinks(bus: EventBus, args: argparse.Namespace, snapshot_fn: Callable[[], dict] | None, name: str, *,
                 wall_offset: float | None = None, warn: TextIO | None = sys.stderr) -> Sinks:
    """Create the sinks the options ask for and subscribe them to `bus`.

    Raises wgscope.errors.UserError (one line) when a file cannot be created or the metrics
    address cannot be bound; sinks made before the failure are closed again.
    """
    from .capture import CaptureWriter
    from .jsonlog import EventLogSink
    from .keylog import KeylogWriter
    from .metrics import MetricsServer
    from ..trace.format import SUFFIX as TRACE_SUFFIX
    from ..trace.writer import TraceWriter

    if wall_offset is None:
        wall_offset = _wall_offset(snapshot_fn)
    sinks = Sinks()
    try:
        events = getattr(args, "events", None)
        if events:
            what = "stdout" if events == "-" else events
            fmt = getattr(args, "events_format", "auto") or "auto"
            level = LEVELS[getattr(args, "events_level", None) or "info"]
            binary = fmt == "binary" or (fmt == "auto" and events.endswith(TRACE_SUFFIX))
            if binary and events == "-":
                raise UserError("a binary trace needs a file (--events FILE.wgtrace)")
            try:
                if binary:
                    sinks.events = TraceWriter(events, bus, level, node=name)
                else:
                    sinks.events = EventLogSink(events, fmt, wall_offset, node=name)
            except OSError as e:
                raise UserError(f"cannot write events to {what}: {e.strerror or e}") from None
            if not binary:
                sinks._unsubscribe.append(bus.subscribe(sinks.events, level))
        if getattr(args, "keylog", None):
            try:
                sinks.keylog = KeylogWriter(args.keylog, wall_offset, name, warn=warn)
            except OSError as e:
                raise UserError(f"cannot write key log {args.keylog}: {e.strerror or e}") from None
            bus.subscribe_secrets(sinks.keylog)
        if getattr(args, "capture", None):
            try:
                sinks.capture = CaptureWriter(args.capture, bus, wall_offset, name, warn=warn)
            except OSError as e:
                raise UserError(f"cannot write capture {args.capture}: {e.strerror or e}") from None
        if getattr(args, "metrics", None):
            if snapshot_fn is None:
                raise UserError("--metrics needs a node to read")
            try:
                sinks.metrics = MetricsServer(args.metrics, snapshot_fn, name)
            except ValueError as e:
                raise UserError(str(e)) from None
            except OSError as e:
                raise UserError(f"cannot serve metrics on {args.metrics}: {e.strerror or e}") from None
    except BaseException:
        sinks.close()
        raise
    return sinks


def flush_while_running(bus: EventBus, node) -> None:
    """A live node's gathered trace records reach the file at least every FLUSH_INTERVAL, also
    when no event comes to carry them (the bus flushes on its own only when one is recorded)."""

    def start(n) -> None:
        handle = []

        def tick() -> None:
            bus.flush()
            handle[:] = [n.loop.call_later(FLUSH_INTERVAL, tick)]

        handle.append(n.loop.call_later(FLUSH_INTERVAL, tick))
        n.on_stop.append(lambda _n: handle[0].cancel())

    node.on_start.append(start)
