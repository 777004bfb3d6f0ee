"""The parsed configuration: its records and its errors (wgscope.config parses into these)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Union

from .. import keytext as _keys

IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

MIN_MTU = 576  # RFC 791: every IPv4 host must accept 576-byte datagrams
MIN_IPV6_MTU = 1280  # RFC 8200 §5
MAX_MTU = 65535


# ---------------------------------------------------------------- errors


class ConfigError(ValueError):
    """A configuration problem, rendered as one line: "wg0.conf:12: PublicKey: ...".

    `path`, `line` (1-based, or None when the problem is the file itself) and `message`
    are kept separately for callers that want them.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"

    def __str__(self) -> str:
        return self._render()


class EndpointError(ConfigError):
    """An endpoint host name that does not resolve (see resolve_endpoint)."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 host: str | None = None, port: int | None = None):
        self.host = host
        self.port = port
        super().__init__(message, path, line)


# ---------------------------------------------------------------- data


@dataclass
class InterfaceConfig:
    private_key: bytes | None = None
    listen_port: int | None = None  # 0 = pick a random port
    addresses: list[IPInterface] = field(default_factory=list)
    mtu: int | None = None
    dns: list[str] = field(default_factory=list)
    fwmark: int | None = None  # None = not set; 0 = "off"
    table: str | None = None
    pre_up: list[str] = field(default_factory=list)
    post_up: list[str] = field(default_factory=list)
    pre_down: list[str] = field(default_factory=list)
    post_down: list[str] = field(default_factory=list)
    save_config: bool = False
    line: int = field(default=0, compare=False)  # line of the [Interface] header
    # canonical key name -> line it was (first) set on, for messages about it later
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:  # never print the private key
        pk = "<set>" if self.private_key is not None else None
        return (f"InterfaceConfig(private_key={pk}, listen_port={self.listen_port!r}, "
                f"addresses={[str(a) for a in self.addresses]!r}, mtu={self.mtu!r}, fwmark={self.fwmark!r})")


@dataclass
class PeerConfig:
    public_key: bytes
    preshared_key: bytes | None = None
    allowed_ips: list[IPNetwork] = field(default_factory=list)
    endpoint: tuple[str, int] | None = None  # host as written (IPv6 without brackets)
    persistent_keepalive: int = 0  # seconds, 0 = off
    name: str | None = None
    line: int = 0  # line of the [Peer] header
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:  # public keys are fine to show, the PSK is not
        key = _keys.encode(self.public_key) if len(self.public_key) == 32 else "<unset>"
        psk = "<set>" if self.preshared_key is not None else None
        return (f"PeerConfig(public_key={key!r}, preshared_key={psk}, "
                f"allowed_ips={[str(n) for n in self.allowed_ips]!r}, endpoint={self.endpoint!r}, "
                f"persistent_keepalive={self.persistent_keepalive!r}, name={self.name!r}, line={self.line!r})")


@dataclass
class WireGuardConfig:
    path: str
    interface: InterfaceConfig
    peers: list[PeerConfig] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
