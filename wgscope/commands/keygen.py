"""`wgscope genkey | pubkey | genpsk`: the same text formats as `wg genkey | pubkey | genpsk`."""

from __future__ import annotations

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


def genkey(args) -> int:
    print(keytext.genkey())
    return 0


def genpsk(args) -> int:
    print(keytext.genpsk())
    return 0


def pubkey(args) -> int:
    try:
        print(keytext.pubkey(sys.stdin.read()))
    except keytext.KeyFormatError as e:
        raise UserError(str(e)) from None
    return 0
