"""`wgscope up CONFIG | NAME | --ifname NAME` and `wgscope down NAME`: run a live node.

    wgscope up wg0.conf                 TUN wg0 with the file's addresses, MTU and routes
    wgscope up wg0                      the same from /etc/wireguard/wg0.conf, as wg-quick finds it
    wgscope up --ifname wg1             a bare interface, like `wireguard-go wg1`: TUN + UAPI
                                        socket only, configured entirely with `wg`
    wgscope up ... --daemon             detach; return once the interface and socket are ready
    wgscope down wg0                    stop the node serving wg0 (SIGTERM; it removes the TUN)

For wg-quick itself, `wgscope-userspace NAME` (commands/userspace.py) is the userspace
implementation it starts. What `up` takes from a configuration: commands/upconfig.py; how the
node is built: commands/node.py; how it is served and found again: commands/serve.py.

Test-only (hidden): `--timer-scale S` or WGSCOPE_TIMER_SCALE=S runs the protocol clock the
core sees 1/S times faster, so every protocol timer is S times shorter (see runtime/live.py).
`--force-under-load` makes the node answer handshakes without a valid mac2 with cookie replies.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from ..errors import UserError
from . import node as nodebuild
from . import serve

CAP_NET_ADMIN = 12
NEED_ROOT = "creating a TUN interface needs root or CAP_NET_ADMIN (try: sudo wgscope up ...)"
pidfile = serve.pidfile  # where `wgscope down` finds a node (tests read it)


def register(sub) -> None:
    p = sub.add_parser("up", help="run a live WireGuard node (TUN + UDP + UAPI socket)",
                       description="Run a live WireGuard node from a wg-quick file (or the name of one in "
                                   "/etc/wireguard), or a bare interface configured with `wg` (like wireguard-go NAME).")
    p.add_argument("config", nargs="?", help="wg-quick configuration file, or NAME for /etc/wireguard/NAME.conf "
                                             "(omit for a bare interface)")
    p.add_argument("--ifname", help="interface name (default: the configuration file's name, e.g. wg0)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--foreground", action="store_true", help="stay in the foreground (the default)")
    mode.add_argument("--daemon", action="store_true",
                      help="detach; return once the interface and UAPI socket are ready")
    p.add_argument("--force-under-load", action="store_true",
                   help="act as if under handshake load: demand mac2, answer with cookie replies")
    p.add_argument("--tun-offload", action="store_true",
                   help="ask the kernel for TSO/checksum offload on the TUN: 64 KB TCP reads cut into packets "
                        "in userspace (on a 2-vCPU VM: more CPU at moderate load, a draw at full load; bench/README.md)")
    p.add_argument("--timer-scale", type=float, default=None, help=argparse.SUPPRESS)
    from ..sinks.setup import add_sink_arguments

    add_sink_arguments(p)
    p.set_defaults(func=up)

    d = sub.add_parser("down", help="stop the wgscope node serving an interface")
    d.add_argument("ifname", help="interface name")
    d.set_defaults(func=serve.down)


# ---------------------------------------------------------------- privileges
def has_net_admin() -> bool:
    if os.geteuid() == 0:
        return True
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("CapEff:"))
        return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def timer_scale(args) -> float:
    raw = args.timer_scale if args.timer_scale is not None else os.environ.get("WGSCOPE_TIMER_SCALE")
    if raw in (None, ""):
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        raise UserError(f"timer scale must be a number, got {raw!r}") from None
    if not 0 < scale <= 1000:
        raise UserError(f"timer scale must be in (0, 1000], got {scale}")
    return scale


# ---------------------------------------------------------------- up
def up(args) -> int:
    """Every refusal comes before anything is created; then build, then serve."""
    scale = timer_scale(args)
    plan = nodebuild.plan(args)
    if not has_net_admin():
        raise UserError(NEED_ROOT)
    serve.check_free(plan.name)
    start = nodebuild.Startup()

    def build():
        try:
            return nodebuild.build_node(args, plan, start, scale)
        except BaseException:
            start.close()
            raise

    if args.daemon:
        return serve.daemonize(build, lambda n: _summary(start, f"stop with `wgscope down {n.name}`"))
    node = build()

    def ready(n) -> None:
        print(_summary(start, f"stop with Ctrl-C or `wgscope down {n.name}`"), flush=True)

    reason = serve.serve(node, ready)
    print(f"wgscope: interface {node.name} down ({reason})", flush=True)
    return 0


def _summary(start, last: str) -> str:
    return "\n".join(start.summary + [f"  warning      {w}" for w in start.warnings] + [f"  {last}"])
