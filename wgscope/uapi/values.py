"""UAPI values: errors and the parsers of keys, numbers, endpoints and allowed IPs."""

from __future__ import annotations

import errno as E
import ipaddress
import re
import socket
from typing import Any

# Bounds. A line of the protocol is short (the longest legal one is an IPv6 endpoint with a
# zone); a set may be very large — `wg setconf` of 200k allowed IPs is ~6 MB — so a request is
# processed as it streams in and bounded at 64 MiB: about two million allowed IPs, which is
# already some hundreds of MB of Python objects.
MAX_LINE = 4096
MAX_REQUEST = 64 * 1024 * 1024

_UNSET: Any = object()


class UapiError(Exception):
    """A request refused with an errno.h number; `reason` says why (never a key)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _invalid(reason: str) -> UapiError:
    return UapiError(E.EINVAL, reason)


def _leading_name(text: str) -> str:
    """The leading word of a malformed line, for its error: what follows may be a key, never echoed."""
    return re.match(r"[A-Za-z_]{0,32}", text).group()


# ---------------------------------------------------------------- values
def parse_key(value: str, what: str) -> bytes:
    """A 32-byte key as 64 hex digits (WG-GO FromHex); the value is never echoed."""
    if len(value) != 64 or not value.isascii():
        raise _invalid(f"{what}: not 64 hex digits")
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise _invalid(f"{what}: not 64 hex digits") from None
    if len(key) != 32:
        raise _invalid(f"{what}: not 64 hex digits")
    return key


def parse_uint(value: str, what: str, bits: int) -> int:
    """Decimal digits only, as Go's strconv.ParseUint(value, 10, bits) takes them."""
    if not (value.isascii() and value.isdigit()) or int(value) >= 1 << bits:
        raise _invalid(f"{what}: {value[:40]!r} is not an integer 0..{(1 << bits) - 1}")
    return int(value)


def parse_true(value: str, what: str) -> None:
    if value != "true":
        raise _invalid(f"{what}: only 'true' is accepted, got {value[:40]!r}")


def parse_endpoint(value: str) -> tuple[str, int]:
    """`a.b.c.d:port` or `[v6(%zone)]:port` (WG-GO bind.ParseEndpoint); names are resolved by wg."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        want = 6
    else:
        host, sep, port = value.rpartition(":")
        want = 4
    if not sep or not host:
        raise _invalid(f"endpoint: {value[:80]!r} is not ADDRESS:PORT or [ADDRESS]:PORT")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise _invalid(f"endpoint: {host[:60]!r} is not an IP address") from None
    if addr.version != want:
        raise _invalid(f"endpoint: IPv6 addresses go in brackets, IPv4 ones do not ({value[:80]!r})")
    return str(addr), parse_uint(port, "endpoint port", 16)


def parse_allowed_ip(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """`address/cidr` (WG-GO netip.ParsePrefix); host bits are masked off as the trie does.

    inet_pton and the (int, prefixlen) constructor: a few times faster than ip_network(text),
    which matters for a setconf of hundreds of thousands of allowed IPs."""
    addr, sep, cidr = value.partition("/")
    if sep and cidr.isascii() and cidr.isdigit() and len(cidr) <= 3:
        plen = int(cidr)
        try:
            if ":" in addr:
                if plen <= 128:
                    n = int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big")
                    return ipaddress.IPv6Network((n >> (128 - plen) << (128 - plen), plen))
            elif plen <= 32:
                n = int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
                return ipaddress.IPv4Network((n >> (32 - plen) << (32 - plen), plen))
        except OSError:
            pass
    raise _invalid(f"allowed_ip: {value[:80]!r} is not ADDRESS/CIDR")
