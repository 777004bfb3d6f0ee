"""`wgscope replay CAPTURE`: re-execute each side whose key is known through the protocol core, observe
the rest, and explain what happened."""

from __future__ import annotations

import json
import sys

from ..errors import UserError
from ..events import DEBUG, INFO, EventBus

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
    p.add_argument("--events", metavar="FILE|-", help="write the replayed events as JSON lines")
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
    stream = None
    if args.events:
        from ..sinks.jsonlog import EventLogSink

        try:
            stream = sys.stdout if args.events == "-" else open(args.events, "w", encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot write events to {args.events}: {e.strerror}") from None
        bus.subscribe(EventLogSink(stream, fmt="json", node="replay"), level)

    def node_bus(name: str) -> EventBus:
        """A re-executed side writes the live node's events under the node's own name."""
        node = EventBus(INFO)
        if stream is not None:
            node.subscribe(EventLogSink(stream, fmt="json", node=name), level)
        return node
    try:
        result = _replay(args, bus, node_bus)
    except ReplayInputError as e:
        raise UserError(str(e)) from None
    finally:
        if stream is not None and stream is not sys.stdout:
            stream.close()
    _outputs(args, result)
    if args.json:
        json.dump(result.as_dict(), sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    elif args.events != "-":
        from ..replay import report

        report.render(result)
    return 0


def _replay(args, bus, node_bus):
    from ..replay.driver import load_keys, replay_capture
    from ..replay.driver import ReplayInputError
    import os

    if not os.path.isfile(args.capture):
        what = "is a directory, not a capture file" if os.path.isdir(args.capture) else "no such file"
        raise ReplayInputError(f"{args.capture}: {what}")
    ring = load_keys(args.capture, args.keylog, args.config)
    result = replay_capture(args.capture, bus=bus, annotate=bool(args.annotate), keep_decrypted=bool(args.decrypted),
                          keyring=ring, node_bus=node_bus)
    if ring.warnings:  # one line, after the replay succeeded (a failure is one line of its own)
        more = f" (and {len(ring.warnings) - 1} more)" if len(ring.warnings) > 1 else ""
        print(f"wgscope replay: warning: {ring.warnings[0]}{more}", file=sys.stderr)
    return result


def _outputs(args, result) -> None:
    try:
        if args.decrypted:
            from ..replay.outputs import write_decrypted

            n = write_decrypted(args.decrypted, result)
            print(f"wrote {n} decrypted packets to {args.decrypted}", file=sys.stderr)
        if args.annotate:
            from ..replay.outputs import write_annotated

            n = write_annotated(args.capture, args.annotate, result)
            print(f"wrote {n} annotated frames to {args.annotate}", file=sys.stderr)
        if args.plot:
            from ..replay.plot import write_plot

            write_plot(result, args.plot)
            print(f"wrote the timeline to {args.plot}", file=sys.stderr)
    except OSError as e:
        raise UserError(f"cannot write {e.filename or 'output'}: {e.strerror}") from None
