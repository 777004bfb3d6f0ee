"""`wgscope top [NAME]`: the live dashboard, attached to a running node's control socket."""

from __future__ import annotations

import sys

from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("top", help="live dashboard of a running node (wgscope up, or the lab of wgscope demo --tui)",
                       description="Attach to a running node's control socket and show its peers, sessions, timers, "
                                   "counters and events as they change. Keys: q quit, space pause, enter or d peer "
                                   "detail (x there: the handshake x-ray; escape back), p this peer's events, "
                                   "/ filter event kinds, c clear the events, t timer and per-packet events, "
                                   "w UTC or protocol clock.")
    p.add_argument("name", nargs="?", help="the node's interface name (or a socket path); "
                                           "optional when exactly one node is running")
    p.add_argument("--socket-dir", help="where control sockets live (default: /run/wgscope as root, else "
                                        "$XDG_RUNTIME_DIR/wgscope or /tmp/wgscope-UID)")
    p.add_argument("--retry", type=float, default=1.0, help="seconds between reconnection attempts (default 1)")
    p.add_argument("--capture", metavar="FILE.pcapng", help="the node's --capture file: it carries the session "
                   "keys, so the handshake x-ray (x in a peer's detail) shows real values")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..tui import client

    try:
        path = client.resolve(args.name, args.socket_dir)
    except client.NodeGone as e:
        raise UserError(str(e)) from None
    except ValueError as e:  # an invalid node name
        raise UserError(str(e)) from None
    if not path.exists():
        raise UserError(f"no node named {args.name!r} is running (no control socket at {path})")
    if not sys.stdout.isatty():
        raise UserError("the dashboard needs a terminal")
    from ..tui.app import TopApp

    TopApp(path, retry=max(0.1, args.retry), capture=args.capture).run()
    return 0
