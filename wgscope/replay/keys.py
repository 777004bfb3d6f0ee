"""Where replay gets its keys: Wireshark key logs, pcapng Decryption Secrets Blocks, wg-quick configs.

The key log format is Wireshark's (epan/dissectors/packet-wireguard.c, wg_keylog_process_lines;
the same lines wireguard-tools' contrib/extract-handshakes writes):

    LOCAL_STATIC_PRIVATE_KEY = <base64>
    REMOTE_STATIC_PUBLIC_KEY = <base64>
    LOCAL_EPHEMERAL_PRIVATE_KEY = <base64>
    PRESHARED_KEY = <base64>          (belongs to the ephemeral key logged just before it)

A configuration contributes the interface's static private key, every peer's public key and
pre-shared key, and the peers' allowed IPs (for the inner-source check).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..keytext import KeyFormatError, decode, encode
from ..protocol.constants import LABEL_COOKIE, LABEL_MAC1
from ..protocol.cookie import CookieChecker
from ..protocol.crypto import HASH, public_key
from ..protocol.entropy import SYSTEM
from .sides import SideSetting

KEYLOG_TYPES = ("LOCAL_STATIC_PRIVATE_KEY", "REMOTE_STATIC_PUBLIC_KEY", "LOCAL_EPHEMERAL_PRIVATE_KEY",
                "PRESHARED_KEY")


class KeySourceError(ValueError):
    """A key source that cannot be used at all (unreadable file, no keys in it)."""


@dataclass
class KeyRing:
    """Everything replay knows, indexed the way the handshake lookups need it."""

    static_private: dict[bytes, bytes] = field(default_factory=dict)  # public -> private
    static_public: dict[bytes, str | None] = field(default_factory=dict)  # public -> label (or None)
    ephemeral_private: dict[bytes, bytes] = field(default_factory=dict)  # public -> private
    psk_by_ephemeral: dict[bytes, list[bytes]] = field(default_factory=dict)  # ephemeral public -> PSKs
    psks: list[bytes] = field(default_factory=list)  # from configurations (tried for every handshake)
    # Allowed IPs of a peer as configured by the other side: sender public key -> networks.
    allowed_ips: dict[bytes, list] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # What each side whose static private key is known was configured with (sides.py builds a
    # Device from it): own public key -> SideSetting.
    sides: dict[bytes, "SideSetting"] = field(default_factory=dict)
    _mac1: dict[bytes, CookieChecker] = field(default_factory=dict)

    # ------------------------------------------------------------ adding
    def add_static_private(self, private: bytes, label: str | None = None) -> bytes:
        pub = public_key(private)
        self.static_private[pub] = private
        self.add_static_public(pub, label)
        return pub

    def add_static_public(self, pub: bytes, label: str | None = None) -> None:
        if label or pub not in self.static_public:
            self.static_public[pub] = label or self.static_public.get(pub)
        if pub not in self._mac1:
            self._mac1[pub] = CookieChecker(HASH(LABEL_MAC1 + pub), HASH(LABEL_COOKIE + pub), SYSTEM)

    def add_ephemeral_private(self, private: bytes) -> bytes:
        pub = public_key(private)
        self.ephemeral_private[pub] = private
        return pub

    def add_keylog(self, text: str, source: str) -> int:
        """Add every key of a Wireshark key log; returns how many lines were used."""
        used = 0
        last_ephemeral: bytes | None = None
        block = _Block()
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line.startswith("#"):
                block.comment(line)
                continue
            if not line:
                continue
            kind, sep, value = line.partition("=")
            kind = kind.strip()
            if not sep or kind not in KEYLOG_TYPES:
                self.warnings.append(f"{source}:{lineno}: not a WireGuard key log line")
                continue
            try:
                key = decode(value, kind)
            except KeyFormatError as e:
                self.warnings.append(f"{source}:{lineno}: {e}")
                continue
            used += 1
            if kind == "LOCAL_STATIC_PRIVATE_KEY":
                block.local = self.add_static_private(key)
                self._side(key, block.name, source)
            elif kind == "REMOTE_STATIC_PUBLIC_KEY":
                self.add_static_public(key)
                block.remote = key
                if block.local is not None:
                    self.sides[block.local].peer(key)
            elif kind == "LOCAL_EPHEMERAL_PRIVATE_KEY":
                last_ephemeral = self.add_ephemeral_private(key)
            elif last_ephemeral is not None:  # PRESHARED_KEY: linked to the last ephemeral, as Wireshark does
                self.psk_by_ephemeral.setdefault(last_ephemeral, []).append(key)
                last_ephemeral = None
                if block.local is not None and block.remote is not None:
                    self.sides[block.local].peer(block.remote).preshared_key = key
            else:
                self.psks.append(key)
        self.sources.append(source)
        return used

    def add_keylog_file(self, path: str) -> int:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            raise KeySourceError(f"cannot read key log {path}: {e.strerror}") from None
        used = self.add_keylog(text, path)
        if not used:
            raise KeySourceError(f"{path}: no WireGuard keys found (expected lines like "
                                 "'LOCAL_STATIC_PRIVATE_KEY = <base64>')")
        return used

    def add_config_file(self, path: str) -> None:
        """A wg-quick / wg configuration: the interface's private key and its peers."""
        from .. import config as wgconfig  # written by the live-node work; imported when used

        try:
            cfg = wgconfig.load(path)
        except OSError as e:
            raise KeySourceError(f"cannot read configuration {path}: {e.strerror}") from None
        except wgconfig.ConfigError as e:
            raise KeySourceError(f"{path}: {e}") from None
        iface = cfg.interface
        side = None
        if iface.private_key:
            self.add_static_private(iface.private_key, label=_label_of(path))
            side = self._side(iface.private_key, _label_of(path), path, from_config=True)
            side.listen_port, side.mtu = iface.listen_port, iface.mtu
            side.addresses = list(iface.addresses)
        for peer in cfg.peers:
            self.add_static_public(peer.public_key, getattr(peer, "name", None))
            if side is not None:
                side.configure(peer)
            psk = getattr(peer, "preshared_key", None) or bytes(32)  # no PresharedKey: the all-zero one
            if psk not in self.psks:
                self.psks.append(psk)
            nets = [ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n
                    for n in (peer.allowed_ips or [])]
            self.allowed_ips.setdefault(peer.public_key, []).extend(nets)
        self.warnings.extend(f"{path}: {w}" for w in (getattr(cfg, "warnings", None) or []))
        self.sources.append(path)

    def _side(self, private: bytes, name: str | None, source: str, from_config: bool = False) -> "SideSetting":
        pub = public_key(private)
        side = self.sides.get(pub)
        if side is None:
            side = self.sides[pub] = SideSetting(private, pub, name, source)
        if from_config and not side.from_config:  # a configuration is the fuller account of a side
            side.from_config, side.source = True, source
            side.name = name or side.name
        elif side.name is None:
            side.name = name
        return side

    # ------------------------------------------------------------ lookups
    def mac1_checkers(self) -> dict[bytes, CookieChecker]:
        """public key -> the core's mac1 check for messages addressed to it (WP §5.4.4)."""
        return self._mac1

    @staticmethod
    def cookie_key(pub: bytes) -> bytes:
        return HASH(LABEL_COOKIE + pub)

    def label(self, pub: bytes | None) -> str | None:
        return self.static_public.get(pub) if pub else None

    @property
    def has_ephemerals(self) -> bool:
        return bool(self.ephemeral_private)

    @property
    def empty(self) -> bool:
        return not (self.static_private or self.static_public or self.ephemeral_private)

    def describe(self) -> dict:
        """Counts only — never the keys themselves."""
        return {"static_private": len(self.static_private), "static_public": len(self.static_public),
                "ephemeral_private": len(self.ephemeral_private),
                "preshared": len(self.psks) + sum(map(len, self.psk_by_ephemeral.values())),
                "sources": list(self.sources)}

    def allowed(self, sender: bytes) -> list | None:
        return self.allowed_ips.get(sender)


class _Block:
    """One handshake's lines of a key log; the comment wgscope writes above it names the node
    ("# <time> initiator handshake with peer AbCd on wg0", sinks/keylog.py format_keylog)."""

    __slots__ = ("local", "remote", "name")

    def __init__(self) -> None:
        self.local = self.remote = self.name = None

    def comment(self, line: str) -> None:
        self.local = self.remote = None
        words = line.split()
        if "handshake" in words and len(words) >= 2 and words[-2] == "on":
            self.name = words[-1][:64]


def _label_of(path: str) -> str:
    import os

    return os.path.splitext(os.path.basename(path))[0]


def keylog_lines(secrets) -> str:
    """Format HandshakeSecrets (events.HandshakeSecrets) as Wireshark key log text."""
    out = [f"LOCAL_STATIC_PRIVATE_KEY = {encode(secrets.local_static_private)}",
           f"REMOTE_STATIC_PUBLIC_KEY = {encode(secrets.remote_static_public)}",
           f"LOCAL_EPHEMERAL_PRIVATE_KEY = {encode(secrets.local_ephemeral_private)}",
           f"PRESHARED_KEY = {encode(secrets.preshared_key or bytes(32))}"]  # zeros: "none", said so
    return "\n".join(out) + "\n"
