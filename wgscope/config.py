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

import ipaddress
import os
import re
import socket
import stat
from dataclasses import dataclass, field
from typing import Union

from . import keytext as _keys
from .protocol.crypto import public_key as _public_key

__all__ = [
    "ConfigError",
    "EndpointError",
    "InterfaceConfig",
    "PeerConfig",
    "WireGuardConfig",
    "load",
    "parse",
    "parse_setconf",
    "resolve_endpoint",
    "to_setconf_text",
    "MIN_MTU",
    "MIN_IPV6_MTU",
]

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


# ---------------------------------------------------------------- key tables

# lower-case name -> canonical spelling
_INTERFACE_KEYS = {k.lower(): k for k in (
    "PrivateKey", "ListenPort", "FwMark",
    "Address", "MTU", "DNS", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig",
)}
_PEER_KEYS = {k.lower(): k for k in (
    "PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive",
)}
# keys wg-quick handles itself and `wg setconf` rejects
_WG_QUICK_ONLY = {"address", "mtu", "dns", "table", "preup", "postup", "predown", "postdown", "saveconfig"}
# stored, but wgscope does nothing with them
_IGNORED = {"dns", "table", "preup", "postup", "predown", "postdown", "saveconfig"}
# keys that may appear once per section; the others accumulate
_SINGULAR = {"privatekey", "listenport", "fwmark", "mtu", "table", "saveconfig",
             "publickey", "presharedkey", "endpoint", "persistentkeepalive"}

_NAME_COMMENT = re.compile(r"^#\s*name\s*[=:]\s*(.*?)\s*$", re.IGNORECASE)
_PLAIN_KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{20,}={0,2}")
_DIGITS = re.compile(r"^[0-9]+$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[^\s:/\[\]@#=,]+$")


