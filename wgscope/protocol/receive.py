"""The inbound path: message dispatch, handshake consumption, cookies, transport data
(WP §5.3–5.4; WG-GO device/receive.go; kernel receive.c).

The methods that cause actions append them to an `out` list the entry point made and returns.
"""

from __future__ import annotations

from collections import Counter

from cryptography.exceptions import InvalidTag

from ..events import (
    COOKIE_REPLY_RECEIVED, COOKIE_REPLY_REJECTED, COOKIE_REPLY_SENT, ENDPOINT_CHANGED,
    HANDSHAKE_COMPLETED, HANDSHAKE_INITIATION_CONSUMED, HANDSHAKE_INITIATION_RECEIVED,
    HANDSHAKE_INITIATION_REJECTED, HANDSHAKE_RESPONSE_CONSUMED, HANDSHAKE_RESPONSE_CREATED,
    HANDSHAKE_RESPONSE_RECEIVED, HANDSHAKE_RESPONSE_REJECTED, HANDSHAKE_RESPONSE_SENT, KEEPALIVE_RECEIVED,
    KEYPAIR_CONFIRMED, KEYPAIR_EXPIRED, PACKET_DROPPED, REKEY_WANTED, SOURCE_ALLOWED, SOURCE_REJECTED,
    TRANSPORT_RECEIVED, M64, EventBus,
)
from .allowedips import AllowedIPs
from .actions import SendDatagram, WritePacket, new_action
from .constants import (
    HANDSHAKE_INITIATION_RATE, INITIATION_SIZE, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_TRANSPORT,
    REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_ON_RECEIVE_AGE, RESPONSE_SIZE, TRANSPORT_HEADER_SIZE,
    TRANSPORT_MIN_SIZE,
)
from .cookie import CookieChecker, endpoint_bytes
from .entropy import Entropy
from .crypto import AuthenticationError, nonce
from .keypair import Keypair
from .messages import (
    Initiation, MessageError, Response, head_word, kind_name, message_type, pack_response, parse_cookie_reply,
    parse_initiation, parse_response, transport_fields,
)
from .noise import (
    HandshakeError, HandshakeState, StaticIdentity, accept_initiation, consume_response, create_response,
    open_initiation,
)
from .endpoint import endpoint_text
from .ratelimiter import RateLimiter
from ..keytext import encode
from . import ip, lookahead

_UNKNOWN = object()


