"""`wgscope replay CAPTURE`: re-execute each side whose key is known through the protocol core, observe
the rest, and explain what happened."""

from __future__ import annotations

import json
import os
import sys

from ..errors import UserError
from ..events import DEBUG, INFO, EventBus
from ..plural import counted

EPILOG = """keys come from the capture's Decryption Secrets Block, --keylog files (Wireshark's WireGuard
key log format) and --config files (wg-quick, private keys of one or both sides). Every side whose
static private key is known is re-executed: its own Device gets what arrived at it and re-sends
what it sent, and every difference from the wire is a "divergence" finding; --events writes its
events under its name. With static private keys only, a side is followed up to its first
handshake (the ephemeral keys are needed for the session); with no keys, replay observes."""


def register(sub) -> None:
    p = sub.add_parser("replay", help="replay a pcap/pcapng capture through wgscope's protocol code",
                       description=__doc__, epilog=EPILOG)
    p.add_argument("capture", metavar="CAPTURE", help="pcap or pcapng file")
    p.add_argument("--keylog", action="append", default=[], metavar="FILE",
                   help="Wireshark WireGuard key log (LOCAL_STATIC_PRIVATE_KEY = ... lines); repeatable")
    p.add_argument("--config", action="append", default=[], metavar="FILE",
                   help="wg-quick configuration of one side (private key, peers, allowed IPs); repeatable")
    p.add_argument("--events", metavar="FILE|-", help="write the replayed events as JSON lines, or as the live "
                   "node's binary trace when FILE ends in .wgtrace (one file per re-executed side if several)")
    p.add_argument("--events-level", choices=("info", "debug", "trace"), default="info",
                   help="lowest event level written with --events (default info)")
    p.add_argument("--decrypted", metavar="OUT.pcap", help="write the decrypted inner packets as a plain pcap")
    p.add_argument("--annotate", metavar="OUT.pcapng", help="write the capture again with replay's verdicts as "
                   "packet comments (readable by dissectors/wgscope.lua)")
    p.add_argument("--plot", metavar="OUT.png", help="draw a timeline with matplotlib")
    p.add_argument("--json", action="store_true", help="print the reconstruction as JSON instead of the summary")
    p.add_argument("--xray", type=int, metavar="FRAME", help="show the handshake FRAME (an initiation or a response) "
                   "belongs to step by step, as the whitepaper writes it; values with a key log, redacted otherwise")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.xray is not None:
        from ..xray_capture import run_xray

        return run_xray(args)
    from ..events import TRACE
    from ..replay import ReplayInputError

    level = {"info": INFO, "debug": DEBUG, "trace": TRACE}[args.events_level]
    bus = EventBus(INFO)
    events = _EventFiles(args, bus, level)
    try:
        result = _replay(args, bus, events)
    except ReplayInputError as e:
        raise UserError(str(e)) from None
    except OSError as e:  # --decrypted is written as replay goes
        if args.decrypted is None or e.filename != args.decrypted:
            raise
        raise UserError(f"cannot write {e.filename}: {e.strerror}") from None
    finally:
        events.close()
    _outputs(args, result)
    if args.json:
        json.dump(result.as_dict(), sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    elif args.events != "-":
        from ..replay import report

        report.render(result)
    from ..cli import exit_now

    return exit_now(args, 0)  # every output is written and closed: the result is not freed object by object


class _EventFiles:
    """--events: JSON lines (every side and the observer's findings in one stream), or with a
    .wgtrace name the binary trace the live node writes (wgscope/trace/): a re-executed side's
    events in FILE, or in FILE's stem + .NAME.wgtrace for each side when several are re-executed;
    with none, the observer's findings go to FILE."""

    def __init__(self, args, bus: EventBus, level: int) -> None:
        from ..trace.format import SUFFIX

        self.path, self.level, self.stream = args.events, level, None
        self.binary = bool(self.path) and self.path != "-" and self.path.endswith(SUFFIX)
        self.writers: list = []
        self.multiple = False  # several sides: a file each
        self.bus = bus
        if not self.path or self.binary:
            return
        from ..sinks.jsonlog import EventLogSink

        self.stream = sys.stdout if self.path == "-" else self._open(lambda: open(self.path, "w", encoding="utf-8"))
        bus.subscribe(EventLogSink(self.stream, fmt="json", node="replay"), level)

    def _open(self, make):
        try:
            return make()
        except OSError as e:
            raise UserError(f"cannot write events to {self.path}: {e.strerror}") from None

    def node_bus(self, name: str) -> EventBus:
        """A re-executed side writes the live node's events under the node's own name."""
        node = EventBus(INFO)
        if self.stream is not None:
            from ..sinks.jsonlog import EventLogSink

            node.subscribe(EventLogSink(self.stream, fmt="json", node=name), self.level)
        elif self.binary:
            self.writers.append(self._trace(node, name))
        return node

    def _trace(self, bus: EventBus, name: str | None):
        from ..trace.format import SUFFIX
        from ..trace.writer import TraceWriter

        path = self.path
        if self.multiple and name is not None:
            path = f"{path[:-len(SUFFIX)]}.{''.join(c if c.isalnum() or c in '-_' else '_' for c in name)}{SUFFIX}"
        return self._open(lambda: TraceWriter(path, bus, self.level, node=name))

    def prepare(self, ring) -> None:
        """Before replaying: the key ring says how many sides can be re-executed."""
        self.multiple = len(ring.sides) > 1
        if self.binary and not ring.sides:
            self.writers.append(self._trace(self.bus, "replay"))  # nothing re-executed: the findings

    def close(self) -> None:
        if self.binary and not self.writers:  # no side's key spoke in the capture: an empty trace
            self.writers.append(self._trace(self.bus, "replay"))
        for writer in self.writers:
            writer.close()
            if writer.write_error is not None:
                raise UserError(f"cannot write events to {writer.path}: {writer.write_error.strerror}")
        if self.stream is not None and self.stream is not sys.stdout:
            self.stream.close()


def _replay(args, bus, events):
    from ..replay.driver import load_keys, replay_capture
    from ..replay.driver import ReplayInputError

    if not os.path.isfile(args.capture):
        what = "is a directory, not a capture file" if os.path.isdir(args.capture) else "no such file"
        raise ReplayInputError(f"{args.capture}: {what}")
    ring = load_keys(args.capture, args.keylog, args.config)
    events.prepare(ring)
    result = replay_capture(args.capture, bus=bus, annotate=bool(args.annotate), decrypted=args.decrypted,
                            keyring=ring, node_bus=events.node_bus)
    if ring.warnings:  # one line, after the replay succeeded (a failure is one line of its own)
        more = f" (and {len(ring.warnings) - 1} more)" if len(ring.warnings) > 1 else ""
        print(f"wgscope replay: warning: {ring.warnings[0]}{more}", file=sys.stderr)
    return result


def _outputs(args, result) -> None:
    try:
        if args.decrypted:
            n = result.decrypted_written
            print(f"wrote {counted(n, 'decrypted packet')} to {args.decrypted}", file=sys.stderr)
        if args.annotate:
            from ..replay.outputs import write_annotated

            n = write_annotated(args.capture, args.annotate, result)
            print(f"wrote {counted(n, 'annotated frame')} to {args.annotate}", file=sys.stderr)
        if args.plot:
            from ..replay.plot import write_plot

            write_plot(result, args.plot)
            print(f"wrote the timeline to {args.plot}", file=sys.stderr)
    except OSError as e:
        raise UserError(f"cannot write {e.filename or 'output'}: {e.strerror}") from None
