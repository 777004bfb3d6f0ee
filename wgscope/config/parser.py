"""The configuration file parser: sections, keys and the checks across them."""

from __future__ import annotations

import re

from ..protocol.crypto import public_key as _public_key
from .model import MAX_MTU, MIN_IPV6_MTU, MIN_MTU, ConfigError, InterfaceConfig, IPNetwork, PeerConfig, WireGuardConfig
from .values import (
    _IGNORED, _INTERFACE_KEYS, _NAME_COMMENT, _PEER_KEYS, _PLAIN_KEY_NAME, _SINGULAR, _WG_QUICK_ONLY, _ValueProblem,
    _parse_address, _parse_allowed_ip, _parse_bool, _parse_endpoint, _parse_fwmark, _parse_keepalive, _parse_key,
    _parse_uint, _show_key_name, _split_list,
)


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
