"""The observer's transport half: sessions' flows, counters against the core's anti-replay
window, loss as bounded ranges, the parties' keepalive timers run by the core's own hooks
(TimerShadow), and rekeys judged by the core's constants (WP §5.4.6, §6.1-6.5; WG-GO timers.go)."""

from __future__ import annotations

import ipaddress

from cryptography.exceptions import InvalidTag

from ..events import WARNING, EventBus
from ..protocol import ip as ipmod
from ..protocol.constants import (
    KEEPALIVE_TIMEOUT, QUEUE_STAGED_SIZE, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REPLAY_WINDOW_SIZE,
    TRANSPORT_HEADER_SIZE,
    TRANSPORT_MIN_SIZE,
)
from ..protocol.crypto import nonce
from ..protocol.entropy import SYSTEM
from ..protocol.peer import Peer
from ..protocol.timer_hooks import TimerHooks
from ..protocol.timers import SEND_KEEPALIVE, TimerWheel
from ..protocol.messages import transport_fields
from ..protocol.antireplay import DUPLICATE, TOO_OLD
from ..runtime.packets import summarize
from .entropy import EARLY as EARLY_TOLERANCE, LATE as LATE_TOLERANCE
from .model import Flow, Party, Session


def inner_head(packet, version: int) -> bytes:
    """What "proto src > dst" is made of: the protocol and addresses (IPv4 bytes 9 and 12-19,
    IPv6 6 and 8-39). A flow's packets share it, so it keys the summary made once (_inner_key)."""
    return packet[9:10] + packet[12:20] if version == 4 else packet[6:7] + packet[8:40]

class TimerShadow(TimerHooks):
    """The core's own timer hooks (protocol/timer_hooks.py) run for the parties an observer sees:
    a party's send-keepalive timer is armed, cancelled and re-armed by the same code as in a
    node, so its deadline is when the party's own timer comes due (WG-GO timers.go)."""

    def __init__(self) -> None:
        self.bus = EventBus(WARNING)  # an observer is no node: its shadows emit nothing
        self.entropy = SYSTEM
        self.wheel = TimerWheel(self.bus)
        self.index_table = {}
        self.peers: dict[int, Peer] = {}  # party id -> its shadow (a Peer: its timers and flags)
        self.armed_frame: dict[int, int] = {}

    def of(self, party: Party) -> Peer:
        peer = self.peers.get(party.id)
        if peer is None:
            peer = self.peers[party.id] = Peer(party.id.to_bytes(32, "little"))
        return peer

    def send_keepalive(self, peer, now: float, reason: str, out: list) -> None:
        """What the core's expiry handler sends: here, the keepalive the party did send."""
        self.timers_any_authenticated_packet_sent(peer, now)
        self.wheel.next_deadline()  # drop what the cancel left in the heap


