"""What replay knows of one side's configuration, and the Device built from it.

A side is a node whose static private key is known: from a key log (the capture's Decryption
Secrets Blocks or --keylog: the peers it made handshakes with, and their pre-shared keys) or
from a wg-quick configuration (everything the interface was given). Replay re-executes such a
side by building its Device here and driving it with the capture (node.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..keytext import encode

ALL_V4 = ipaddress.ip_network("0.0.0.0/0")
ALL_V6 = ipaddress.ip_network("::/0")


@dataclass
class PeerSetting:
    public_key: bytes
    preshared_key: bytes | None = None  # None: not known (a key log without PRESHARED_KEY lines)
    allowed_ips: list | None = None  # None: not known (a key log says nothing of routing)
    endpoint: tuple | None = None
    persistent_keepalive: int = 0
    label: str | None = None


@dataclass
class SideSetting:
    private_key: bytes
    public_key: bytes
    name: str | None
    source: str
    from_config: bool = False
    listen_port: int | None = None
    mtu: int | None = None
    addresses: list = field(default_factory=list)
    peers: dict[bytes, PeerSetting] = field(default_factory=dict)

    @property
    def node_name(self) -> str:
        """As the live node names itself in events: its interface name, else its public key."""
        return self.name or encode(self.public_key)

    def peer(self, public: bytes) -> PeerSetting:
        setting = self.peers.get(public)
        if setting is None:
            setting = self.peers[public] = PeerSetting(public)
        return setting

    def configure(self, cfg) -> None:
        """A [Peer] section of a configuration (wgscope/config.py PeerConfig)."""
        p = self.peer(cfg.public_key)
        p.preshared_key = cfg.preshared_key or bytes(32)
        p.allowed_ips = [ipaddress.ip_network(n, strict=False) if isinstance(n, str) else n
                         for n in (cfg.allowed_ips or [])]
        p.endpoint = tuple(cfg.endpoint) if cfg.endpoint else None
        p.persistent_keepalive = cfg.persistent_keepalive or 0
        p.label = getattr(cfg, "name", None)

    @property
    def psk_unknown(self) -> bool:
        return any(p.preshared_key is None for p in self.peers.values())

    def routes(self, peer: PeerSetting) -> list:
        """Allowed IPs for the Device: as configured; for a key log's lone peer everything (it can
        only be that peer); with several peers and no configuration, learned from the traffic."""
        if peer.allowed_ips is not None:
            return peer.allowed_ips
        if len(self.peers) == 1:
            return [ALL_V4, ALL_V6]
        return []
