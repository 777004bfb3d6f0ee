"""What the live node's kernel did not take, and what it need not route — never silent, never false.

Every datagram the UDP sockets could not send (udp.py, reason send_<errno>), every datagram the
kernel dropped at a socket before the node read it (udp.py, reason kernel_receive_drop: the kernel
says how many, not which), every packet the kernel dropped on the TUN's queue before the node read
it (kernel_drops.py, reason tun_queue_full) and every decrypted packet the TUN refused (tun.py,
reason tun_write_<errno>) becomes a packet_dropped event and a drop count, of the peer where the
endpoint names one; a lost message leaves the peer's tx counters, since WG-GO peer.SendBuffers
adds txBytes only after a send succeeded.

Link-local and multicast packets the kernel sends on the TUN by itself (router solicitations
to ff02::2, MLD reports) are not routing misses when no peer's allowed IPs cover them:
wireguard-go's RoutineReadFromTUN finds no peer and drops them without a word. Here they are a
DEBUG event, with no drop count and no ICMP unreachable; a peer that covers them still gets them.
"""

from __future__ import annotations

import socket
from typing import Callable

from ..events import ENDPOINT_CHANGED, INFO, LOCAL_TRAFFIC_IGNORED, PACKET_DROPPED, PEER_ADDED, PEER_REMOVED, EventBus
from ..protocol.messages import KIND_NAMES, first_index
from ..protocol.endpoint import endpoint_text

_COUNTED_AS_SENT = ("transport", "initiation", "response")  # what the core adds to Peer.tx_bytes (not cookie replies)
# Every change of which peer is at which endpoint: the core emits one of these each time (Device.add_peer,
# remove_peer, set_endpoint; roaming in receive.py), always at INFO.
_ENDPOINTS_MOVED = frozenset({ENDPOINT_CHANGED.name, PEER_ADDED.name, PEER_REMOVED.name})


def kernel_scoped(packet) -> bool:
    """A multicast or link-local destination (IPv4 224/4 and above, 169.254/16; IPv6 ff00::/8,
    fe80::/10): traffic the kernel sends on any link by itself."""
    version = packet[0] >> 4 if packet else 0
    if version == 6 and len(packet) >= 40:
        return packet[24] == 0xFF or (packet[24] == 0xFE and packet[25] & 0xC0 == 0x80)
    return version == 4 and len(packet) >= 20 and (packet[16] >= 224 or packet[16:18] == b"\xa9\xfe")


class Losses:
    def __init__(self, device, bus: EventBus, now: Callable[[], float]) -> None:
        self.device = device
        self.bus = bus
        self.now = now
        self.tun_write_drops = 0
        self.tun_queue_drops = 0
        self.local_ignored = 0
        # (host, port) -> the peer at that endpoint: built on the first loss after a change, so a
        # loss costs one dict look-up, not a scan of every peer (a flood of cookie replies that
        # cannot be sent is many losses in a row).
        self._by_endpoint: dict[tuple, object] | None = None
        bus.subscribe(self._endpoints_moved, INFO, names=_ENDPOINTS_MOVED)

    def _endpoints_moved(self, event) -> None:
        self._by_endpoint = None

    def peer_at(self, endpoint: tuple):
        """The peer whose endpoint this is (the first configured, if several share it), or None."""
        index = self._by_endpoint
        if index is None:
            index = self._by_endpoint = {}
            for p in self.device.peers.values():
                if p.endpoint is not None:
                    index.setdefault((p.endpoint[0], p.endpoint[1]), p)
        return index.get((endpoint[0], endpoint[1]))

    def without_local(self, batch: list) -> list:
        """The batch less the kernel's own link-local/multicast packets that no peer routes."""
        kept = []
        allowed = self.device.allowed_ips
        for packet in batch:
            if kernel_scoped(packet):
                v6 = packet[0] >> 4 == 6
                dst = bytes(packet[24:40] if v6 else packet[16:20])
                if (allowed.lookup_v6 if v6 else allowed.lookup_v4)(int.from_bytes(dst, "big")) is None:
                    self.local_ignored += 1
                    self.bus.emit(LOCAL_TRAFFIC_IGNORED, self.now(), None,
                                  dst=socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, dst))
                    continue
            kept.append(packet)
        return kept

    def datagrams_lost(self, datagrams: list, endpoint: tuple, reason: str) -> None:
        """Datagrams the UDP sockets could not send to `endpoint` (reason send_<errno>); the core
        counted them as sent (Peer.tx_bytes, and tx_packets for transport): taken back."""
        peer = self.peer_at(endpoint)
        drops = peer.drops if peer is not None else self.device.drops
        name, text, now = (peer.name if peer is not None else None), endpoint_text(endpoint), self.now()
        for data in datagrams:
            kind = KIND_NAMES.get(data[0], "unknown") if len(data) else "unknown"
            if peer is not None and kind in _COUNTED_AS_SENT:
                peer.tx_bytes -= len(data)
                peer.tx_packets -= kind == "transport"
            drops[reason] += 1
            index = first_index(data) if kind == "transport" and len(data) >= 8 else None
            self.bus.emit(PACKET_DROPPED, now, name, reason=reason, kind=kind, endpoint=text, receiver_index=index)

    def datagrams_unread(self, count: int, reason: str) -> None:
        """Datagrams the kernel dropped at a UDP socket before the node read them (reason
        kernel_receive_drop): neither their sender nor their kind is known, so the device counts them."""
        self._unattributed(count, reason, "datagram")

    def packets_unread(self, count: int, reason: str) -> None:
        """Packets the kernel dropped on the TUN's queue before the node read them (reason
        tun_queue_full): their destination, so their peer, is not known."""
        self.tun_queue_drops += count
        self._unattributed(count, reason, "inner_packet")

    def packets_lost(self, count: int, reason: str) -> None:
        """Decrypted packets the TUN did not take (reason tun_write_<errno>)."""
        self.tun_write_drops += count
        self._unattributed(count, reason, "inner_packet")

    def _unattributed(self, count: int, reason: str, kind: str) -> None:
        """`count` losses of no known peer: the device's drop count and one event each."""
        self.device.drops[reason] += count
        now = self.now()
        for _ in range(count):
            self.bus.emit(PACKET_DROPPED, now, None, reason=reason, kind=kind, endpoint=None, receiver_index=None)
