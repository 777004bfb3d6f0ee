"""The allowed-IPs table (WP §3, "cryptokey routing").

Outbound: the peer whose allowed range is the longest prefix covering the destination.
Inbound: a decrypted packet is accepted only if its source maps back to the peer it came
from. An address range belongs to at most one peer; inserting it again moves it, as in
wireguard-go's AllowedIPs.Insert and the kernel's allowedips.c.

The table is a hash per prefix length, searched from the longest length present down:
longest-prefix match in at most 33 (IPv4) or 129 (IPv6) dict probes, in practice a few.
"""

from __future__ import annotations

import ipaddress
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NETWORK_TYPES = (ipaddress.IPv4Network, ipaddress.IPv6Network)  # already masked: no need to parse again


class _Family:
    __slots__ = ("bits", "by_length", "lengths")

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.by_length: dict[int, dict[int, Any]] = {}
        self.lengths: list[int] = []  # descending

    def insert(self, key: int, plen: int, peer: Any) -> Any:
        table = self.by_length.get(plen)
        if table is None:
            table = self.by_length[plen] = {}
            self.lengths = sorted(self.by_length, reverse=True)
        previous = table.get(key)
        table[key] = peer
        return previous

    def remove(self, key: int, plen: int) -> None:
        table = self.by_length.get(plen)
        if table is None:
            return
        table.pop(key, None)
        if not table:
            del self.by_length[plen]
            self.lengths = sorted(self.by_length, reverse=True)

    def lookup(self, addr: int) -> Any:
        bits = self.bits
        by_length = self.by_length
        for plen in self.lengths:
            peer = by_length[plen].get(addr >> (bits - plen))
            if peer is not None:
                return peer
        return None


class AllowedIPs:
    def __init__(self) -> None:
        self._v4 = _Family(32)
        self._v6 = _Family(128)
        self._by_peer: dict[Any, dict[Network, None]] = {}

    def _family(self, version: int) -> _Family:
        return self._v4 if version == 4 else self._v6

    def insert(self, network: Network | str, peer: Any) -> Any:
        """Map `network` to `peer`; returns the peer that held it before, if another."""
        net = network if isinstance(network, _NETWORK_TYPES) else ipaddress.ip_network(network, strict=False)
        fam = self._family(net.version)
        plen = net.prefixlen
        previous = fam.insert(int(net.network_address) >> (fam.bits - plen), plen, peer)
        if previous is not None and previous is not peer:
            self._by_peer[previous].pop(net, None)
        self._by_peer.setdefault(peer, {})[net] = None
        return previous if previous is not peer else None

    def remove(self, network: Network | str, peer: Any) -> None:
        net = ipaddress.ip_network(network, strict=False)
        owned = self._by_peer.get(peer, {})
        if net in owned:
            del owned[net]
            fam = self._family(net.version)
            fam.remove(int(net.network_address) >> (fam.bits - net.prefixlen), net.prefixlen)

    def remove_peer(self, peer: Any) -> None:
        for net in list(self._by_peer.pop(peer, {})):
            fam = self._family(net.version)
            fam.remove(int(net.network_address) >> (fam.bits - net.prefixlen), net.prefixlen)

    def networks(self, peer: Any) -> list[Network]:
        return list(self._by_peer.get(peer, ()))

    def lookup_v4(self, addr: int) -> Any:
        return self._v4.lookup(addr)

    def lookup_v6(self, addr: int) -> Any:
        return self._v6.lookup(addr)

    def lookup(self, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Any:
        ip = ipaddress.ip_address(address)
        return (self._v4 if ip.version == 4 else self._v6).lookup(int(ip))

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_peer.values())

