"""`wgscope-userspace [-f|--foreground] INTERFACE-NAME`: wgscope as wireguard-go is called.

wg-quick(8), finding no WireGuard kernel module, runs
`"${WG_QUICK_USERSPACE_IMPLEMENTATION:-wireguard-go}" "$INTERFACE"` and then configures the
interface itself (`wg setconf` over the UAPI socket, `ip` for addresses, MTU, routes, DNS, hooks).
This command takes the same arguments and environment as wireguard-go (main.go): it creates a bare
interface and its UAPI socket, detaches, and exits 0 once both are ready; `-f`/`--foreground` or
WG_PROCESS_FOREGROUND=1 keep it in the foreground. So, without a wrapper:

    WG_QUICK_USERSPACE_IMPLEMENTATION=wgscope-userspace wg-quick up wg0

It is `wgscope up --ifname NAME --daemon` underneath; errors are one line on stderr, exit 1.
"""

from __future__ import annotations

import os
import sys

USAGE = "usage: wgscope-userspace [-f/--foreground] INTERFACE-NAME"


def argv_for_up(argv: list[str], environ=os.environ) -> list[str] | None:
    """The `wgscope up` arguments for wireguard-go's; None when they make no sense."""
    foreground = environ.get("WG_PROCESS_FOREGROUND") == "1"
    names = []
    for arg in argv:
        if arg in ("-f", "--foreground"):
            foreground = True
        elif arg.startswith("-") and arg != "-":
            return None
        else:
            names.append(arg)
    if len(names) != 1:
        return None
    return ["up", "--ifname", names[0], "--foreground" if foreground else "--daemon"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--version"], ["-v"]):
        from .. import __version__

        print(f"wgscope-userspace {__version__} (wgscope, a userspace WireGuard implementation)")
        return 0
    up_argv = argv_for_up(argv)
    if up_argv is None:
        print(USAGE, file=sys.stderr)
        return 2
    from ..cli import main as wgscope_main

    return wgscope_main(up_argv)


if __name__ == "__main__":
    sys.exit(main())
