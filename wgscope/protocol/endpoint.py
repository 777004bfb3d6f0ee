"""How an endpoint (host, port) is written: the one place for it."""

from __future__ import annotations


def endpoint_text(endpoint: tuple | None, unknown: str | None = None) -> str | None:
    """host:port as wg(8) prints it: IPv6 in brackets ([2001:db8::1]:51820, a scope kept inside
    them), an IPv4-mapped IPv6 address from a dual-stack socket as the IPv4 address; `unknown`
    for no endpoint."""
    if endpoint is None:
        return unknown
    host, port = endpoint[0], endpoint[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
