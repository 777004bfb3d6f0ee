"""The device: identity, peers, index table, load state and the entry points.

    receive_datagram(s)(data, endpoint, now)  -> actions   (receive.py)
    send_packet(s)(ip_packet, now)            -> actions   (send.py)
    tick(now)                                 -> actions   timers that came due
    initiate_handshake / force_handshake / send_keepalive_now / set_persistent_keepalive
                                              -> actions
    next_deadline()                           -> when to call tick again

Each entry point makes a fresh action list, hands it down the call chain (the `out` parameter)
and returns it. No sockets, no clock reads, no threads (DESIGN.md): `now` is the protocol clock
in seconds, and `wall_offset` turns it into wall-clock time for TAI64N and "latest handshake".
Randomness and the TAI64N stamp come from one injected `Entropy` (entropy.py).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Iterable

from ..keytext import encode
from ..events import (
    CONFIG_CHANGED, ENDPOINT_CHANGED, INFO, KEYPAIR_CREATED, KEYPAIR_ROTATED, PEER_ADDED, PEER_REMOVED,
    UNDER_LOAD_ENTERED, UNDER_LOAD_LEFT, EventBus,
)
from .allowedips import AllowedIPs
from .constants import DEFAULT_MTU, MAX_PEERS, UNDER_LOAD_AFTER_TIME, UNDER_LOAD_QUEUE_DEPTH
from .cookie import CookieChecker
from .crypto import same_secret
from .entropy import Entropy
from .keypair import Keypair
from .noise import ZERO_PSK, State, StaticIdentity, derive_transport_keys, precompute
from .endpoint import endpoint_text
from .peer import Peer
from .ratelimiter import RateLimiter
from .receive import ReceivePath
from .send import SendPath
from .lone import LonePath
from .timer_hooks import TimerHooks
from .timers import PERSISTENT_KEEPALIVE, TimerWheel


class ConfigurationError(ValueError):
    pass


class Device(SendPath, ReceivePath, TimerHooks, LonePath):
    def __init__(self, private_key: bytes, *, bus: EventBus | None = None, listen_port: int | None = None,
                 mtu: int = DEFAULT_MTU, wall_offset: float = 0.0, entropy: Entropy | None = None,
                 name: str = "wgscope") -> None:
        self.bus = bus or EventBus(INFO)
        self.bus.wall = self.wall  # every event carries the node's wall time beside the protocol clock
        self.name = name
        self.entropy = entropy or Entropy()
        self.identity: StaticIdentity | None = None
        self.cookie_checker: CookieChecker | None = None
        self.peers: dict[bytes, Peer] = {}
        self.allowed_ips = AllowedIPs()
        self.index_table: dict[int, tuple] = {}  # local index -> (peer, HandshakeState | Keypair)
        self.wheel = TimerWheel(self.bus)
        self.ratelimiter = RateLimiter()
        self.listen_port = listen_port
        self.fwmark = 0
        self.mtu = mtu
        self.wall_offset = wall_offset
        self.interface_addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
        self.force_under_load: bool | None = None  # None: decide from load
        self.under_load_until = float("-inf")
        self._under_load_reported = False
        self._hs_window_start = 0.0
        self._hs_window_count = 0
        self.handshake_rate = 0.0
        self.cookies_sent = 0
        self.drops: Counter[str] = Counter()  # drops not attributable to a peer
        self.set_private_key(private_key, 0.0)

    # ---------------------------------------------------------------- clock
    def wall(self, now: float) -> float:
        return now + self.wall_offset

    # ---------------------------------------------------------------- configuration
    def set_private_key(self, private_key: bytes | None, now: float) -> None:
        """Change identity; sessions made with the old key are zeroed (WG-GO SetPrivateKey)."""
        if private_key is None or same_secret(private_key, bytes(32)):
            private_key = bytes(32)
        identity = StaticIdentity(private_key)
        if self.identity is not None and same_secret(identity.private, self.identity.private):
            return
        self.identity = identity
        self.cookie_checker = CookieChecker(identity.mac1_key, identity.cookie_key, self.entropy)
        for peer in list(self.peers.values()):
            if peer.public_key == identity.public:  # a peer with our own key is removed (WG-GO)
                self.remove_peer(peer.public_key, now)
                continue
            precompute(identity, peer.handshake)
            if peer.keypairs.all() or peer.handshake.local_index:
                self.zero_key_material(peer, now, "private_key_changed")
        if now or self.peers:
            self.bus.emit(CONFIG_CHANGED, now, None, setting="private_key", value="(changed)")

    @property
    def public_key(self) -> bytes:
        return self.identity.public

    def add_peer(self, public_key: bytes, *, preshared_key: bytes | None = None, endpoint: tuple | None = None,
                 allowed_ips: Iterable = (), persistent_keepalive: int = 0, label: str | None = None,
                 now: float = 0.0) -> Peer:
        if len(public_key) != 32:
            raise ConfigurationError("public key must be 32 bytes")
        if public_key in self.peers:
            raise ConfigurationError("peer already exists")
        if len(self.peers) >= MAX_PEERS:
            raise ConfigurationError(f"too many peers (maximum {MAX_PEERS})")
        if public_key == self.identity.public:
            raise ConfigurationError("a peer cannot have the interface's own public key")
        peer = Peer(public_key, preshared_key, endpoint, persistent_keepalive, label)
        precompute(self.identity, peer.handshake)
        self.peers[public_key] = peer
        for net in allowed_ips:
            self.allowed_ips.insert(net, peer)
        self.bus.emit(PEER_ADDED, now, peer.name, allowed_ips=[str(n) for n in self.allowed_ips.networks(peer)],
                      endpoint=endpoint_text(endpoint), persistent_keepalive=persistent_keepalive,
                      has_psk=peer.has_psk)
        return peer

    def remove_peer(self, public_key: bytes, now: float = 0.0) -> None:
        peer = self.peers.pop(public_key, None)
        if peer is None:
            return
        self.stop_timers(peer, now)
        self.zero_key_material(peer, now, "peer_removed")
        self.allowed_ips.remove_peer(peer)
        peer.staged.clear()
        self.bus.emit(PEER_REMOVED, now, peer.name)

    def remove_all_peers(self, now: float = 0.0) -> None:
        for key in list(self.peers):
            self.remove_peer(key, now)

    def set_endpoint(self, peer: Peer, endpoint: tuple, now: float = 0.0) -> None:
        if endpoint != peer.endpoint:
            old = peer.endpoint
            peer.endpoint = endpoint
            self.bus.emit(ENDPOINT_CHANGED, now, peer.name, old=endpoint_text(old), new=endpoint_text(endpoint),
                          cause="config")

    def set_preshared_key(self, peer: Peer, psk: bytes | None, now: float = 0.0) -> None:
        peer.handshake.preshared_key = psk or ZERO_PSK
        self.bus.emit(CONFIG_CHANGED, now, peer.name, setting="preshared_key",
                      value="(set)" if peer.has_psk else "(none)")

    def set_persistent_keepalive(self, peer: Peer, interval: int, now: float = 0.0) -> list:
        """Changing the interval sends a keepalive at once when turned on (WG-GO uapi.go)."""
        out: list = []
        was = peer.persistent_keepalive
        peer.persistent_keepalive = interval
        self.bus.emit(CONFIG_CHANGED, now, peer.name, setting="persistent_keepalive", value=str(interval))
        if interval == 0:
            self.wheel.cancel(peer.timers[PERSISTENT_KEEPALIVE], now)
        elif was == 0 and peer.endpoint is not None:
            self.send_keepalive(peer, now, "persistent", out)
        return out

    def set_allowed_ips(self, peer: Peer, networks: Iterable, replace: bool, now: float = 0.0) -> None:
        if replace:
            self.allowed_ips.remove_peer(peer)
        for net in networks:
            self.allowed_ips.insert(net, peer)
        self.bus.emit(CONFIG_CHANGED, now, peer.name, setting="allowed_ips",
                      value=",".join(str(n) for n in self.allowed_ips.networks(peer)))

    # ---------------------------------------------------------------- indices and sessions
    def new_index(self, entry: tuple, message: str) -> int:
        """A fresh random 32-bit receiver index for `entry` (peer, HandshakeState) and the handshake
        `message` about to be created (WP §5.4.2: chosen randomly)."""
        table = self.index_table
        draw, peer_key = self.entropy.index, entry[0].public_key
        while True:
            index = draw(message, peer_key)
            if index and index not in table:
                table[index] = entry
                return index

    def begin_session(self, peer: Peer, now: float) -> None:
        """Derive transport keys and place them in the keypair slots (WG-GO BeginSymmetricSession)."""
        hs = peer.handshake
        local_index, remote_index = hs.local_index, hs.remote_index
        send, recv, initiator = derive_transport_keys(hs)
        hs.local_index = 0
        keypair = Keypair(send, recv, local_index, remote_index, now, initiator, peer)
        self.index_table[local_index] = (peer, keypair)  # the handshake's index now names the keypair
        kps = peer.keypairs
        if initiator:
            if kps.next is not None:
                old_previous, kps.previous, kps.next = kps.previous, kps.next, None
                self.retire_keypair(kps.current)
            else:
                old_previous, kps.previous = kps.previous, kps.current
            self.retire_keypair(old_previous)
            kps.current = keypair
        else:
            self.retire_keypair(kps.next)
            self.retire_keypair(kps.previous)
            kps.next = keypair
            kps.previous = None
        self.bus.emit(KEYPAIR_CREATED, now, peer.name, local_index=local_index, remote_index=remote_index,
                      role="initiator" if initiator else "responder", slot="current" if initiator else "next")
        self.emit_rotation(peer, now)
        if not initiator:
            self.timers_session_derived(peer, now)

    def retire_keypair(self, keypair: Keypair | None) -> None:
        if keypair is not None:
            entry = self.index_table.get(keypair.local_index)
            if entry is not None and entry[1] is keypair:
                del self.index_table[keypair.local_index]
            keypair.zero()

    def emit_rotation(self, peer: Peer, now: float) -> None:
        if self.bus.debug:
            self.bus.emit(KEYPAIR_ROTATED, now, peer.name, **peer.keypairs.indices())

    # ---------------------------------------------------------------- load (WP §5.3)
    def note_handshake_message(self, now: float) -> None:
        """Count handshake messages per second; a burst like WG-GO's queue reaching 1/8 full means load."""
        if now - self._hs_window_start >= 1.0:
            elapsed = now - self._hs_window_start
            self.handshake_rate = self._hs_window_count / elapsed if elapsed < 2.0 else 0.0
            self._hs_window_start = now
            self._hs_window_count = 0
        self._hs_window_count += 1
        if self._hs_window_count >= UNDER_LOAD_QUEUE_DEPTH:
            self.report_backlog(self._hs_window_count, now)

    def report_backlog(self, depth: int, now: float) -> None:
        """Adapters with a real queue report its depth here (WG-GO IsUnderLoad)."""
        if depth >= UNDER_LOAD_QUEUE_DEPTH:
            self.under_load_until = now + UNDER_LOAD_AFTER_TIME

    def loaded_at(self, now: float) -> bool:
        """Whether the device is under load at `now`, read without reporting a change
        (is_under_load reports them; protocol/lookahead.py only reads)."""
        forced = self.force_under_load
        return forced if forced is not None else now < self.under_load_until

    def is_under_load(self, now: float) -> bool:
        loaded = self.loaded_at(now)
        if loaded != self._under_load_reported:
            self._under_load_reported = loaded
            forced = self.force_under_load is not None
            if loaded:
                self.bus.emit(UNDER_LOAD_ENTERED, now, None, forced=forced,
                              rate=round(max(self.handshake_rate, float(self._hs_window_count)), 1))
            else:
                self.bus.emit(UNDER_LOAD_LEFT, now, None, forced=forced)
        return loaded

    def set_mtu(self, mtu: int, now: float) -> None:
        """The interface MTU changed: padding follows it (WG-GO send.go calculatePaddingSize)."""
        if mtu != self.mtu:
            self.mtu = mtu
            self.bus.emit(CONFIG_CHANGED, now, None, setting="mtu", value=str(mtu))

    def initiate_handshake(self, peer: Peer, now: float, is_retry: bool = False) -> list:
        """Start a handshake now, as the timers or a staged packet would (subject to REKEY_TIMEOUT)."""
        out: list = []
        self.send_initiation(peer, now, is_retry, out)
        return out

    def force_handshake(self, peer: Peer, now: float) -> list:
        """Send an initiation now even within REKEY_TIMEOUT of the last one (the one-per-5-s rule
        of WP §6.1 is for the timers; a user or a probe asking for a handshake is not a timer). It
        counts as a retry while an initiation of ours is unanswered."""
        out: list = []
        hs = peer.handshake
        retry = hs.state is State.INITIATION_CREATED
        hs.last_sent_handshake = float("-inf")
        self.send_initiation(peer, now, retry, out)
        return out

    def send_keepalive_now(self, peer: Peer, now: float, reason: str = "persistent") -> list:
        """A keepalive now, or a handshake first if there is no session (WG-GO peer.SendKeepalive,
        which device.go upLocked and uapi.go call for a peer with a persistent keepalive)."""
        out: list = []
        self.send_keepalive(peer, now, reason, out)
        return out

    def set_forced_load(self, value: bool | None, now: float) -> None:
        self.force_under_load = value
        self.is_under_load(now)

    # ---------------------------------------------------------------- timers
    def tick(self, now: float) -> list:
        """Run every timer due at `now`."""
        out: list = []
        while True:
            timer = self.wheel.pop_due(now)
            if timer is None:
                break
            if timer.peer.public_key in self.peers:
                self.fire_timer(timer, now, out)
        if self._under_load_reported and self.force_under_load is None:
            self.is_under_load(now)
        return out

    def next_deadline(self) -> float | None:
        when = self.wheel.next_deadline()
        if self._under_load_reported and self.force_under_load is None:
            when = self.under_load_until if when is None else min(when, self.under_load_until)
        return when

    # ---------------------------------------------------------------- views
    def icmp_source(self, packet: bytes) -> str | None:
        want = 4 if packet and packet[0] >> 4 == 4 else 6
        for iface in self.interface_addresses:
            if iface.version == want:
                return str(iface.ip)
        return None

    def snapshot(self, now: float) -> dict:
        return {
            "name": self.name,
            "public_key": encode(self.identity.public),
            "listen_port": self.listen_port,
            "mtu": self.mtu,
            "under_load": self._under_load_reported,
            "forced_load": self.force_under_load,
            "handshake_rate": round(self.handshake_rate, 1),
            "cookies_sent": self.cookies_sent,
            "drops": dict(self.drops),
            "time": now,
            "wall": self.wall(now),
            "peers": [p.snapshot(now, self.allowed_ips.networks(p)) for p in self.peers.values()],
        }
