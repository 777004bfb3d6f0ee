"""`wgscope events FILE`: print a recorded event stream (a .wgtrace or JSON lines), filtered.

    wgscope events run.wgtrace                                 console lines on a terminal, else JSON
    wgscope events run.wgtrace --format json --kind handshake  only handshake events, as JSON lines
    wgscope events run.wgtrace --peer Ab3x --level debug --since 2026-12-01T09:00:00Z --until 60
    wgscope events run.wgtrace --count                         how many of each event

The lines are the ones `--events FILE.jsonl` / `--events -` would have written for the same
events (wgscope/sinks/jsonlog.py renders both).
"""

from __future__ import annotations

import collections
import sys

from ..errors import UserError
from ..events import LEVELS


def register(sub) -> None:
    p = sub.add_parser("events", help="print a recorded event stream (--events FILE.wgtrace or .jsonl), filtered",
                       description="Print the events of a binary trace (--events FILE.wgtrace) or of a JSON "
                                   "lines file, with the catalogue's names and fields (docs/events.md).")
    p.add_argument("file", metavar="FILE", help="a .wgtrace file or JSON lines written by --events")
    p.add_argument("--format", choices=("auto", "json", "console"), default="auto",
                   help="json lines, console lines, or auto (console on a terminal)")
    p.add_argument("--kind", action="append", metavar="NAME",
                   help="event names, categories or patterns (handshake_*), comma separated; repeatable")
    p.add_argument("--peer", metavar="KEY", help="only this peer: a prefix of its base64 public key ('-': no peer)")
    p.add_argument("--level", choices=tuple(LEVELS), help="lowest level shown (default: all in the file)")
    p.add_argument("--since", metavar="WHEN", help="from this time: protocol seconds, or ISO 8601 wall time (UTC)")
    p.add_argument("--until", metavar="WHEN", help="up to this time (inclusive), as --since")
    p.add_argument("--count", action="store_true", help="print how many of each event instead of the events")
    p.set_defaults(func=run)


def run(args) -> int:
    # imported here: every `wgscope` command line builds this parser (structlog, numpy load slowly)
    from ..sinks.jsonlog import EventLogSink
    from ..trace.format import TraceFormatError
    from ..trace.reader import parse_when, read_events, read_node, select

    try:
        since = parse_when(args.since) if args.since else None
        until = parse_when(args.until) if args.until else None
    except ValueError as e:
        raise UserError(str(e)) from None
    kinds = [k for arg in args.kind or () for k in arg.split(",")]
    try:
        node = read_node(args.file)
        events = select(read_events(args.file), kinds, args.peer, LEVELS.get(args.level), since, until)
        if args.count:
            counts = collections.Counter(ev.name for ev in events)
            for name, n in counts.most_common():
                print(f"{n:10}  {name}")
            return 0
        sink = EventLogSink(sys.stdout, args.format, node=node)
        try:
            for ev in events:
                sink(ev)
        finally:
            sink.close()
    except FileNotFoundError:
        raise UserError(f"no such file: {args.file}") from None
    except TraceFormatError as e:
        raise UserError(f"{args.file}: {e}") from None
    return 0
