"""Key names and the value parsers of configuration files: each value parser raises
_ValueProblem(message) with the message *without* a location; the parser adds it."""

from __future__ import annotations

import ipaddress
import re

from .. import keytext as _keys
from .model import IPInterface, IPNetwork

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
