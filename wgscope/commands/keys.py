"""`wgscope genkey | pubkey | genpsk`: the same text formats as `wg genkey | pubkey | genpsk`."""

from __future__ import annotations

import os
import sys

from .. import keys
from ..errors import UserError


def register(sub) -> None:
    p = sub.add_parser("genkey", help="print a new private key (like wg genkey)")
    p.set_defaults(func=genkey)
    p = sub.add_parser("pubkey", help="read a private key on stdin, print its public key (like wg pubkey)")
    p.set_defaults(func=pubkey)
    p = sub.add_parser("genpsk", help="print a new pre-shared key (like wg genpsk)")
    p.set_defaults(func=genpsk)


def genkey(args) -> int:
    print(keys.genkey())
    return 0


def genpsk(args) -> int:
    print(keys.encode(os.urandom(32)))
    return 0


def pubkey(args) -> int:
    try:
        print(keys.pubkey(sys.stdin.read()))
    except keys.KeyFormatError as e:
        raise UserError(str(e)) from None
    return 0
