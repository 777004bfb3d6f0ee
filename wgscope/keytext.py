"""Keys as text, the format of `wg genkey` / `wg pubkey` / `wg genpsk`: 32 bytes, standard base64."""

from __future__ import annotations

import base64
import binascii

from .protocol.constants import KEY_SIZE
from .protocol.crypto import public_key
from .protocol.entropy import SYSTEM


class KeyFormatError(ValueError):
    pass


def encode(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode(text: str, what: str = "key") -> bytes:
    text = text.strip()
    if len(text) != 44 or not text.endswith("="):
        raise KeyFormatError(f"{what} must be 44 characters of base64 (32 bytes), got {len(text)} characters")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{what} is not valid base64") from None
    if len(raw) != KEY_SIZE:
        raise KeyFormatError(f"{what} must decode to 32 bytes, got {len(raw)}")
    return raw


def short(key: bytes) -> str:
    """The first 8 base64 characters, as dashboards and events name a peer."""
    return encode(key)[:8]


def genkey() -> str:
    return encode(SYSTEM.private_key())


def genpsk() -> str:
    return encode(SYSTEM.preshared_key())


def pubkey(private_text: str) -> str:
    return encode(public_key(decode(private_text, "private key")))