def _show(value: str) -> str:
    """A value quoted for an error message, with anything key-like redacted."""
    shown = _BASE64_RUN.sub("<redacted>", value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return repr(shown)


def _show_key_name(name: str) -> str:
    """A key name for an error message — unless it could be key material (a pasted key)."""
    return repr(name) if _PLAIN_KEY_NAME.match(name) else "(name not shown)"


# ---------------------------------------------------------------- value parsers
# Each raises _ValueProblem(message) with the message *without* location; the parser adds it.


class _ValueProblem(Exception):
    pass


def _parse_key(value: str, canon: str) -> bytes:
    try:
        return _keys.decode(value, canon)
    except _keys.KeyFormatError as e:
        # keys.decode's messages name the field and a length, never the text
        msg = str(e)
        if msg.startswith(canon + " "):
            msg = canon + ": " + msg[len(canon) + 1:]
        raise _ValueProblem(msg) from None


def _parse_uint(value: str, canon: str, lo: int, hi: int, what: str = "a number") -> int:
    if not _DIGITS.match(value):
        raise _ValueProblem(f"{canon}: must be {what} {lo}..{hi}, got {_show(value)}")
    n = int(value)
    if not lo <= n <= hi:
        raise _ValueProblem(f"{canon}: must be {what} {lo}..{hi}, got {n}")
    return n


def _parse_fwmark(value: str) -> int:
    if value.lower() == "off":
        return 0
    if re.match(r"^0[xX][0-9a-fA-F]+$", value):
        n = int(value, 16)
    elif _DIGITS.match(value):
        n = int(value)
    else:
        raise _ValueProblem(f"FwMark: must be a number (decimal or 0x hex) or 'off', got {_show(value)}")
    if n > 0xFFFFFFFF:
        raise _ValueProblem("FwMark: must fit in 32 bits")
    return n


def _parse_keepalive(value: str) -> int:
    if value.lower() == "off":
        return 0
    return _parse_uint(value, "PersistentKeepalive", 0, 65535, "seconds")


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _parse_address(item: str) -> IPInterface:
    try:
        return ipaddress.ip_interface(item)
    except ValueError:
        raise _ValueProblem(f"Address: {_show(item)} is not an IP address with a prefix, like 10.0.0.1/24") from None


def _parse_allowed_ip(item: str) -> tuple[IPNetwork, bool]:
    """The network, and whether host bits had to be masked off."""
    try:
        net = ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise _ValueProblem(f"AllowedIPs: {_show(item)} is not an IP network, like 10.0.0.0/24") from None
    masked = "/" in item and ipaddress.ip_interface(item).ip != net.network_address
    return net, masked


def _parse_endpoint(value: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port`; the host is kept as written, without brackets."""
    example = "like 192.0.2.1:51820, [2001:db8::1]:51820 or vpn.example.com:51820"
    if value.startswith("["):
        close = value.find("]")
        if close < 0:
            raise _ValueProblem(f"Endpoint: {_show(value)} has '[' without ']'")
        host, rest = value[1:close], value[close + 1:]
        if not rest.startswith(":"):
            raise _ValueProblem(f"Endpoint: {_show(value)} needs a port after ']', {example}")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            if not _HOSTNAME.match(host):
                raise _ValueProblem(f"Endpoint: {_show(host)} inside brackets is not an IPv6 address") from None
    else:
        if ":" not in value:
            raise _ValueProblem(f"Endpoint: {_show(value)} has no port, {example}")
        host, port_text = value.rsplit(":", 1)
        if ":" in host:
            raise _ValueProblem("Endpoint: IPv6 addresses need brackets, like [2001:db8::1]:51820")
        if not host:
            raise _ValueProblem(f"Endpoint: {_show(value)} has no host, {example}")
        if not _HOSTNAME.match(host):
            raise _ValueProblem(f"Endpoint: {_show(host)} is not a host name or IP address")
    if not port_text:
        raise _ValueProblem(f"Endpoint: {_show(value)} has no port, {example}")
    port = _parse_uint(port_text, "Endpoint", 1, 65535, "a port")
    return host, port


def _parse_bool(value: str, canon: str) -> bool:
    v = value.lower()
    if v == "true":
        return True
    if v == "false":
        return False
    raise _ValueProblem(f"{canon}: must be true or false, got {_show(value)}")


# ---------------------------------------------------------------- the parser


class _Parser:
    def __init__(self, text: str, path: str, setconf: bool):
        self.text = text
        self.path = path
        self.setconf = setconf
        self.warnings: list[tuple[int, str]] = []
        self.interface: InterfaceConfig | None = None
        self.peers: list[PeerConfig] = []
        self.section: str | None = None  # "interface" | "peer"
        self.peer: PeerConfig | None = None
        self.seen: dict[str, int] = {}  # singular keys in the current section -> line
        self.peer_by_key: dict[bytes, PeerConfig] = {}
        self.pending_names: list[tuple[str, int]] = []
        self.warned_ignored: set[str] = set()
        self.network_owner: dict[IPNetwork, PeerConfig] = {}

    # -- helpers
    def error(self, line: int | None, message: str) -> ConfigError:
        return ConfigError(message, self.path, line)

    def warn(self, line: int | None, message: str) -> None:
        loc = f"{self.path}:{line}" if line else self.path
        self.warnings.append((line or 0, f"{loc}: {message}"))

    def flush_names(self, target: PeerConfig | None) -> None:
        for name, line in self.pending_names:
            if target is None:
                continue  # a Name comment outside any [Peer]: not ours to interpret
            if target.name is None:
                target.name = name
                target.lines["Name"] = line
            elif target.name != name:
                self.warn(line, f"Name: the peer on line {target.line} is already named "
                                f"{target.name!r} (line {target.lines.get('Name')}); ignoring {name!r}")
        self.pending_names.clear()

    # -- driver
    def run(self) -> WireGuardConfig:
        lines = self.text.split("\n")
        for lineno, raw in enumerate(lines, 1):
            raw = raw.rstrip("\r")
            if lineno == 1:
                raw = raw.lstrip("\ufeff")
            stripped = raw.strip()
            if not stripped:
                self.flush_names(self.peer)  # a blank line ends "directly above"
                continue
            if stripped.startswith("#"):
                m = _NAME_COMMENT.match(stripped)
                if m and m.group(1):
                    self.pending_names.append((m.group(1), lineno))
                continue
            content = stripped.split("#", 1)[0].strip()
            if content.startswith("["):
                self.header(content, lineno)
            else:
                self.flush_names(self.peer)
                self.key_value(content, lineno)
        self.flush_names(self.peer)
        self.end_section()
        return self.finish()

    def header(self, content: str, lineno: int) -> None:
        if not content.endswith("]"):
            raise self.error(lineno, "malformed section header; expected [Interface] or [Peer]")
        name = re.sub(r"\s+", "", content[1:-1])
        lname = name.lower()
        if lname not in ("interface", "peer"):
            shown = f"[{name}]" if _PLAIN_KEY_NAME.match(name) else "section"
            raise self.error(lineno, f"unknown section {shown}; expected [Interface] or [Peer]")
        if lname == "interface":
            self.flush_names(self.peer)  # names directly above [Interface] belong to the peer before it
        self.end_section()
        self.seen = {}
        if lname == "interface":
            if self.interface is not None:
                raise self.error(lineno, f"[Interface]: a second [Interface] section "
                                         f"(the first is on line {self.interface.line})")
            self.interface = InterfaceConfig(line=lineno)
            self.section, self.peer = "interface", None
        else:
            self.peer = PeerConfig(public_key=b"", line=lineno)
            self.section = "peer"
            self.flush_names(self.peer)  # comments directly above the header name this peer

    def end_section(self) -> None:
        if self.section == "peer" and self.peer is not None:
            if not self.peer.public_key:
                raise self.error(self.peer.line, "[Peer] has no PublicKey")
            self.peers.append(self.peer)
        self.section, self.peer = None, None

    def key_value(self, content: str, lineno: int) -> None:
        if "=" not in content:
            raise self.error(lineno, "expected 'Key = Value'")
        key, value = content.split("=", 1)
        key = re.sub(r"\s+", "", key)
        value = value.strip()
        if not key:
            raise self.error(lineno, "expected 'Key = Value', found no key before '='")
        lkey = key.lower()
        if self.section is None:
            if lkey in _INTERFACE_KEYS or lkey in _PEER_KEYS:
                canon = _INTERFACE_KEYS.get(lkey) or _PEER_KEYS[lkey]
                where = "[Interface]" if lkey in _INTERFACE_KEYS else "[Peer]"
                raise self.error(lineno, f"{canon}: outside any section; put it under {where}")
            raise self.error(lineno, f"unknown key {_show_key_name(key)} outside any section")
        table, other, here, there = (
            (_INTERFACE_KEYS, _PEER_KEYS, "[Interface]", "[Peer]") if self.section == "interface"
            else (_PEER_KEYS, _INTERFACE_KEYS, "[Peer]", "[Interface]"))
        if lkey not in table:
            if lkey in other:
                raise self.error(lineno, f"{other[lkey]}: not valid in {here}; it belongs in {there}")
            raise self.error(lineno, f"unknown key {_show_key_name(key)} in {here}")
        canon = table[lkey]
        if self.setconf and lkey in _WG_QUICK_ONLY:
            raise self.error(lineno, f"{canon}: a wg-quick key, which `wg setconf` does not accept")
        if lkey in _SINGULAR:
            if lkey in self.seen:
                raise self.error(lineno, f"{canon}: set twice in this section (first on line {self.seen[lkey]})")
            self.seen[lkey] = lineno
        try:
            if self.section == "interface":
                self.interface_key(lkey, canon, value, lineno)
            else:
                self.peer_key(lkey, canon, value, lineno)
        except _ValueProblem as e:
            raise self.error(lineno, str(e)) from None

    def interface_key(self, lkey: str, canon: str, value: str, lineno: int) -> None:
        ic = self.interface
        assert ic is not None
        ic.lines.setdefault(canon, lineno)
        if lkey in _IGNORED and lkey not in self.warned_ignored:
            self.warned_ignored.add(lkey)
            self.warn(lineno, f"{canon} is wg-quick's and is ignored by wgscope")
        if lkey not in ("address", "dns", "preup", "postup", "predown", "postdown") and not value:
            raise _ValueProblem(f"{canon}: empty value")
        if lkey == "privatekey":
            ic.private_key = _parse_key(value, canon)
        elif lkey == "listenport":
            ic.listen_port = _parse_uint(value, canon, 0, 65535, "a port")
        elif lkey == "fwmark":
            ic.fwmark = _parse_fwmark(value)
        elif lkey == "address":
            ic.addresses.extend(_parse_address(item) for item in _split_list(value))
        elif lkey == "mtu":
            ic.mtu = _parse_uint(value, canon, MIN_MTU, MAX_MTU)
        elif lkey == "dns":
            ic.dns.extend(_split_list(value))
        elif lkey == "table":
            ic.table = value
        elif lkey == "saveconfig":
            ic.save_config = _parse_bool(value, canon)
        else:  # PreUp / PostUp / PreDown / PostDown
            if value:
                getattr(ic, {"preup": "pre_up", "postup": "post_up",
                             "predown": "pre_down", "postdown": "post_down"}[lkey]).append(value)

    def peer_key(self, lkey: str, canon: str, value: str, lineno: int) -> None:
        p = self.peer
        assert p is not None
        p.lines.setdefault(canon, lineno)
        if lkey != "allowedips" and not value:
            raise _ValueProblem(f"{canon}: empty value")
        if lkey == "publickey":
            key = _parse_key(value, canon)
            first = self.peer_by_key.get(key)
            if first is not None:
                raise _ValueProblem(f"{canon}: the same peer as the [Peer] on line {first.line} "
                                    f"(this [Peer] is on line {p.line}); each peer needs its own key")
            self.peer_by_key[key] = p
            p.public_key = key
        elif lkey == "presharedkey":
            p.preshared_key = _parse_key(value, canon)
        elif lkey == "allowedips":
            for item in _split_list(value):
                net, masked = _parse_allowed_ip(item)
                if masked:
                    self.warn(lineno, f"AllowedIPs: {item} has host bits set; using {net} (as wg does)")
                owner = self.network_owner.get(net)
                if owner is not None and owner is not p:
                    self.warn(lineno, f"AllowedIPs: {net} is also claimed by the [Peer] on line {owner.line}; "
                                      f"the later peer gets it, as in wg")
                self.network_owner[net] = p
                if net not in p.allowed_ips:
                    p.allowed_ips.append(net)
        elif lkey == "endpoint":
            p.endpoint = _parse_endpoint(value)
        elif lkey == "persistentkeepalive":
            p.persistent_keepalive = _parse_keepalive(value)

    def finish(self) -> WireGuardConfig:
        ic = self.interface
        if ic is None:
            raise self.error(1, "no [Interface] section")
        if ic.private_key is None:
            self.warn(ic.line, "[Interface] has no PrivateKey; wgscope cannot handshake without one")
        else:
            own = _public_key(ic.private_key)
            for p in self.peers:
                if p.public_key == own:
                    self.warn(p.lines.get("PublicKey", p.line),
                              "PublicKey: this peer is the interface itself; wg ignores such a peer")
        for p in self.peers:
            if not p.allowed_ips:
                self.warn(p.line, "[Peer] has no AllowedIPs; no traffic will be sent to it "
                                  "and none accepted from it")
        if ic.mtu is not None and ic.mtu < MIN_IPV6_MTU:
            uses_v6 = any(a.version == 6 for a in ic.addresses) or any(
                n.version == 6 for p in self.peers for n in p.allowed_ips)
            if uses_v6:
                self.warn(ic.lines.get("MTU"), f"MTU: {ic.mtu} is below {MIN_IPV6_MTU}, the minimum for IPv6; "
                                               f"IPv6 through this tunnel will not work")
        self.warnings.sort(key=lambda w: w[0])
        return WireGuardConfig(path=self.path, interface=ic, peers=self.peers,
                               warnings=[w for _, w in self.warnings])


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
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
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
    return chosen[0][4][0], port


def _format_endpoint(endpoint: tuple[str, int]) -> str:
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
            out.append(f"Endpoint = {_format_endpoint(p.endpoint)}")
        if p.persistent_keepalive:
            out.append(f"PersistentKeepalive = {p.persistent_keepalive}")
    return "\n".join(out) + "\n"
