"""`wgscope` command line: one module per subcommand in wgscope/commands/.

Errors a user can cause (bad arguments, files, permissions) end as one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .errors import UserError

# subcommand name -> module in wgscope.commands with register(subparsers) and run(args) -> int
COMMANDS = {
    "genkey": "keygen", "pubkey": "keygen", "genpsk": "keygen",
    "demo": "demo",
    "up": "up", "down": "up",
    "top": "top",
    "replay": "replay",
    "doctor": "doctor",
    "events-doc": "eventsdoc",
    "events": "events",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """All subcommands, or with `only` (a command's name) just that one's module: a command run
    does not pay for importing the others (the live node's, the lab's, the TUI's)."""
    parser = argparse.ArgumentParser(prog="wgscope", description="A userspace WireGuard node that shows its insides.")
    parser.add_argument("--version", action="version", version=f"wgscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [COMMANDS[only]] if only in COMMANDS else COMMANDS.values()
    for module_name in dict.fromkeys(modules):
        importlib.import_module(f"wgscope.commands.{module_name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # numpy (the live node's GSO split and trace writer, replay's columns) starts OpenBLAS's thread
    # pool on import: an idle thread per extra core and ~0.1 s of CPU for a pool no command uses (none
    # does linear algebra). Set before any command module is imported; a value the user set is kept.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args_in = sys.argv[1:] if argv is None else argv
    parser = build_parser(args_in[0] if args_in else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args.own_process = argv is None  # the process's own entry point, not a test's call (exit_now)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"wgscope {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except (OSError, ValueError) as e:
        # Files, sockets and parsing: say what failed in one line.
        print(f"wgscope {args.command}: {e.__class__.__name__}: {e}", file=sys.stderr)
        return 1


def exit_now(args, code: int) -> int:
    """End the process at once, its output flushed, when `args` came from the process's own entry
    point (else return `code`): a command holding a large analysis (replay: every datagram of a
    capture) would spend a tenth of a second more freeing it object by object at interpreter exit.
    For a command whose files are all written and closed when it calls this (no atexit work
    exists in wgscope). A stream that cannot be flushed takes the ordinary exit, which reports it."""
    if getattr(args, "own_process", False):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            return code
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
