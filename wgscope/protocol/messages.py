"""The four WireGuard messages (WP §5.4.2–5.4.6): strict parsing and packing.

Every message starts with a one-byte type and three reserved zero bytes; all integers are
little-endian. A datagram that is not exactly one well-formed message raises
MessageError with a stable `reason` string, never an IndexError.
"""

from __future__ import annotations

import struct
from functools import partial
from operator import itemgetter
from typing import NamedTuple

from .constants import (
    COOKIE_REPLY_SIZE, INITIATION_SIZE, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE,
    MESSAGE_TRANSPORT, RESPONSE_SIZE, TRANSPORT_HEADER_SIZE, TRANSPORT_MIN_SIZE,
)

KIND_NAMES = {
    MESSAGE_INITIATION: "initiation",
    MESSAGE_RESPONSE: "response",
    MESSAGE_COOKIE_REPLY: "cookie_reply",
    MESSAGE_TRANSPORT: "transport",
}


class MessageError(ValueError):
    """A datagram that is not a valid WireGuard message. `reason` is a stable token."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Initiation(NamedTuple):
    sender: int
    ephemeral: bytes  # 32
    encrypted_static: bytes  # 32 + 16
    encrypted_timestamp: bytes  # 12 + 16
    mac1: bytes
    mac2: bytes


class Response(NamedTuple):
    sender: int
    receiver: int
    ephemeral: bytes
    encrypted_nothing: bytes  # 0 + 16
    mac1: bytes
    mac2: bytes


class CookieReply(NamedTuple):
    receiver: int
    nonce: bytes  # 24
    encrypted_cookie: bytes  # 16 + 16


class TransportHeader(NamedTuple):
    receiver: int
    counter: int


_initiation = struct.Struct("<B3xI32s48s28s16s16s")
_response = struct.Struct("<B3xII32s16s16s16s")
_cookie = struct.Struct("<B3xI24s32s")
_transport = struct.Struct("<B3xIQ")
_head = struct.Struct("<I")  # type + reserved, as one little-endian word
head_word = _head.unpack_from  # (word,): exactly MESSAGE_TRANSPORT for a transport message
transport_fields = struct.Struct("<4xIQ").unpack_from  # (receiver index, counter), no tuple type on the hot path
transport_sealed = itemgetter(slice(TRANSPORT_HEADER_SIZE, None))  # a transport message's ciphertext and tag
_first_index = struct.Struct("<4xI").unpack_from


def first_index(data: bytes) -> int:
    """The index every message carries first (bytes 4-8): the sender's in an initiation and a
    response, the receiver's in a cookie reply and transport data."""
    return _first_index(data)[0]

assert _initiation.size == INITIATION_SIZE and _response.size == RESPONSE_SIZE
assert _cookie.size == COOKIE_REPLY_SIZE and _transport.size == TRANSPORT_HEADER_SIZE

_EXACT = {MESSAGE_INITIATION: INITIATION_SIZE, MESSAGE_RESPONSE: RESPONSE_SIZE, MESSAGE_COOKIE_REPLY: COOKIE_REPLY_SIZE}


def message_type(data: bytes) -> int:
    """Validate the 4-byte header and length; return the message type."""
    if len(data) < 4:
        raise MessageError("truncated", f"{len(data)} bytes is shorter than a message header")
    word = head_word(data)[0]
    kind = word & 0xFF
    if kind not in KIND_NAMES:
        raise MessageError("unknown_type", f"message type {kind} is not 1-4")
    if word >> 8:
        raise MessageError("reserved_nonzero", f"reserved bytes of a {KIND_NAMES[kind]} are not zero")
    if kind == MESSAGE_TRANSPORT:
        if len(data) < TRANSPORT_MIN_SIZE:
            raise MessageError("truncated", f"transport message of {len(data)} bytes, minimum {TRANSPORT_MIN_SIZE}")
    else:
        want = _EXACT[kind]
        if len(data) != want:
            reason = "truncated" if len(data) < want else "oversized"
            raise MessageError(reason, f"{KIND_NAMES[kind]} of {len(data)} bytes, must be {want}")
    return kind


def parse_initiation(data: bytes) -> Initiation:
    return Initiation(*_initiation.unpack(data)[1:])


def parse_response(data: bytes) -> Response:
    return Response(*_response.unpack(data)[1:])


def parse_cookie_reply(data: bytes) -> CookieReply:
    return CookieReply(*_cookie.unpack(data)[1:])


def parse_transport_header(data: bytes) -> TransportHeader:
    return TransportHeader(*transport_fields(data))


def parse(data: bytes):
    """Parse any message; transport returns (TransportHeader, encrypted payload)."""
    kind = message_type(data)
    if kind == MESSAGE_INITIATION:
        return parse_initiation(data)
    if kind == MESSAGE_RESPONSE:
        return parse_response(data)
    if kind == MESSAGE_COOKIE_REPLY:
        return parse_cookie_reply(data)
    return parse_transport_header(data), data[TRANSPORT_HEADER_SIZE:]


def pack_initiation(m: Initiation) -> bytes:
    return _initiation.pack(MESSAGE_INITIATION, *m)


def pack_response(m: Response) -> bytes:
    return _response.pack(MESSAGE_RESPONSE, *m)


def pack_cookie_reply(m: CookieReply) -> bytes:
    return _cookie.pack(MESSAGE_COOKIE_REPLY, *m)


pack_transport_header = partial(_transport.pack, MESSAGE_TRANSPORT)
"""pack_transport_header(receiver, counter): the 16-byte header of a transport message."""


def kind_name(data: bytes) -> str:
    """Best-effort name for a datagram's first byte, for drop events on invalid input."""
    return KIND_NAMES.get(data[0], "unknown") if data else "empty"
