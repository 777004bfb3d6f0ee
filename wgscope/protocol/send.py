"""The outbound path: routing, staging, encryption, handshake initiation (WP §5.4.6, §6.2;
WG-GO device/send.go; kernel send.c).

The methods that cause actions append them to an `out` list the entry point made and returns.
"""

from __future__ import annotations

import struct
from collections import Counter
from itertools import repeat
from operator import add, and_

from ..events import (
    COOKIE_USED, HANDSHAKE_INITIATION_CREATED, HANDSHAKE_INITIATION_SENT, HANDSHAKE_INITIATION_SKIPPED,
    KEEPALIVE_SENT, KEYPAIR_EXPIRED, NO_ENDPOINT, PACKET_DROPPED, PACKET_STAGED, QUEUE_OVERFLOW, REKEY_WANTED,
    ROUTE_FOUND, ROUTE_MISSING, TRANSPORT_SENT, M64, EventBus, HandshakeSecrets,
)
from .allowedips import AllowedIPs
from .entropy import Entropy
from .actions import SendDatagram, WritePacket, new_action
from .constants import (
    PADDING_MULTIPLE, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME,
    REKEY_TIMEOUT,
)
from .crypto import nonce
from .messages import pack_initiation, pack_transport_header
from .noise import HandshakeError, StaticIdentity, create_initiation
from .endpoint import endpoint_text
from . import ip


def padded_length(length: int, mtu: int) -> int:
    """WG-GO send.go calculatePaddingSize: pad to 16, but never past the MTU."""
    last_unit = length
    if mtu and last_unit > mtu:
        last_unit %= mtu
    padded = (last_unit + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1)
    if mtu and padded > mtu:
        padded = mtu
    return length + (padded - last_unit)


def _pad(packet: bytes, length: int, mtu: int) -> bytes:
    """padded_length's case 0 < length <= mtu: to a multiple of 16, never past the MTU."""
    target = min((length + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1), mtu)
    return packet + bytes(target - length) if target != length else packet


# (first byte, destination address) of an IPv4 / IPv6 packet: what ip.outbound reads of it
_V4_HEAD = struct.Struct("!B15x4s").unpack_from
_V6_HEAD = struct.Struct("!B23x16s").unpack_from


