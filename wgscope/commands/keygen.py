"""`wgscope genkey | pubkey | genpsk`: the same text formats as `wg genkey | pubkey | genpsk`."""

from __future__ import annotations

import os
import stat
import sys

from .. import keytext
from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("genkey", help="print a new private key (like wg genkey)")
    p.set_defaults(func=genkey)
    p = sub.add_parser("pubkey", help="read a private key on stdin, print its public key (like wg pubkey)")
    p.set_defaults(func=pubkey)
    p = sub.add_parser("genpsk", help="print a new pre-shared key (like wg genpsk)")
    p.set_defaults(func=genpsk)


WORLD_ACCESSIBLE = "Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again."


def warn_if_world_accessible() -> None:
    """wg genkey's check (wireguard-tools genkey.c): a key written to a regular file that other
    users may read, write or run gets the same two-line warning on stderr."""
    try:
        st = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor behind stdout
        return
    if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IRWXO:
        print(WORLD_ACCESSIBLE, file=sys.stderr)


def genkey(args) -> int:
    warn_if_world_accessible()
    print(keytext.genkey())
    return 0


def genpsk(args) -> int:
    warn_if_world_accessible()
    print(keytext.genpsk())
    return 0


def pubkey(args) -> int:
    try:
        print(keytext.pubkey(sys.stdin.read()))
    except keytext.KeyFormatError as e:
        raise UserError(str(e)) from None
    return 0