class ReceivePath:
    """Mixed into Device. The device state it reads and writes (Device.__init__ sets it):"""

    bus: EventBus
    entropy: Entropy
    identity: StaticIdentity
    peers: dict
    allowed_ips: AllowedIPs
    index_table: dict
    cookie_checker: CookieChecker
    ratelimiter: RateLimiter
    cookies_sent: int
    drops: Counter
    # An adapter's handshake look-ahead (runtime/handshake_ahead.py; protocol/lookahead.py says what
    # it may compute): submit(private, ephemerals) and take(private, ephemeral) -> DH or None.
    ahead = None

    def receive_datagram(self, data: bytes, endpoint: tuple, now: float) -> list:
        """A UDP datagram from `endpoint` (host, port). Returns the actions it causes."""
        return self.receive_datagrams((data,), endpoint, now)

    def receive_datagrams(self, datagrams, endpoint: tuple, now: float) -> list:
        """UDP datagrams (bytes-like) from one `endpoint`, in the order they came (a GRO receive
        gives many at once). Each is handled exactly as alone would be, except that the timer hooks of a run
        of transport packets of one peer run once, after the run (WG-GO runs them per packet
        with the same effect: with one `now` they are idempotent after two calls)."""
        if len(datagrams) == 1 and not self.bus.trace:
            out = self._receive_lone(datagrams[0], endpoint, now)
            if out is not None:
                return out
        out: list = []
        authenticated: dict = {}  # peer -> data packets authenticated since the last _after_transport
        owners: dict = {}  # inner source address -> allowed-IPs owner, looked up once per batch
        receive_transport = self._receive_transport
        for data in datagrams:
            if len(data) >= TRANSPORT_MIN_SIZE and head_word(data)[0] == MESSAGE_TRANSPORT:
                receive_transport(data, endpoint, now, out, authenticated, owners)
                continue
            if authenticated:
                self._after_transport(now, out, authenticated)
            data = bytes(data)  # a GRO receive hands memoryviews; handshake code keeps and hashes bytes
            try:
                kind = message_type(data)
            except MessageError as e:
                self._drop(None, e.reason, kind_name(data), endpoint, now)
                continue
            if kind == MESSAGE_COOKIE_REPLY:
                self._receive_cookie_reply(data, endpoint, now)
            else:
                self._receive_handshake(kind, data, endpoint, now, out)
        if authenticated:
            self._after_transport(now, out, authenticated)
        return out

    def wants_look_ahead(self, now: float) -> bool:
        """Under load (a handshake flood), an adapter with a look-ahead reads a wake-up's datagrams
        before handing them over, and calls look_ahead with them first."""
        return self.ahead is not None and self.loaded_at(now)

    def look_ahead(self, batch, now: float) -> None:
        """`batch`: (datagrams, endpoint, ...) per receive of the wake-up about to be handed over."""
        if self.ahead is not None:
            ephemerals = lookahead.candidates(self, batch, now)
            if ephemerals:
                self.ahead.submit(self.identity.private, ephemerals)

    def _after_transport(self, now: float, out: list, authenticated: dict) -> None:
        """The per-packet bookkeeping of WG-GO RoutineSequentialReceiver for the transport packets
        authenticated since the last call: keepKeyFreshReceiving and the timers, per peer."""
        batch = list(authenticated.items())
        authenticated.clear()
        for peer, data_packets in batch:
            self._timers_received(peer, now, data_packets, out)

    def _timers_received(self, peer, now: float, data_packets: int, out: list) -> None:
        self._keep_key_fresh_receiving(peer, now, out)
        self.timers_any_authenticated_packet_traversal(peer, now)
        self.timers_any_authenticated_packet_received(peer, now)
        if data_packets:
            self.timers_data_received(peer, now)
            if data_packets > 1:
                self.timers_data_received(peer, now)  # a second data packet finds the timer pending

    def _drop(self, peer, reason: str, kind: str, endpoint, now: float, receiver_index: int | None = None) -> None:
        (peer.drops if peer is not None else self.drops)[reason] += 1
        self.bus.emit(PACKET_DROPPED, now, peer.name if peer is not None else None, reason=reason, kind=kind,
                      endpoint=endpoint_text(endpoint), receiver_index=receiver_index)

    # ---------------------------------------------------------------- handshake messages
    def _receive_handshake(self, kind: int, data: bytes, endpoint: tuple, now: float, out: list) -> None:
        """WG-GO RoutineHandshake: mac1, then under load mac2 (else a cookie reply), then rate limit."""
        initiation = kind == MESSAGE_INITIATION
        msg = parse_initiation(data) if initiation else parse_response(data)
        ep = endpoint_text(endpoint)
        self.note_handshake_message(now)
        if not self.cookie_checker.check_mac1(data):
            self._reject_handshake(msg, "bad_mac1", ep, now)
            return
        if self.is_under_load(now):
            src = endpoint_bytes(endpoint[0], endpoint[1])
            if not self.cookie_checker.check_mac2(data, src, now):
                reply = self.cookie_checker.create_reply(data, msg.sender, src, now)
                out.append(SendDatagram(reply, endpoint))
                self.cookies_sent += 1
                self.bus.emit(COOKIE_REPLY_SENT, now, None, endpoint=ep, receiver_index=msg.sender,
                              message="initiation" if initiation else "response")
                self._reject_handshake(msg, "bad_mac2", ep, now)
                return
            if not self.ratelimiter.allow(endpoint[0], now):
                self._reject_handshake(msg, "rate_limited", ep, now)
                return
        if initiation:
            self._receive_initiation(msg, endpoint, ep, now, out)
        else:
            self._receive_response(msg, endpoint, now, out)

    def _reject_handshake(self, msg, reason: str, ep: str, now: float) -> None:
        """A handshake message refused before it was opened (mac1, mac2, rate limit): no peer known."""
        self.drops[reason] += 1
        if type(msg) is Initiation:
            self.bus.emit(HANDSHAKE_INITIATION_REJECTED, now, None, endpoint=ep, reason=reason, public_key=None)
        else:
            self.bus.emit(HANDSHAKE_RESPONSE_REJECTED, now, None, endpoint=ep, reason=reason,
                          receiver_index=msg.receiver)

    def _receive_initiation(self, msg: Initiation, endpoint: tuple, ep: str, now: float, out: list) -> None:
        bus = self.bus
        if bus.debug:  # a debug event: no fields built at the default level
            bus.emit(HANDSHAKE_INITIATION_RECEIVED, now, None, endpoint=ep, sender_index=msg.sender)
        dh = self.ahead.take(self.identity.private, msg.ephemeral) if self.ahead is not None else None
        try:
            opened = open_initiation(self.identity, msg, self._static_static, dh=dh)
        except HandshakeError as e:
            self.drops[e.reason] += 1
            presented = encode(e.remote_static) if e.remote_static else None  # a public key: not a secret
            bus.emit(HANDSHAKE_INITIATION_REJECTED, now, None, endpoint=ep, reason=e.reason, public_key=presented)
            return
        peer = self.peers[opened.remote_static]
        hs = peer.handshake
        try:
            accept_initiation(hs, opened, now, HANDSHAKE_INITIATION_RATE)
        except HandshakeError as e:
            peer.drops[e.reason] += 1
            bus.emit(HANDSHAKE_INITIATION_REJECTED, now, peer.name, endpoint=ep, reason=e.reason,
                     public_key=peer.name)
            return
        peer.rx_bytes += INITIATION_SIZE  # WG-GO receive.go counts a consumed initiation in rxBytes
        bus.emit(HANDSHAKE_INITIATION_CONSUMED, now, peer.name, endpoint=ep, sender_index=msg.sender)
        self._update_endpoint(peer, endpoint, now)
        self.timers_any_authenticated_packet_traversal(peer, now)
        self.timers_any_authenticated_packet_received(peer, now)
        self._send_response(peer, ep, now, out)

    def _static_static(self, remote_static: bytes) -> bytes | None:
        peer = self.peers.get(remote_static)
        return None if peer is None else peer.handshake.precomputed_static_static

    def _send_response(self, peer, ep: str, now: float, out: list) -> None:
        """`ep`: the text of peer.endpoint, which the initiation just set (_update_endpoint)."""
        hs = peer.handshake
        if hs.local_index:
            self.index_table.pop(hs.local_index, None)
        index = self.new_index((peer, hs), "response")
        try:
            private, public = self.entropy.ephemeral_keypair("response", peer.public_key)
            msg = create_response(hs, index, private, ephemeral_public=public)
        except HandshakeError as e:
            self.index_table.pop(index, None)
            peer.drops[e.reason] += 1
            self.bus.emit(HANDSHAKE_INITIATION_REJECTED, now, peer.name, endpoint=ep, reason=e.reason,
                          public_key=peer.name)
            return
        self.bus.emit(HANDSHAKE_RESPONSE_CREATED, now, peer.name, sender_index=index, receiver_index=hs.remote_index)
        data, _ = self.seal_handshake_message(peer, pack_response(msg), "response", now)
        remote_index = hs.remote_index
        self.begin_session(peer, now)  # responder: keypair goes to "next"
        out.append(SendDatagram(data, peer.endpoint))
        peer.tx_bytes += len(data)  # WG-GO peer.SendBuffers counts every datagram sent to the peer
        self.bus.emit(HANDSHAKE_RESPONSE_SENT, now, peer.name, endpoint=ep, sender_index=index,
                      receiver_index=remote_index)
        self.timers_any_authenticated_packet_traversal(peer, now)
        self.timers_any_authenticated_packet_sent(peer, now)

    def _receive_response(self, msg: Response, endpoint: tuple, now: float, out: list) -> None:
        ep = endpoint_text(endpoint)
        self.bus.emit(HANDSHAKE_RESPONSE_RECEIVED, now, None, endpoint=ep, sender_index=msg.sender,
                      receiver_index=msg.receiver)
        entry = self.index_table.get(msg.receiver)
        if entry is None or not isinstance(entry[1], HandshakeState):
            # an index that names a session already (a replayed response) is as unknown as a made-up one
            reason = "unknown_index" if entry is None else "wrong_state"
            self.drops[reason] += 1
            self.bus.emit(HANDSHAKE_RESPONSE_REJECTED, now, entry[0].name if entry else None, endpoint=ep,
                          reason=reason, receiver_index=msg.receiver)
            return
        peer, hs = entry
        try:
            consume_response(self.identity, hs, msg)
        except HandshakeError as e:
            peer.drops[e.reason] += 1
            self.bus.emit(HANDSHAKE_RESPONSE_REJECTED, now, peer.name, endpoint=ep, reason=e.reason,
                          receiver_index=msg.receiver)
            return
        peer.rx_bytes += RESPONSE_SIZE  # WG-GO receive.go counts a consumed response in rxBytes
        peer.unanswered_initiations = 0
        self.bus.emit(HANDSHAKE_RESPONSE_CONSUMED, now, peer.name, endpoint=ep, sender_index=msg.sender,
                      receiver_index=msg.receiver)
        self._update_endpoint(peer, endpoint, now)
        self.timers_any_authenticated_packet_traversal(peer, now)
        self.timers_any_authenticated_packet_received(peer, now)
        rtt = round(now - hs.initiation_sent_at, 6) if hs.initiation_sent_at is not None else None
        self.begin_session(peer, now)  # initiator: keypair becomes current
        peer.handshakes_completed += 1
        self.bus.emit(HANDSHAKE_COMPLETED, now, peer.name, role="initiator", rtt=rtt)
        self.timers_session_derived(peer, now)
        self.timers_handshake_complete(peer, now)
        self.send_keepalive(peer, now, "handshake_confirm", out)

    def _receive_cookie_reply(self, data: bytes, endpoint: tuple, now: float) -> None:
        msg = parse_cookie_reply(data)
        ep = endpoint_text(endpoint)
        entry = self.index_table.get(msg.receiver)
        if entry is None:
            self.drops["unknown_index"] += 1
            self.bus.emit(COOKIE_REPLY_REJECTED, now, None, endpoint=ep, reason="unknown_index",
                          receiver_index=msg.receiver)
            return
        peer = entry[0]
        try:
            peer.cookies.consume_reply(msg, now)
        except AuthenticationError as e:
            reason = e.reason
            peer.drops["cookie_" + reason] += 1
            self.bus.emit(COOKIE_REPLY_REJECTED, now, peer.name, endpoint=ep, reason=reason,
                          receiver_index=msg.receiver)
            return
        peer.cookies_received += 1
        peer.unanswered_initiations = 0  # the peer answered, if only with "under load"
        self.bus.emit(COOKIE_REPLY_RECEIVED, now, peer.name, endpoint=ep, receiver_index=msg.receiver)

    # ---------------------------------------------------------------- transport data
    def _receive_transport(self, data: bytes, endpoint: tuple, now: float, out: list, authenticated: dict,
                           owners: dict) -> None:
        """One transport message; the timer hooks of the authenticated ones wait in `authenticated`
        for _after_transport (receive_datagrams). Longer than 60 lines on purpose: it runs once per
        datagram received, and each function call split out of it costs receive throughput
        (bench/README.md, "Where the time per packet goes")."""
        receiver, counter = transport_fields(data)
        entry = self.index_table.get(receiver)
        if entry is None or type(entry[1]) is not Keypair:
            self._drop(None, "unknown_index", "transport", endpoint, now, receiver)
            return
        peer, keypair = entry
        if keypair.recv is None or now - keypair.created >= REJECT_AFTER_TIME:
            if not keypair.expired_reported:
                keypair.expired_reported = True
                self.bus.emit(KEYPAIR_EXPIRED, now, peer.name, local_index=keypair.local_index,
                              reason="reject_after_time", age=round(now - keypair.created, 3))
            self._drop(peer, "keypair_expired", "transport", endpoint, now, receiver)
            return
        if counter >= REJECT_AFTER_MESSAGES:
            self._drop(peer, "counter_limit", "transport", endpoint, now, receiver)
            return
        try:
            plain = keypair.recv.decrypt(nonce(counter), data[TRANSPORT_HEADER_SIZE:], None)
        except InvalidTag:
            self._drop(peer, "decryption_failed", "transport", endpoint, now, receiver)
            return
        refused = keypair.replay.check(counter)
        if refused:
            self._drop(peer, refused, "transport", endpoint, now, receiver)
            return
        if endpoint != peer.endpoint:
            self._update_endpoint(peer, endpoint, now)
        peer.rx_bytes += len(data)
        peer.rx_packets += 1
        keypair.rx_packets += 1
        if keypair is peer.keypairs.next:
            if authenticated:
                self._after_transport(now, out, authenticated)  # the packets before the confirmation keep their order
            self.confirm_next(peer, keypair, now, out)
        if not plain:
            authenticated.setdefault(peer, 0)
            peer.keepalives_received += 1
            if self.bus.debug:
                self.bus.emit(KEEPALIVE_RECEIVED, now, peer.name)
            return
        authenticated[peer] = authenticated.get(peer, 0) + 1
        if self.bus.trace:
            self.bus.record(TRANSPORT_RECEIVED, now, peer.name, receiver, counter, len(plain))
        try:
            length, ver, source = ip.inbound(plain)
        except ip.InvalidPacket:
            self._drop(peer, "invalid_inner_packet", "transport", endpoint, now, receiver)
            return
        if length != len(plain):
            plain = plain[:length]  # the padding (WP §5.4.6)
        owner = owners.get(source, _UNKNOWN)  # a batch's sources are looked up once (4 or 16 bytes: no clash)
        if owner is _UNKNOWN:
            src = int.from_bytes(source, "big")
            owner = owners[source] = (self.allowed_ips.lookup_v4 if ver == 4 else self.allowed_ips.lookup_v6)(src)
        if owner is not peer:
            peer.drops["source_not_allowed"] += 1
            self.bus.emit(SOURCE_REJECTED, now, peer.name, src=ip.address_text(ver, int.from_bytes(source, "big")),
                          owner=owner.name if owner is not None else None, endpoint=endpoint_text(endpoint),
                          receiver_index=receiver)
            return
        if self.bus.trace:  # a per-packet record: integers only, the address text is made when read
            n = int.from_bytes(source, "big")
            self.bus.record(SOURCE_ALLOWED, now, peer.name, ver, n >> 64, n & M64)
        out.append(new_action(WritePacket, (plain,)))  # WritePacket(plain), no Python frame

    def confirm_next(self, peer, keypair, now: float, out: list) -> None:
        """WG-GO ReceivedWithKeypair: the responder's next keypair is confirmed by data."""
        kps = peer.keypairs
        old = kps.previous
        kps.previous, kps.current, kps.next = kps.current, keypair, None
        if old is not None:
            self.retire_keypair(old)
        peer.handshakes_completed += 1
        self.bus.emit(KEYPAIR_CONFIRMED, now, peer.name, local_index=keypair.local_index)
        self.emit_rotation(peer, now)
        self.bus.emit(HANDSHAKE_COMPLETED, now, peer.name, role="responder", rtt=None)
        self.timers_handshake_complete(peer, now)
        self.send_staged(peer, now, out)

    def _keep_key_fresh_receiving(self, peer, now: float, out: list) -> None:
        """WG-GO keepKeyFreshReceiving: an initiator near REJECT_AFTER_TIME rekeys on receive."""
        if peer.sent_last_minute_handshake:
            return
        kp = peer.keypairs.current
        if kp is not None and kp.is_initiator and now - kp.created > REKEY_ON_RECEIVE_AGE:
            peer.sent_last_minute_handshake = True
            self.bus.emit(REKEY_WANTED, now, peer.name, reason="reject_soon_on_receive",
                          age=round(now - kp.created, 3))
            self.send_initiation(peer, now, False, out)

    def _update_endpoint(self, peer, endpoint: tuple, now: float) -> None:
        """Roaming (WP §2.1): the endpoint is the source of the latest authenticated packet."""
        if endpoint != peer.endpoint:
            old = peer.endpoint
            peer.endpoint = endpoint
            self.bus.emit(ENDPOINT_CHANGED, now, peer.name, old=endpoint_text(old), new=endpoint_text(endpoint),
                          cause="roaming")
