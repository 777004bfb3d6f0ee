"""TAI64N timestamps as WireGuard uses them (WP §5.4.2; WG-GO tai64n/tai64n.go).

12 bytes big-endian: seconds since 1970 plus 2^62 + 10 (TAI label with a fixed offset),
then nanoseconds. Like wireguard-go, the nanoseconds are rounded down to a multiple of
2^24 ns (~16.8 ms) so the timestamp does not leak a fine-grained clock.
"""

from __future__ import annotations

import struct

TAI64_BASE = (1 << 62) + 10  # WG-GO tai64n.go: base = 0x400000000000000a
WHITENER_MASK = (1 << 24) - 1  # WG-GO tai64n.go: whitenerMask = 0x1000000 - 1
_pack = struct.Struct(">QI")
SIZE = _pack.size  # 12 bytes: WP §5.4.2 msg.timestamp's plaintext


def stamp(wall_time: float) -> bytes:
    secs = int(wall_time)
    nanos = int((wall_time - secs) * 1e9)
    return _pack.pack(TAI64_BASE + secs, nanos & ~WHITENER_MASK)


def unstamp(ts: bytes) -> float:
    secs, nanos = _pack.unpack(ts)
    return secs - TAI64_BASE + nanos / 1e9


def after(a: bytes, b: bytes) -> bool:
    """True when timestamp a is strictly later than b (big-endian compares as bytes)."""
    return a > b
