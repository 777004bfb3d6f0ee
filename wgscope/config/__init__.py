"""WireGuard configuration files: the wg-quick format and its `wg setconf` subset.

    [Interface]                    [Peer]
    PrivateKey = <base64>          # Name = laptop        (a common convention; kept as PeerConfig.name)
    ListenPort = 51820             PublicKey = <base64>
    FwMark = 0x1234                PresharedKey = <base64>
    Address = 10.0.0.1/24, fd00::1/64    AllowedIPs = 10.0.0.2/32, fd00::2/128
    MTU = 1420                     Endpoint = [2001:db8::1]:51820
    DNS / Table / PreUp / PostUp / PreDown / PostDown / SaveConfig   PersistentKeepalive = 25

Parsing follows wg(8) and wg-quick(8): section and key names are case-insensitive, a `#`
starts a comment anywhere on a line, AllowedIPs/Address/DNS/Pre*/Post* accumulate over
several lines, AllowedIPs with host bits set are masked. It is stricter than wg where
strictness finds mistakes: unknown keys and sections, repeated singular keys and repeated
peers are errors, and every error is one line, "FILE:LINE: what is wrong".

Error messages never carry key material: key values are not echoed, and any other value
that is echoed has long base64-looking runs redacted (a key pasted into the wrong field).
"""

from __future__ import annotations

import os
import socket
import stat

from .. import keytext as _keys
from ..protocol.endpoint import endpoint_text
from .model import (
    MAX_MTU, MIN_IPV6_MTU, MIN_MTU, ConfigError, EndpointError, InterfaceConfig, PeerConfig, WireGuardConfig,
)
from .parser import _Parser

__all__ = [
    "ConfigError",
    "EndpointError",
    "InterfaceConfig",
    "PeerConfig",
    "WireGuardConfig",
    "load",
    "parse",
    "parse_setconf",
    "resolve_address",
    "resolve_endpoint",
    "to_setconf_text",
    "MIN_MTU",
    "MIN_IPV6_MTU",
    "MAX_MTU",
]


# ---------------------------------------------------------------- public API


def parse(text: str, path: str = "<string>", *, setconf: bool = False) -> WireGuardConfig:
    """Parse wg-quick text (or, with setconf=True, only the `wg setconf` subset)."""
    return _Parser(text, str(path), setconf).run()


def parse_setconf(text: str, path: str = "<string>") -> WireGuardConfig:
    """Parse `wg setconf` text: like parse(), but wg-quick keys (Address, DNS, MTU, ...) are errors."""
    return parse(text, path, setconf=True)


def load(path: str | os.PathLike, *, setconf: bool = False) -> WireGuardConfig:
    """Read and parse a configuration file; an unreadable file is a ConfigError too."""
    shown = os.fspath(path)
    shown = shown.decode(errors="replace") if isinstance(shown, bytes) else shown
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror or e}", shown) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError("cannot read: not UTF-8 text", shown, line) from None
    cfg = parse(text, shown, setconf=setconf)
    if cfg.interface.private_key is not None and stat.S_ISREG(st.st_mode) and st.st_mode & 0o007:
        # the same check wg-quick makes
        cfg.warnings.insert(0, f"{shown}: holds a PrivateKey and is accessible to other users; chmod 600 it")
    return cfg


def resolve_endpoint(host: str, port: int, *, path: str | None = None,
                     line: int | None = None) -> tuple[str, int]:
    """Resolve an endpoint host to (ip, port), preferring IPv4 unless the host only has IPv6.

    Raises EndpointError; pass path/line (e.g. peer.lines["Endpoint"]) to have the message
    point at the configuration line.
    """
    return resolve_address(host, port, path=path, line=line)[1][0], port


def resolve_address(host: str, port: int, *, path: str | None = None,
                    line: int | None = None) -> tuple[int, tuple]:
    """(address family, socket address) of an endpoint host, chosen as resolve_endpoint chooses
    (IPv4 first, as wg-quick); the socket address keeps an IPv6 scope id, for a socket to connect
    to (doctor's probe). Raises EndpointError like resolve_endpoint."""
    shown = endpoint_text((host, port))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP)
    except (socket.gaierror, UnicodeError, OSError) as e:
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise EndpointError(f"Endpoint: cannot resolve {shown}: {reason}", path, line, host, port) from None
    v4 = [i for i in infos if i[0] == socket.AF_INET]
    v6 = [i for i in infos if i[0] == socket.AF_INET6]
    chosen = (v4 or v6)
    if not chosen:
        raise EndpointError(f"Endpoint: {shown} has no IPv4 or IPv6 address", path, line, host, port)
    return chosen[0][0], chosen[0][4]


def to_setconf_text(cfg: WireGuardConfig) -> str:
    """The `wg setconf` subset (no Address/DNS/MTU/...), keys re-encoded; peer names kept as comments."""
    ic = cfg.interface
    out = ["[Interface]"]
    if ic.private_key is not None:
        out.append(f"PrivateKey = {_keys.encode(ic.private_key)}")
    if ic.listen_port is not None:
        out.append(f"ListenPort = {ic.listen_port}")
    if ic.fwmark is not None:
        out.append(f"FwMark = {ic.fwmark}")
    for p in cfg.peers:
        out.append("")
        if p.name:
            out.append(f"# Name = {p.name}")
        out.append("[Peer]")
        out.append(f"PublicKey = {_keys.encode(p.public_key)}")
        if p.preshared_key is not None:
            out.append(f"PresharedKey = {_keys.encode(p.preshared_key)}")
        if p.allowed_ips:
            out.append("AllowedIPs = " + ", ".join(str(n) for n in p.allowed_ips))
        if p.endpoint is not None:
            out.append(f"Endpoint = {endpoint_text(p.endpoint)}")
        if p.persistent_keepalive:
            out.append(f"PersistentKeepalive = {p.persistent_keepalive}")
    return "\n".join(out) + "\n"
