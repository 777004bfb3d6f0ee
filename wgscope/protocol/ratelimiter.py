"""Per-source rate limit on handshake messages while under load (WP §5.3).

A token bucket per source, as wireguard-go's ratelimiter/ratelimiter.go and the kernel's
ratelimiter.c: 20 packets per second with a burst of 5. IPv4 sources are keyed by address,
IPv6 sources by their /64 as the kernel does (ratelimiter.c masks the low 64 bits), so one
host cannot dodge the limit by cycling addresses in its own prefix. Idle entries are
collected after RATELIMIT_GC_INTERVAL.
"""

from __future__ import annotations

import functools
import ipaddress

from .constants import RATELIMIT_BURST, RATELIMIT_GC_INTERVAL, RATELIMIT_PACKETS_PER_SECOND

PACKET_COST = 1.0 / RATELIMIT_PACKETS_PER_SECOND
MAX_TOKENS = PACKET_COST * RATELIMIT_BURST


@functools.lru_cache(maxsize=4096)  # bounded: sources are the sender's choice; parsing one costs ~5 us
def source_key(host: str) -> bytes:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host.encode()
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        return mapped.packed if mapped is not None else ip.packed[:8]
    return ip.packed


def _refilled(entry: list, now: float) -> float:
    """A bucket's tokens at `now`: one per second since its last packet, up to MAX_TOKENS."""
    return min(MAX_TOKENS, entry[0] + (now - entry[1]))


class RateLimiter:
    def __init__(self) -> None:
        self._table: dict[bytes, list[float]] = {}  # key -> [tokens, last_time]
        self._last_gc = 0.0

    def allow(self, host: str, now: float) -> bool:
        if now - self._last_gc > RATELIMIT_GC_INTERVAL:
            self._gc(now)
        key = source_key(host)
        entry = self._table.get(key)
        if entry is None:
            self._table[key] = [MAX_TOKENS - PACKET_COST, now]
            return True
        tokens = _refilled(entry, now)
        entry[1] = now
        if tokens >= PACKET_COST:
            entry[0] = tokens - PACKET_COST
            return True
        entry[0] = tokens
        return False

    def would_allow(self, host: str, now: float) -> bool:
        """What allow(host, now) would answer, without spending a token (protocol/lookahead.py)."""
        entry = self._table.get(source_key(host))
        return entry is None or _refilled(entry, now) >= PACKET_COST

    def _gc(self, now: float) -> None:
        self._last_gc = now
        stale = [k for k, (_, last) in self._table.items() if now - last > RATELIMIT_GC_INTERVAL]
        for k in stale:
            del self._table[k]

    def __len__(self) -> int:
        return len(self._table)
