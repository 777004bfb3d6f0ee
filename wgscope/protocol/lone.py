"""The short way of a packet that comes alone (WG-GO has one way; this is a shortcut to it).

At ping rates, and for every lone packet at low rates, each step of a hop runs cold (the caches
emptied between two packets on the VM measured, bench/README.md sections 12, 14), so a lone
packet pays for every distinct piece of code it runs. send_packets and receive_datagrams hand a
batch of one to these first: in the usual case (a data packet, a current keypair short of its
limits, the peer's endpoint, nothing queued) they do what the long way does (the same checks,
counters, replay window, timer hooks and actions) with less code between them; any other case
returns None before any change of state, and the long way takes it (bench/README.md section 16:
the core's share of a ping round trip ~12% less). tests/test_lone_packet.py runs both ways.
A change to the long way's rules (send.py, receive.py, timer_hooks.py) that touches the usual
case must be made here too, or make that case return None: the test compares the two.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag

from .actions import SendDatagram, WritePacket, new_action
from .constants import (
    MESSAGE_TRANSPORT, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME,
    TRANSPORT_HEADER_SIZE, TRANSPORT_MIN_SIZE,
)
from .crypto import nonce
from .messages import head_word, pack_transport_header, transport_fields
from .send import padded_length
from . import ip


class LonePath:
    """Mixed into Device beside SendPath and ReceivePath, whose state and methods it uses."""

    def _send_lone(self, packet, now: float) -> list | None:
        """One packet read alone (a ping, at low rates every packet) in the usual case: routed to a
        peer with an endpoint, nothing staged before it, a current keypair far from every limit.
        It leaves as send_packets would send it (staged, sealed, the same timer hooks), without the
        batch's staging queue, peer list and calls. None, with nothing changed, when the packet
        is not that case: send_packets then takes it the long way."""
        version = packet[0] >> 4 if packet else 0
        if version == 4 and len(packet) >= 20:
            peer = self.allowed_ips.lookup_v4(int.from_bytes(packet[16:20], "big"))
        elif version == 6 and len(packet) >= 40:
            peer = self.allowed_ips.lookup_v6(int.from_bytes(packet[24:40], "big"))
        else:
            return None
        if peer is None or peer.endpoint is None or peer.staged:
            return None
        keypair = peer.keypairs.current
        if keypair is None or keypair.send is None:
            return None
        counter = keypair.send_counter
        # Short of REKEY_AFTER_*, so short of REJECT_AFTER_* too: neither _expired nor
        # _keep_key_fresh_sending would act.
        if now - keypair.created > REKEY_AFTER_TIME or counter >= REKEY_AFTER_MESSAGES:
            return None
        length = len(packet)
        target = padded_length(length, self.mtu)
        if target != length:
            packet = packet + bytes(target - length)
        data = pack_transport_header(keypair.remote_index, counter) + keypair.send.encrypt(nonce(counter), packet, None)
        keypair.send_counter = counter + 1
        peer.tx_bytes += len(data)
        peer.tx_packets += 1
        keypair.tx_packets += 1
        self._timers_sent(peer, now, True)
        return [new_action(SendDatagram, (data, peer.endpoint))]

    def _receive_lone(self, data, endpoint: tuple, now: float) -> list | None:
        """One datagram received alone (a ping's, at low rates every one) in the usual case: a data
        packet of a current keypair from the peer's endpoint, from an address the peer may use.
        It is handled as receive_datagrams would handle it (the same checks, counters, replay
        window and timer hooks), without the batch's loop, dicts and calls. A forgery or a replayed
        counter is dropped here as there. None, with nothing changed, when the datagram is not that
        case: receive_datagrams then takes it the long way (a keepalive, roaming, a new keypair's
        first packet, errors)."""
        if len(data) < TRANSPORT_MIN_SIZE or head_word(data)[0] != MESSAGE_TRANSPORT:
            return None
        receiver, counter = transport_fields(data)
        entry = self.index_table.get(receiver)
        if entry is None:
            return None
        peer, keypair = entry
        if keypair is not peer.keypairs.current or endpoint != peer.endpoint or counter >= REJECT_AFTER_MESSAGES:
            return None
        aead = keypair.recv
        if aead is None or now - keypair.created >= REJECT_AFTER_TIME:
            return None
        try:
            plain = aead.decrypt(nonce(counter), data[TRANSPORT_HEADER_SIZE:], None)
        except InvalidTag:
            self._drop(peer, "decryption_failed", "transport", endpoint, now, receiver)
            return []
        try:
            length, ver, source = ip.inbound(plain)  # b"" (a keepalive) is not a packet: the long way
        except ip.InvalidPacket:
            return None
        lookup = self.allowed_ips.lookup_v4 if ver == 4 else self.allowed_ips.lookup_v6
        if lookup(int.from_bytes(source, "big")) is not peer:
            return None
        refused = keypair.replay.check(counter)  # the first change of state
        if refused:
            self._drop(peer, refused, "transport", endpoint, now, receiver)
            return []
        peer.rx_bytes += len(data)
        peer.rx_packets += 1
        keypair.rx_packets += 1
        out = [new_action(WritePacket, (plain[:length] if length != len(plain) else plain,))]
        self._timers_received(peer, now, 1, out)
        return out