class SendPath:
    """Mixed into Device. The device state it reads and writes (Device.__init__ sets it):"""

    bus: EventBus
    entropy: Entropy
    identity: StaticIdentity
    allowed_ips: AllowedIPs
    index_table: dict
    drops: Counter
    mtu: int

    # ---------------------------------------------------------------- from the TUN
    def send_packet(self, packet: bytes, now: float) -> list:
        """An IP packet read from the TUN: route it to a peer and send or stage it."""
        return self.send_packets((packet,), now)

    def send_packets(self, packets, now: float) -> list:
        """IP packets read from the TUN, in order: each is routed to a peer and staged, then every
        peer that got some sends what it has staged (WG-GO RoutineReadFromTUN stages a read batch,
        then calls SendStagedPackets per peer). A peer whose queue fills mid-batch sends at once.
        With no trace, a lone packet may take lone.py's short way, a batch to one destination
        _stage_for_one_peer's, and a queue _seal_run's: the loops' result with fewer steps in
        Python (tests/test_lone_packet.py and tests/test_send_runs.py run both ways)."""
        bus = self.bus
        if not bus.trace:
            if len(packets) == 1:
                out = self._send_lone(packets[0], now)
                if out is not None:
                    return out
            elif packets:
                peer = self._stage_for_one_peer(packets)
                if peer is not None:
                    out = []
                    self.send_staged(peer, now, out)
                    return out
        out: list = []
        lookup_v4, lookup_v6 = self.allowed_ips.lookup_v4, self.allowed_ips.lookup_v6
        routed: list = []  # peers that staged packets in this batch, in order
        last_dst = peer = None
        for packet in packets:
            try:
                ver, dst_bytes = ip.outbound(packet)
            except ip.InvalidPacket as e:
                self.drops["invalid_inner_packet"] += 1
                bus.emit(PACKET_DROPPED, now, None, reason="invalid_inner_packet", kind=str(e), endpoint=None,
                         receiver_index=None)
                continue
            if dst_bytes != last_dst:  # a run of packets to one address is routed once (4 or 16 bytes)
                last_dst = None
                dst = int.from_bytes(dst_bytes, "big")
                peer = (lookup_v4 if ver == 4 else lookup_v6)(dst)
                if peer is None:
                    self.drops["no_route"] += 1
                    bus.emit(ROUTE_MISSING, now, None, dst=ip.address_text(ver, dst),
                             src=ip.address_text(*ip.source(packet)))
                    self._icmp_unreachable(packet, out)
                    continue
                if peer.endpoint is None:
                    peer.drops["no_endpoint"] += 1
                    bus.emit(NO_ENDPOINT, now, peer.name, dst=ip.address_text(ver, dst))
                    self._icmp_unreachable(packet, out)
                    continue
                last_dst = dst_bytes
            if bus.trace:  # a per-packet record: integers only, the address text is made when read
                n = int.from_bytes(dst_bytes, "big")
                bus.record(ROUTE_FOUND, now, peer.name, ver, n >> 64, n & M64)
            staged = peer.staged
            if len(staged) < peer.staged_limit and not bus.trace:
                staged.append(packet)  # _stage's usual case, inline: room in the queue, nothing to record
            else:
                self._stage(peer, packet, now)
            if peer not in routed:
                routed.append(peer)
            elif len(peer.staged) >= peer.staged_limit:
                self.send_staged(peer, now, out)
        for peer in routed:
            self.send_staged(peer, now, out)
        return out

    def _stage_for_one_peer(self, packets):
        """send_packets' loop for the bulk batch, a batch of IP packets of one version with one
        first byte and one destination: each to the same peer, with an endpoint, whose queue takes
        them all without filling. The loop would then route the first packet and reuse the route
        for the rest (one destination), stage them in order, and send the queue once at the end
        (full only at the limit, which they stay short of); with no trace it records nothing per
        packet. This reads each packet's first byte and destination in C (one struct read, one
        tuple comparison a packet), routes once, stages with one extend and returns the peer.
        None, with nothing changed, for any other batch: the loop takes it (its drops, mixed
        destinations, a queue that fills)."""
        version = packets[0][0] >> 4 if packets[0] else 0
        if version == 4:
            head, lookup = _V4_HEAD, self.allowed_ips.lookup_v4
        elif version == 6:
            head, lookup = _V6_HEAD, self.allowed_ips.lookup_v6
        else:
            return None
        try:
            if head(packets[-1]) != head(packets[0]):  # a batch for several peers: no pass over it
                return None
            heads = list(map(head, packets))
        except struct.error:  # a packet shorter than the header ip.outbound reads (20 or 40 bytes)
            return None
        if heads.count(heads[0]) != len(heads):
            return None
        peer = lookup(int.from_bytes(heads[0][1], "big"))
        if peer is None or peer.endpoint is None or len(peer.staged) + len(heads) >= peer.staged_limit:
            return None
        peer.staged.extend(packets)
        return peer

    def _icmp_unreachable(self, packet: bytes, out: list) -> None:
        reply = ip.icmp_unreachable(packet, self.icmp_source(packet))
        if reply is not None:
            out.append(WritePacket(reply))

    def _stage(self, peer, packet: bytes, now: float) -> None:
        staged = peer.staged
        if len(staged) >= peer.staged_limit:
            staged.popleft()  # WG-GO StagePacket drops the oldest
            peer.drops["queue_overflow"] += 1
            self.bus.emit(QUEUE_OVERFLOW, now, peer.name, limit=peer.staged_limit)
        staged.append(packet)
        if self.bus.trace:
            self.bus.record(PACKET_STAGED, now, peer.name, len(staged))

    def send_staged(self, peer, now: float, out: list) -> None:
        """WG-GO SendStagedPackets: encrypt what is staged with the current keypair, or handshake."""
        keypair = peer.keypairs.current
        # expired_reason's two limits read here first, so a live keypair costs no call (a cold one per hop)
        if keypair is None or keypair.send is None or (
                (now - keypair.created >= REJECT_AFTER_TIME or keypair.send_counter >= REJECT_AFTER_MESSAGES)
                and self._expired(peer, keypair, now)):
            if peer.staged:
                self.send_initiation(peer, now, False, out)
            return
        if peer.staged:
            self._encrypt_and_send(peer, keypair, now, out)
            if keypair.send_counter >= REJECT_AFTER_MESSAGES and peer.staged:
                self.send_staged(peer, now, out)  # the keypair ran out mid-queue: the rest waits for a handshake
                return
        self._keep_key_fresh_sending(peer, keypair, now, out)

    def _expired(self, peer, keypair, now: float) -> bool:
        reason = keypair.expired_reason(now)
        if reason and not keypair.expired_reported:
            keypair.expired_reported = True
            self.bus.emit(KEYPAIR_EXPIRED, now, peer.name, local_index=keypair.local_index, reason=reason,
                          age=round(now - keypair.created, 3))
        return reason is not None

    def _keep_key_fresh_sending(self, peer, keypair, now: float, out: list) -> None:
        """WP §6.2: the initiator rekeys after REKEY_AFTER_TIME or REKEY_AFTER_MESSAGES."""
        if not keypair.is_initiator:
            return
        age = now - keypair.created
        if age > REKEY_AFTER_TIME or keypair.send_counter > REKEY_AFTER_MESSAGES:
            if now - peer.handshake.last_sent_handshake >= REKEY_TIMEOUT:
                reason = "rekey_after_time" if age > REKEY_AFTER_TIME else "rekey_after_messages"
                self.bus.emit(REKEY_WANTED, now, peer.name, reason=reason, age=round(age, 3))
            self.send_initiation(peer, now, False, out)

    def _encrypt_and_send(self, peer, keypair, now: float, out: list) -> None:
        """WG-GO SendStagedPackets' loop: each staged packet padded, given the next counter and
        sealed; the timer hooks run once for the run (with one `now` they are idempotent)."""
        if not self.bus.trace and self._seal_run(peer, keypair, now, out):
            return
        staged = peer.staged
        endpoint = peer.endpoint
        seal = keypair.send.encrypt
        remote = keypair.remote_index
        mtu = self.mtu
        trace, record = self.bus.trace, self.bus.record
        counter = keypair.send_counter
        first = counter
        sent_bytes = 0
        data_sent = False
        while staged and counter < REJECT_AFTER_MESSAGES:
            packet = staged.popleft()
            length = len(packet)
            if length:
                data_sent = True
                if length <= mtu:  # padded_length's usual case, inline: to 16, never past the MTU
                    target = (length + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1)
                    if target > mtu:
                        target = mtu
                else:
                    target = padded_length(length, mtu)
                if target != length:
                    packet = packet + bytes(target - length)
            data = pack_transport_header(remote, counter) + seal(nonce(counter), packet, None)
            out.append(new_action(SendDatagram, (data, endpoint)))  # SendDatagram(data, endpoint), no Python frame
            sent_bytes += len(data)
            if trace:
                record(TRANSPORT_SENT, now, peer.name, remote, counter, length)
            counter += 1
        keypair.send_counter = counter
        sent = counter - first
        peer.tx_bytes += sent_bytes
        peer.tx_packets += sent
        keypair.tx_packets += sent
        if sent:
            self._timers_sent(peer, now, data_sent)

    def _seal_run(self, peer, keypair, now: float, out: list) -> bool:
        """_encrypt_and_send's loop for the usual queue, a step at a time over the whole queue in C
        (map) rather than a packet at a time: every staged packet is data (none empty: no keepalive)
        within the MTU, and the counter stays short of REJECT_AFTER_MESSAGES to the end of the queue.
        The loop then takes every packet in order, counters from send_counter up, pads each to 16
        capped at the MTU (its inline case: a length already a multiple of 16, or the MTU, stays),
        and its trace records are off (the caller checks). False, with nothing changed, for any
        other queue (a keepalive, a packet past the MTU, the limit mid-queue): the loop takes it."""
        staged = peer.staged
        counter, n, mtu = keypair.send_counter, len(staged), self.mtu
        if counter + n > REJECT_AFTER_MESSAGES:
            return False
        packets = list(staged)
        lengths = list(map(len, packets))
        if not (mtu and lengths.count(mtu) == n):  # every packet at the MTU (bulk): data, no padding
            if not min(lengths) or max(lengths) > mtu:
                return False
            if any(map(and_, lengths, repeat(PADDING_MULTIPLE - 1))):
                packets = list(map(_pad, packets, lengths, repeat(mtu)))
        staged.clear()
        counters = range(counter, counter + n)
        datas = list(map(add, map(pack_transport_header, repeat(keypair.remote_index), counters),
                         map(keypair.send.encrypt, map(nonce, counters), packets, repeat(None))))
        out.extend(map(new_action, repeat(SendDatagram), zip(datas, repeat(peer.endpoint))))
        keypair.send_counter = counter + n
        peer.tx_bytes += sum(map(len, datas))
        peer.tx_packets += n
        keypair.tx_packets += n
        self._timers_sent(peer, now, True)
        return True

    def _timers_sent(self, peer, now: float, data_sent: bool) -> None:
        """The timer hooks of authenticated packets sent (WG-GO SendStagedPackets' loop)."""
        self.timers_any_authenticated_packet_traversal(peer, now)
        self.timers_any_authenticated_packet_sent(peer, now)
        if data_sent:
            self.timers_data_sent(peer, now)

    def send_keepalive(self, peer, now: float, reason: str, out: list) -> None:
        """WG-GO SendKeepalive: an empty packet, unless data is already waiting."""
        if not peer.staged:
            peer.staged.append(b"")
            peer.keepalives_sent += 1
            self.bus.emit(KEEPALIVE_SENT, now, peer.name, reason=reason)
        self.send_staged(peer, now, out)

    # ---------------------------------------------------------------- handshake messages
    def seal_handshake_message(self, peer, message: bytes, kind: str, now: float) -> tuple[bytes, bool]:
        """Publish this handshake's secrets to keylog sinks (if any), then add mac1 and, with a fresh
        cookie, mac2 (WP §5.4.4). Shared by initiations and responses."""
        hs = peer.handshake
        if self.bus.wants_secrets:
            role = "initiator" if kind == "initiation" else "responder"
            self.bus.publish_secret(HandshakeSecrets(now, self.identity.private, peer.public_key,
                                                     hs.local_ephemeral, hs.preshared_key, role))
        data, mac2 = peer.cookies.add_macs(message, now)
        if mac2:
            self.bus.emit(COOKIE_USED, now, peer.name, message=kind,
                          cookie_age=round(now - peer.cookies.cookie_set, 3))
        return data, mac2

    def send_initiation(self, peer, now: float, is_retry: bool, out: list) -> None:
        """WG-GO SendHandshakeInitiation (WP §5.4.2, §6.4)."""
        if not is_retry:
            peer.handshake_attempts = 0
        hs = peer.handshake
        if now - hs.last_sent_handshake < REKEY_TIMEOUT:
            if self.bus.debug:
                self.bus.emit(HANDSHAKE_INITIATION_SKIPPED, now, peer.name, reason="rate_limited")
            return
        if peer.endpoint is None:
            self.bus.emit(HANDSHAKE_INITIATION_SKIPPED, now, peer.name, reason="no_endpoint")
            return
        hs.last_sent_handshake = now
        if hs.local_index:
            self.index_table.pop(hs.local_index, None)
        index = self.new_index((peer, hs), "initiation")
        entropy = self.entropy
        try:
            msg = create_initiation(self.identity, hs, index, entropy.ephemeral_private("initiation", peer.public_key),
                                    entropy.tai64n(self.wall(now)))
        except HandshakeError as e:
            self.index_table.pop(index, None)
            self.bus.emit(HANDSHAKE_INITIATION_SKIPPED, now, peer.name, reason=e.reason)
            return
        hs.initiation_sent_at = now
        attempt = peer.handshake_attempts + 1
        self.bus.emit(HANDSHAKE_INITIATION_CREATED, now, peer.name, sender_index=index, attempt=attempt)
        data, mac2 = self.seal_handshake_message(peer, pack_initiation(msg), "initiation", now)
        out.append(SendDatagram(data, peer.endpoint))
        peer.tx_bytes += len(data)  # WG-GO peer.SendBuffers counts every datagram sent to the peer
        peer.initiations_sent += 1
        peer.initiations_since_handshake += 1
        peer.unanswered_initiations += 1
        self.bus.emit(HANDSHAKE_INITIATION_SENT, now, peer.name, endpoint=endpoint_text(peer.endpoint),
                      sender_index=index, attempt=attempt, mac2=mac2)
        self.timers_any_authenticated_packet_traversal(peer, now)
        self.timers_any_authenticated_packet_sent(peer, now)
        self.timers_handshake_initiated(peer, now)