class TransportObserver:
    """Mixed into observer.Observer."""

    # ================================================================ transport
    def _transport(self, src: tuple, dst: tuple, data: bytes) -> None:
        r, now, frame = self.r, self.now, self.frame
        receiver, counter = transport_fields(data)
        size = len(data)
        keepalive = size == TRANSPORT_MIN_SIZE
        r.kinds["keepalive" if keepalive else "transport"] += 1
        entry = self._flows.get(receiver)
        if entry is None:
            entry = self._orphan(receiver, src, dst)
        sess, flow = entry
        sender = flow.sender
        if self.annotate:
            self._mark("keepalive" if keepalive else "transport", sender, receiver,
                       "accepted" if flow.cipher is not None else "sealed")
        if sender.endpoints and sender.endpoints[-1] != src:
            self._moved(sender, src)
        sender.tx_packets += 1
        sender.tx_bytes += size
        sec = int(now)
        vol = sender.volume
        vol[sec] = vol.get(sec, 0) + size
        # Expired keypair (WP §6.1): nothing may travel on a keypair older than REJECT_AFTER_TIME.
        if not sess.predates_capture and now - sess.created >= REJECT_AFTER_TIME:
            if not sess.expired_frames:
                self._find("expired_keypair", [frame], f"session {sess.id} used {now - sess.created:.1f} s after "
                           f"it was created; REJECT_AFTER_TIME is {REJECT_AFTER_TIME:g} s", sender)
            sess.expired_frames.append(frame)
        plain = self._authenticate(sess, flow, receiver, counter, data, keepalive)
        if plain is False:
            return
        self._count(sess, flow, receiver, counter, size, keepalive)
        if plain is not None:
            flow.decrypted += 1
            sender.decrypted += 1
            if not plain:
                if self.annotate:
                    self._note(f"keepalive session={sess.id} counter={counter}")
                return
            self._inner(plain, sender, sess, receiver, counter)
        elif self.annotate:
            self._note(f"{'keepalive' if keepalive else 'transport'} session={sess.id} counter={counter} sealed")

    def _authenticate(self, sess: Session, flow: Flow, receiver: int, counter: int, data: bytes, keepalive: bool):
        """The payload (None: sealed, no keys), or False: refused — it does not authenticate, or the
        anti-replay window refuses its counter (WP §5.4.6: checked after authentication)."""
        frame, sender = self.frame, flow.sender
        plain = None
        if flow.cipher is not None:
            try:
                plain = flow.cipher.decrypt(nonce(counter), data[TRANSPORT_HEADER_SIZE:], None)
            except InvalidTag:
                flow.failed += 1
                self._sent_authenticated(sender, keepalive)  # it left the sender; the wire spoiled it
                self._find("decryption_failed", [frame], f"transport 0x{receiver:08x} counter {counter} does not "
                           f"authenticate with session {sess.id}'s keys", sender)
                return False
        refused = flow.replay.check(counter)
        if not refused:
            return plain
        if refused == DUPLICATE:
            first = flow.frame_of.get(counter)
            self._find("replayed", [first, frame] if first else [frame],
                       f"counter {counter} on 0x{receiver:08x} seen again", sender, counter=counter)
        elif refused == TOO_OLD:
            self._find("counter_outside_window", [frame], f"counter {counter} on 0x{receiver:08x} is "
                       f"{flow.max_counter - counter} behind the newest ({flow.max_counter}); the window is "
                       f"{REPLAY_WINDOW_SIZE}", sender, counter=counter)
        else:
            self._find("malformed", [frame], f"counter {counter} past REJECT_AFTER_MESSAGES", sender)
        return False

    def _count(self, sess: Session, flow: Flow, receiver: int, counter: int, size: int, keepalive: bool) -> None:
        """An accepted message: loss and reordering, the flow's counts, the receivers' timers."""
        now, frame, sender = self.now, self.frame, flow.sender
        if counter > flow.max_counter:
            if counter > flow.max_counter + 1 and (flow.max_counter >= 0 or not sess.predates_capture):
                flow.missing.add(flow.max_counter + 1, counter - 1, flow.frame_of.get(flow.max_counter), frame)
            flow.max_counter = counter
        else:
            flow.missing.fill(counter)
            self._find("reordered", [flow.frame_of.get(flow.max_counter) or frame, frame],
                       f"counter {counter} on 0x{receiver:08x} arrived after counter {flow.max_counter}", sender,
                       counter=counter)
        flow.frame_of.add(counter, frame, flow.max_counter)
        flow.packets += 1
        flow.bytes += size
        if flow.first_time is None:
            flow.first_time, flow.first_frame = now, frame
        flow.last_time = now
        if keepalive:
            flow.keepalives += 1
            sender.keepalives += 1
        else:
            flow.data_packets += 1
            sender.data_packets += 1
        first_from_initiator = flow is sess.i2r and sess.confirmed_frame is None
        if first_from_initiator:
            sess.confirmed_frame = frame
        self._sent_authenticated(sender, keepalive, sess=sess, first=first_from_initiator)
        receiver_party = sess.responder if flow is sess.i2r else sess.initiator
        if not keepalive:
            self._data_received(receiver_party)
        self._check_rekey_due(sess, flow, keepalive)

    def _inner_key(self, head: bytes, packet) -> str:
        """The "proto src > dst" of `packet` (whose inner_head is `head`), summarized once per head."""
        s = summarize(packet)
        key = self._inner_keys[head] = f"{s.get('proto')} {s.get('src')} > {s.get('dst')}"
        return key

    def _inner(self, plain: bytes, sender: Party, sess: Session, receiver: int, counter: int) -> None:
        now = self.now
        try:
            length, ver, source = ipmod.inbound(plain)
            plain = plain[:length]
        except ipmod.InvalidPacket:
            self._find("malformed", [self.frame], "decrypted transport data is not an IP packet", sender)
            return
        flow = sess.i2r if sender is sess.initiator else sess.r2i
        if flow is not None:
            flow.inner_bytes += len(plain)
            if len(flow.head) < QUEUE_STAGED_SIZE and flow.packets <= QUEUE_STAGED_SIZE:
                flow.head.append((now, counter, plain))
        head = inner_head(plain, ver)
        key = self._inner_keys.get(head) or self._inner_key(head, plain)
        inner = self.r.inner
        inner[key] = inner.get(key, 0) + 1
        if sender.public_key in self.keep_plain_of:
            self.plain = plain
        if self.keep_decrypted:
            self.r.decrypted_packets.append(plain)
            self.r.decrypted_times.append(now)
        if self.annotate:
            self._note(f"data session={sess.id} counter={counter} inner={key}")
        if sender.public_key is not None:
            self._check_source(sender, ver, source)

    def _check_source(self, sender: Party, ver: int, source: bytes) -> None:
        """An inner packet's source must be in its sender's allowed IPs, when a configuration says them."""
        if not self._source_allowed(sender, ver, source):
            nets = self.keyring.allowed(sender.public_key)
            addr = ipmod.address_text(ver, int.from_bytes(source, "big"))
            self._find("source_not_allowed", [self.frame], f"{sender.name} sent a packet from {addr}, "
                       f"outside its allowed IPs {', '.join(map(str, nets)) or '(none)'}", sender, src=addr)

    def _source_allowed(self, sender: Party, ver: int, source: bytes) -> bool:
        """True when no configuration says the sender's allowed IPs, or they hold `source`."""
        nets = self.keyring.allowed(sender.public_key)
        if nets is None:
            return True
        a = ipaddress.ip_address(ipmod.address_text(ver, int.from_bytes(source, "big")))
        return any(a.version == n.version and a in n for n in nets)

    def _orphan(self, receiver: int, src: tuple, dst: tuple) -> tuple[Session, Flow]:
        """Transport for an index no handshake created: a session older than the capture (or an error)."""
        sender = self._party(src, None)
        receiver_party = self._party(dst, None)
        # The other direction of the same session, if already seen, has the endpoints swapped.
        halves = self._orphan_halves
        sess = halves.pop((receiver_party.id, sender.id), None)
        if sess is not None:
            sess.r2i = Flow(sender, receiver)
            sess.initiator_index = receiver
            self._flows[receiver] = (sess, sess.r2i)
            return sess, sess.r2i
        sess = Session(len(self.r.sessions) + 1, sender, receiver_party, None, receiver, self.now,
                       predates_capture=True, sealed_reason="handshake_not_captured")
        sess.i2r = Flow(sender, receiver)
        self.r.sessions.append(sess)
        self._flows[receiver] = (sess, sess.i2r)
        halves[(sender.id, receiver_party.id)] = sess
        return sess, sess.i2r

    # ================================================================ timers, replayed
    def _data_received(self, party: Party) -> None:
        shadows = self._timers
        peer = shadows.of(party)
        if not peer.timers[SEND_KEEPALIVE].pending:
            shadows.armed_frame[party.id] = self.frame
        shadows.timers_data_received(peer, self.now)

    def _sent_authenticated(self, party: Party, keepalive: bool, sess: Session | None = None,
                            first: bool = False) -> None:
        """A party's authenticated send: a passive keepalive is its send-keepalive timer expiring
        (judged against the deadline the core's hooks set); anything else cancels that timer."""
        shadows, now = self._timers, self.now
        peer = shadows.of(party)
        timer = peer.timers[SEND_KEEPALIVE]
        if keepalive and not (first and sess is not None and sess.handshake is not None and now - sess.created < 1.0):
            if timer.pending:
                delay = now - (timer.deadline - KEEPALIVE_TIMEOUT)
                early = now < timer.deadline - EARLY_TOLERANCE and not party.persistent_keepalive_seen
                if early or now > timer.deadline + LATE_TOLERANCE:
                    self._find("keepalive_timing", [shadows.armed_frame.get(party.id, self.frame), self.frame],
                               f"{party.name} sent a keepalive {delay:.3f} s after the data it answers; "
                               f"KEEPALIVE_TIMEOUT is {KEEPALIVE_TIMEOUT:g} s", party, delay=round(delay, 6))
                shadows.wheel.cancel(timer, now)
                shadows.expired_send_keepalive(peer, now, [])  # the core's own expiry: sent, maybe re-armed
                if timer.pending:
                    shadows.armed_frame[party.id] = self.frame
                return
            party.persistent_keepalive_seen = True  # not a passive keepalive: persistent or scheduled
        elif keepalive:
            self._note("keepalive confirms the new session")
        shadows.timers_any_authenticated_packet_sent(peer, now)
        shadows.wheel.next_deadline()

    def _check_rekey_due(self, sess: Session, flow: Flow, keepalive: bool) -> None:
        """The session initiator must start a rekey when it sends after REKEY_AFTER_TIME (WP §6.2)."""
        if flow is not sess.i2r or sess.handshake is None or sess.rekey_reported:
            return
        age = self.now - sess.created
        if age <= REKEY_AFTER_TIME:
            return
        if self._current.get((sess.initiator.id, sess.responder.id)) is not sess:
            return  # a newer session exists: rekeyed
        last = self._last_initiation.get((sess.initiator.id, sess.responder.id))
        if last is not None and last.time > sess.created + REKEY_AFTER_TIME - EARLY_TOLERANCE:
            return  # a rekey is under way
        if keepalive:
            return
        if sess.rekey_due_since is None:
            sess.rekey_due_since = self.now
            return
        if self.now - sess.rekey_due_since > LATE_TOLERANCE:
            sess.rekey_reported = True
            self._find("rekey_timing", [sess.handshake.response_frame or sess.handshake.frame, self.frame],
                       f"{sess.initiator.name} still sends on session {sess.id} at age {age:.1f} s without "
                       f"starting a rekey; REKEY_AFTER_TIME is {REKEY_AFTER_TIME:g} s", sess.initiator,
                       age=round(age, 3))

