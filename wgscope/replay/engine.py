"""Drive a capture's WireGuard datagrams through the protocol code, capture time as the clock.

The engine is an observer on the wire, not one of the two nodes: it parses every datagram
with protocol/messages.py, computes the handshake with whatever keys it has (passive.py, on
protocol/crypto.py), checks counters with protocol/antireplay.py's window, decrypts transport
data with the derived keys, and emits the same events (events.py) the receiving node would.
What it concludes lands in a `Replay` (model.py objects plus findings).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .. import events as ev
from ..events import EventBus
from ..keytext import encode
from ..protocol import ip as ipmod
from ..protocol.constants import (
    KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE,
    MESSAGE_TRANSPORT, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT,
    REKEY_TIMEOUT_JITTER_MAX, TRANSPORT_HEADER_SIZE, TRANSPORT_MIN_SIZE,
)
from ..protocol.crypto import MAC, XAEAD_OPEN, AuthenticationError, nonce
from ..protocol.messages import MessageError, message_type, parse_cookie_reply, parse_initiation, parse_response
from ..protocol.antireplay import DUPLICATE, TOO_OLD
from ..protocol import tai64n
from ..runtime.packets import summarize
from .findings import Finding, frame_ranges
from .keys import KeyRing
from .model import CookieExchange, Flow, Handshake, Party, Roam, Session, endpoint_text
from . import passive

# Tolerances for timing checks: capture timestamps are taken by the capturing host, a little
# after the sender's timer fired; Go's and Python's timers run late, never early.
EARLY_TOLERANCE = 0.05
LATE_TOLERANCE = 1.0

_transport_header = struct.Struct("<IIQ")


@dataclass
class Replay:
    """Everything one replay reconstructed."""

    parties: list[Party] = field(default_factory=list)
    handshakes: list[Handshake] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    roams: list[Roam] = field(default_factory=list)
    cookies: list[CookieExchange] = field(default_factory=list)
    frames: int = 0  # frames in the capture
    wireguard: int = 0  # WireGuard datagrams among them
    other: int = 0  # frames that are not WireGuard (other UDP, not UDP, unparsable)
    first_time: float | None = None
    last_time: float | None = None
    kinds: dict = field(default_factory=lambda: {"initiation": 0, "response": 0, "cookie_reply": 0,
                                                 "transport": 0, "keepalive": 0})
    inner: dict = field(default_factory=dict)  # "proto src > dst" -> packets
    keys: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)  # plain statements (e.g. transport needs ephemeral keys)
    frame_notes: dict = field(default_factory=dict)  # frame -> list of note strings (when annotating)
    frame_meta: dict = field(default_factory=dict)  # frame -> {kind, peer, index, verdict} (when annotating)
    decrypted_packets: list = field(default_factory=list)  # (time, inner packet) when asked

    def as_dict(self) -> dict:
        return {
            "frames": self.frames, "wireguard": self.wireguard, "other": self.other,
            "first_time": self.first_time, "last_time": self.last_time, "kinds": dict(self.kinds),
            "keys": self.keys, "notices": list(self.notices),
            "parties": [p.as_dict() for p in self.parties],
            "handshakes": [h.as_dict() for h in self.handshakes],
            "sessions": [s.as_dict() for s in self.sessions],
            "roams": [{"party": r.party.name, "frame": r.frame, "time": r.time, "old": endpoint_text(r.old),
                       "new": endpoint_text(r.new)} for r in self.roams],
            "cookies": [{"frame": c.frame, "time": c.time, "sender": c.sender.name, "receiver": c.receiver.name,
                         "handshake": c.handshake.id if c.handshake else None, "decrypted": c.decrypted}
                        for c in self.cookies],
            "inner": dict(self.inner),
            "findings": [f.as_dict() for f in self.findings],
        }

    def findings_of(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]


class _KeepaliveWatch:
    """The receiving side's send-keepalive timer, replayed (WG-GO timers.go timersDataReceived)."""

    __slots__ = ("armed_at", "armed_frame", "need_another")

    def __init__(self) -> None:
        self.armed_at: float | None = None
        self.armed_frame = 0
        self.need_another = False


class Engine:
    def __init__(self, keyring: KeyRing | None = None, bus: EventBus | None = None, annotate: bool = False,
                 keep_decrypted: bool = False) -> None:
        self.keyring = keyring or KeyRing()
        self.bus = bus or EventBus(ev.INFO)
        self.annotate = annotate
        self.keep_decrypted = keep_decrypted
        self.r = Replay()
        self.frame = 0
        self.now = 0.0
        self._by_key: dict[bytes, Party] = {}
        self._by_endpoint: dict[tuple, Party] = {}
        self._pending: dict[int, Handshake] = {}  # initiator sender index -> handshake awaiting a response
        self._handshake_by_index: dict[int, Handshake] = {}
        self._flows: dict[int, tuple[Session, Flow]] = {}  # receiver index -> (session, flow)
        self._seen_handshake_msgs: dict[bytes, int] = {}  # exact bytes -> frame
        self._last_timestamp: dict[bytes, bytes] = {}  # initiator key -> greatest TAI64N
        self._last_initiation: dict[tuple, Handshake] = {}  # (initiator id, responder id) -> latest
        self._cookies: dict[tuple, tuple[bytes, int]] = {}  # (initiator endpoint, responder id) -> (cookie, frame)
        self._keepalive: dict[int, _KeepaliveWatch] = {}  # party id -> watch
        self._current: dict[tuple, Session] = {}  # (initiator id, responder id) -> latest session
        self._ephemeral_warned = False

    # ================================================================ parties
    def _party(self, endpoint: tuple, key: bytes | None = None) -> Party:
        r = self.r
        if key is not None:
            p = self._by_key.get(key)
            if p is None:
                q = self._by_endpoint.get(endpoint)
                if q is not None and q.public_key is None:
                    p = q  # the endpoint-named party turns out to be this key
                    p.public_key = key
                    p.label = self.keyring.label(key)
                else:
                    p = Party(len(r.parties) + 1, key, self.keyring.label(key))
                    r.parties.append(p)
                self._by_key[key] = p
        else:
            p = self._by_endpoint.get(endpoint)
            if p is None:
                p = Party(len(r.parties) + 1)
                r.parties.append(p)
        self._moved(p, endpoint)
        return p

    def _moved(self, p: Party, endpoint: tuple) -> None:
        """Record the endpoint a party used; a change is roaming (WP §2.1)."""
        if not p.endpoints:
            p.endpoints.append(endpoint)
        elif p.endpoints[-1] != endpoint:
            old = p.endpoints[-1]
            p.endpoints.append(endpoint)
            self.r.roams.append(Roam(p, self.frame, self.now, old, endpoint))
            self._note(f"roaming: {p.name} {endpoint_text(old)} -> {endpoint_text(endpoint)}")
            self.bus.emit(ev.ENDPOINT_CHANGED, self.now, p.key_text, old=endpoint_text(old),
                          new=endpoint_text(endpoint), cause="roaming")
        self._by_endpoint[endpoint] = p

    # ================================================================ findings and notes
    def _find(self, kind: str, frames: list[int], detail: str, party: Party | None = None, **extra) -> Finding:
        f = Finding(kind, self.now, sorted(set(frames)), detail, party.name if party else None, extra)
        self.r.findings.append(f)
        self.bus.emit(ev.REPLAY_FINDING, self.now, party.key_text if party else None, kind=kind,
                      frames=f.frames, detail=detail)
        if self.annotate:
            for fr in f.frames:
                self.r.frame_notes.setdefault(fr, []).append(f"finding {kind}: {detail}")
                meta = self.r.frame_meta.get(fr)
                if meta is not None and fr == self.frame:
                    meta["verdict"], meta["reason"] = "anomaly", kind
        return f

    def _note(self, text: str) -> None:
        if self.annotate:
            self.r.frame_notes.setdefault(self.frame, []).append(text)

    def _mark(self, kind: str, peer: Party | None, index: int | None, verdict: str = "accepted") -> None:
        """Per-frame verdict for the annotated capture (same pairs as sinks/capture.py comments)."""
        if self.annotate:
            self.r.frame_meta[self.frame] = {"kind": kind, "peer": peer.key_text if peer else None,
                                             "index": index, "verdict": verdict}

    # ================================================================ input
    def feed(self, frame: int, time: float, src: tuple, dst: tuple, data: bytes) -> None:
        """One UDP datagram from the capture."""
        r = self.r
        self.frame, self.now = frame, time
        if r.first_time is None:
            r.first_time = time
        r.last_time = time
        if data and data[0] == MESSAGE_TRANSPORT and len(data) >= TRANSPORT_MIN_SIZE and not data[1] | data[2] | data[3]:
            r.wireguard += 1
            self._transport(src, dst, data)
            return
        try:
            kind = message_type(data)
        except MessageError as e:
            if data and 1 <= data[0] <= 4 and self._wireguard_port(src, dst):
                r.wireguard += 1
                self._find("malformed", [frame], f"{e}", None)
                self.bus.emit(ev.PACKET_DROPPED, time, None, reason=e.reason, kind="unknown",
                              endpoint=endpoint_text(src), receiver_index=None)
            else:
                r.other += 1
            return
        r.wireguard += 1
        if kind == MESSAGE_INITIATION:
            self._initiation(src, dst, data)
        elif kind == MESSAGE_RESPONSE:
            self._response(src, dst, data)
        elif kind == MESSAGE_COOKIE_REPLY:
            self._cookie_reply(src, dst, data)
        else:
            self._transport(src, dst, data)  # transport that failed the fast check cannot get here

    def _wireguard_port(self, src: tuple, dst: tuple) -> bool:
        return src in self._by_endpoint or dst in self._by_endpoint

    def skip(self, frame: int, time: float) -> None:
        """A frame that carries no UDP datagram."""
        self.r.other += 1

    # ================================================================ initiation
    def _initiation(self, src: tuple, dst: tuple, data: bytes) -> None:
        r, kr, now, frame = self.r, self.keyring, self.now, self.frame
        r.kinds["initiation"] += 1
        msg = parse_initiation(data)
        self.bus.emit(ev.HANDSHAKE_INITIATION_RECEIVED, now, None, endpoint=endpoint_text(src),
                      sender_index=msg.sender)
        dup = self._seen_handshake_msgs.get(data)
        self._seen_handshake_msgs.setdefault(data, frame)
        # Who is it for?  mac1 is keyed by the responder's public key (WP §5.4.4).
        responder_key = passive.mac1_owner(kr, data)
        mac1_ok: bool | None = True if responder_key else None
        if responder_key is None:
            known = self._by_endpoint.get(dst)
            if known is not None and known.public_key is not None and known.public_key in kr.static_public:
                mac1_ok = False
        responder = self._party(dst, responder_key)
        view = None
        initiator_key = None
        if responder_key is not None:
            view = passive.open_initiation(kr, msg, responder_key)
            initiator_key = view.initiator
        initiator = self._party(src, initiator_key)
        initiator.initiations += 1
        initiator.tx_bytes += len(data)  # as WG-GO's txBytes: handshake messages count too
        hs = Handshake(len(r.handshakes) + 1, frame, now, initiator, responder, msg.sender, src, dst, msg.ephemeral,
                       mac1_ok=mac1_ok, mac2=data[-16:] != bytes(16), identified=initiator_key is not None, view=view,
                       mac1_bytes=data[-32:-16])
        if view is not None:
            hs.timestamp = view.timestamp
            hs.reason = view.failure
        elif responder_key is None:
            hs.reason = "responder_unknown"
        r.handshakes.append(hs)
        self._note(f"initiation hs={hs.id} sender=0x{msg.sender:08x}")
        self._mark("initiation", initiator, msg.sender)
        # Retransmission of an unanswered initiation? (WP §6.4)
        pair = (initiator.id, responder.id)
        prev = self._last_initiation.get(pair)
        if prev is not None and prev.outcome == "unanswered" and now - prev.time < REKEY_ATTEMPT_TIME + REKEY_TIMEOUT \
                and dup is None:
            hs.retry_of = prev
            hs.attempt = prev.attempt + 1
            self._check_retry_spacing(prev, hs)
        self._last_initiation[pair] = hs
        self._check_rekey_start(hs)
        self._sent_authenticated(initiator, keepalive=False)
        # Verdicts, as the responder would reach them.
        if mac1_ok is False:
            hs.outcome, hs.reason = "rejected", "bad_mac1"
            self._find("bad_mac1", [frame], f"initiation from {endpoint_text(src)}: mac1 does not match "
                       f"{responder.name}'s public key", responder)
            self.bus.emit(ev.HANDSHAKE_INITIATION_REJECTED, now, None, endpoint=endpoint_text(src), reason="bad_mac1",
                          public_key=None)
            return
        if hs.mac2:
            self._check_mac2(hs, data, src, responder, "initiation")
        if dup is not None:
            self._find("replayed", [dup, frame], f"initiation 0x{msg.sender:08x} repeated byte for byte", initiator)
            hs.outcome, hs.reason = "rejected", "replayed"
            self.bus.emit(ev.HANDSHAKE_INITIATION_REJECTED, now, initiator.key_text, endpoint=endpoint_text(src),
                          reason="stale_timestamp", public_key=initiator.key_text)
            return
        if view is not None and view.failure == "decryption_failed":
            self._find("decryption_failed", [frame], f"initiation to {responder.name} does not decrypt with its key",
                       responder)
            self.bus.emit(ev.HANDSHAKE_INITIATION_REJECTED, now, None, endpoint=endpoint_text(src),
                          reason="decryption_failed", public_key=None)
        if hs.timestamp is not None and initiator_key is not None:
            last = self._last_timestamp.get(initiator_key)
            if last is not None and not tai64n.after(hs.timestamp, last):
                hs.reason = "stale_timestamp"
                self._find("replayed", [frame], f"initiation from {initiator.name} carries a timestamp not newer "
                           "than an earlier one (replay, WP §5.1)", initiator)
                self.bus.emit(ev.HANDSHAKE_INITIATION_REJECTED, now, initiator.key_text,
                              endpoint=endpoint_text(src), reason="stale_timestamp", public_key=initiator.key_text)
            else:
                self._last_timestamp[initiator_key] = hs.timestamp
        if initiator_key is not None and hs.reason != "stale_timestamp":
            self.bus.emit(ev.HANDSHAKE_INITIATION_CONSUMED, now, initiator.key_text, endpoint=endpoint_text(src),
                          sender_index=msg.sender)
        old = self._pending.get(msg.sender)
        if old is None or old.outcome != "unanswered":
            self._pending[msg.sender] = hs
        self._handshake_by_index[msg.sender] = hs

    def _check_retry_spacing(self, prev: Handshake, hs: Handshake) -> None:
        gap = hs.time - prev.time
        lo, hi = REKEY_TIMEOUT - EARLY_TOLERANCE, REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + LATE_TOLERANCE
        if prev.attempt > MAX_TIMER_HANDSHAKES:
            return  # the initiator gave up after the last attempt; a later one starts afresh
        if not lo <= gap <= hi:
            self._find("retry_timing", [prev.frame, hs.frame],
                       f"retry {hs.attempt} came {gap:.3f} s after attempt {prev.attempt}; the protocol retries "
                       f"after REKEY_TIMEOUT {REKEY_TIMEOUT:g} s + up to {REKEY_TIMEOUT_JITTER_MAX * 1000:.0f} ms",
                       hs.initiator, gap=round(gap, 6))

    def _check_rekey_start(self, hs: Handshake) -> None:
        """A new handshake from the initiator of a live session: a rekey (WP §6.2)."""
        sess = self._current.get((hs.initiator.id, hs.responder.id))
        if sess is None or sess.handshake is None or hs.retry_of is not None:
            return
        age = hs.time - sess.created
        hs_note = f"rekey of session {sess.id} at age {age:.1f} s"
        self._note(hs_note)
        r2i = sess.r2i
        heard_recently = r2i is not None and r2i.last_time is not None and \
            hs.time - r2i.last_time < KEEPALIVE_TIMEOUT + REKEY_TIMEOUT
        if age < REKEY_AFTER_TIME - EARLY_TOLERANCE and heard_recently and age > REKEY_TIMEOUT + 1:
            self._find("rekey_timing", [sess.handshake.response_frame or sess.handshake.frame, hs.frame],
                       f"{hs.initiator.name} rekeyed session {sess.id} after {age:.1f} s while it was in use; "
                       f"REKEY_AFTER_TIME is {REKEY_AFTER_TIME:g} s", hs.initiator, age=round(age, 3))
        sess.rekey_due_since = None

    def _check_mac2(self, _hs, data: bytes, src: tuple, receiver: Party, what: str) -> None:
        held = self._cookies.get((src, receiver.id))
        if held is None:
            return
        cookie, cookie_frame = held
        end = len(data) - 16
        if MAC(cookie, data[:end]) != data[end:]:
            self._find("bad_mac2", [cookie_frame, self.frame], f"{what} from {endpoint_text(src)}: mac2 does not "
                       f"match the cookie {receiver.name} sent in frame {cookie_frame}", receiver)

    # ================================================================ response
    def _response(self, src: tuple, dst: tuple, data: bytes) -> None:
        r, kr, now, frame = self.r, self.keyring, self.now, self.frame
        r.kinds["response"] += 1
        msg = parse_response(data)
        ep = endpoint_text(src)
        self.bus.emit(ev.HANDSHAKE_RESPONSE_RECEIVED, now, None, endpoint=ep, sender_index=msg.sender,
                      receiver_index=msg.receiver)
        dup = self._seen_handshake_msgs.get(data)
        self._seen_handshake_msgs.setdefault(data, frame)
        hs = self._handshake_by_index.get(msg.receiver)
        self._mark("response", hs.responder if hs else None, msg.sender)
        if hs is None:
            responder = self._party(src, None)
            responder.responses += 1
            responder.tx_bytes += len(data)
            self._sent_authenticated(responder, keepalive=False)
            self._find("unknown_receiver_index", [frame], f"response for receiver index 0x{msg.receiver:08x}, "
                       "which no initiation in the capture created", responder)
            self.bus.emit(ev.HANDSHAKE_RESPONSE_REJECTED, now, None, endpoint=ep, reason="unknown_index",
                          receiver_index=msg.receiver)
            return
        responder = hs.responder
        self._moved(responder, src)
        responder.responses += 1
        responder.tx_bytes += len(data)
        self._sent_authenticated(responder, keepalive=False)
        if dup is not None:
            self._find("replayed", [dup, frame], f"response 0x{msg.sender:08x} repeated byte for byte", responder)
            self.bus.emit(ev.HANDSHAKE_RESPONSE_REJECTED, now, responder.key_text, endpoint=ep, reason="wrong_state",
                          receiver_index=msg.receiver)
            return
        if hs.outcome == "completed":
            self._find("replayed", [hs.response_frame, frame], f"a second response to initiation frame {hs.frame}",
                       responder)
            return
        # mac1 of a response is keyed by the initiator's public key.
        init_key = hs.initiator.public_key
        if init_key is not None and init_key in kr.static_public and not passive.mac1_valid(init_key, data, kr):
            self._find("bad_mac1", [frame], f"response from {responder.name}: mac1 does not match "
                       f"{hs.initiator.name}'s public key", responder)
            self.bus.emit(ev.HANDSHAKE_RESPONSE_REJECTED, now, responder.key_text, endpoint=ep, reason="bad_mac1",
                          receiver_index=msg.receiver)
            return
        if data[-16:] != bytes(16):
            self._check_mac2(None, data, src, hs.initiator, "response")
        hs.outcome = "completed"
        hs.response_frame, hs.response_time, hs.responder_index = frame, now, msg.sender
        # The earlier attempts of this chain were answered by proxy: they are retries, not failures.
        sess = Session(len(r.sessions) + 1, hs.initiator, responder, hs.sender_index, msg.sender, now, hs)
        hs.session = sess
        sess.i2r = Flow(hs.initiator, msg.sender)
        sess.r2i = Flow(responder, hs.sender_index)
        view = hs.view
        if view is not None and view.chaining_key:
            rv = passive.open_response(kr, view, hs.ephemeral, msg)
            if rv.send_i is not None:
                sess.decryptable = True
                sess.i2r.cipher = ChaCha20Poly1305(rv.send_i)
                sess.r2i.cipher = ChaCha20Poly1305(rv.send_r)
            else:
                sess.sealed_reason = rv.failure
                if rv.failure == "decryption_failed":
                    self._find("decryption_failed", [hs.frame, frame], f"response from {responder.name} does not "
                               "authenticate (pre-shared keys differ, or the message was altered)", responder)
        else:
            sess.sealed_reason = hs.reason or "no_keys"
        if sess.sealed_reason in ("no_ephemeral_key",) and not self._ephemeral_warned:
            self._ephemeral_warned = True
            r.notices.append("static private keys identify the peers and every handshake, but transport data "
                             "needs ephemeral keys (a key log with LOCAL_EPHEMERAL_PRIVATE_KEY) to decrypt: "
                             "each session's keys come from a fresh ephemeral Diffie-Hellman (WP §5.4)")
        r.sessions.append(sess)
        self._flows[msg.sender] = (sess, sess.i2r)
        self._flows[hs.sender_index] = (sess, sess.r2i)
        pair = (hs.initiator.id, responder.id)
        self._current[pair] = sess
        self._pending.pop(hs.sender_index, None)
        self._note(f"response hs={hs.id} session={sess.id} indices=0x{hs.sender_index:08x}/0x{msg.sender:08x}"
                   + ("" if sess.decryptable else f" sealed={sess.sealed_reason}"))
        self.bus.emit(ev.HANDSHAKE_RESPONSE_CONSUMED, now, responder.key_text, endpoint=ep, sender_index=msg.sender,
                      receiver_index=msg.receiver)
        self.bus.emit(ev.KEYPAIR_CREATED, now, responder.key_text, local_index=hs.sender_index,
                      remote_index=msg.sender, role="initiator", slot="current")
        self.bus.emit(ev.HANDSHAKE_COMPLETED, now, responder.key_text, role="initiator", rtt=round(hs.rtt, 6))

    # ================================================================ cookie reply
    def _cookie_reply(self, src: tuple, dst: tuple, data: bytes) -> None:
        r, now, frame = self.r, self.now, self.frame
        r.kinds["cookie_reply"] += 1
        msg = parse_cookie_reply(data)
        hs = self._handshake_by_index.get(msg.receiver)
        sender = hs.responder if hs is not None else self._party(src, None)
        self._moved(sender, src)
        self._mark("cookie_reply", sender, msg.receiver)
        sender.cookie_replies += 1
        if hs is None:
            self._find("unknown_receiver_index", [frame], f"cookie reply for receiver index 0x{msg.receiver:08x}, "
                       "which no handshake in the capture created", sender)
            self.bus.emit(ev.COOKIE_REPLY_REJECTED, now, None, endpoint=endpoint_text(src), reason="unknown_index",
                          receiver_index=msg.receiver)
            return
        hs.cookie_frames.append(frame)
        decrypted = False
        # The cookie is sealed with HASH(LABEL_COOKIE || S_pub of the sender) and the mac1 it answers
        # (WP §5.4.7): public keys suffice to read it.
        if sender.public_key is not None:
            raw = hs.mac1_bytes
            try:
                cookie = XAEAD_OPEN(KeyRing.cookie_key(sender.public_key), msg.nonce, msg.encrypted_cookie, raw)
                self._cookies[(hs.src, sender.id)] = (cookie, frame)
                decrypted = True
            except AuthenticationError:
                self._find("decryption_failed", [hs.frame, frame], f"cookie reply from {sender.name} does not "
                           "decrypt against the mac1 it answers", sender)
                self.bus.emit(ev.COOKIE_REPLY_REJECTED, now, sender.key_text, endpoint=endpoint_text(src),
                              reason="bad_tag", receiver_index=msg.receiver)
        r.cookies.append(CookieExchange(frame, now, sender, hs.initiator, hs, decrypted))
        self._note(f"cookie_reply hs={hs.id}" + (" decrypted" if decrypted else ""))
        if decrypted:
            self.bus.emit(ev.COOKIE_REPLY_RECEIVED, now, sender.key_text, endpoint=endpoint_text(src),
                          receiver_index=msg.receiver)

    # ================================================================ transport
    def _transport(self, src: tuple, dst: tuple, data: bytes) -> None:
        r, now, frame = self.r, self.now, self.frame
        _, receiver, counter = _transport_header.unpack_from(data)
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
                self.bus.emit(ev.KEYPAIR_EXPIRED, now, sender.key_text, local_index=receiver,
                              reason="reject_after_time", age=round(now - sess.created, 3))
            sess.expired_frames.append(frame)
        plain = None
        cipher = flow.cipher
        if cipher is not None:
            try:
                plain = cipher.decrypt(nonce(counter), data[TRANSPORT_HEADER_SIZE:], None)
            except InvalidTag:
                flow.failed += 1
                self._sent_authenticated(sender, keepalive)  # it left the sender; the wire spoiled it
                self._find("decryption_failed", [frame], f"transport 0x{receiver:08x} counter {counter} does not "
                           f"authenticate with session {sess.id}'s keys", sender)
                self.bus.emit(ev.PACKET_DROPPED, now, sender.key_text, reason="decryption_failed", kind="transport",
                              endpoint=endpoint_text(src), receiver_index=receiver)
                return
        # Counters (WP §5.4.6): checked after authentication, as the receiver does.
        refused = flow.replay.check(counter)
        if refused:
            if refused == DUPLICATE:
                first = flow.frame_of.get(counter)
                self._find("replayed", [first, frame] if first else [frame],
                           f"counter {counter} on 0x{receiver:08x} seen again", sender, counter=counter)
                reason = "counter_replayed"
            elif refused == TOO_OLD:
                self._find("counter_outside_window", [frame], f"counter {counter} on 0x{receiver:08x} is "
                           f"{flow.max_counter - counter} behind the newest ({flow.max_counter}); the window is 8128",
                           sender, counter=counter)
                reason = "counter_too_old"
            else:
                self._find("malformed", [frame], f"counter {counter} past REJECT_AFTER_MESSAGES", sender)
                reason = "counter_limit"
            self.bus.emit(ev.PACKET_DROPPED, now, sender.key_text, reason=reason, kind="transport",
                          endpoint=endpoint_text(src), receiver_index=receiver)
            return
        if counter > flow.max_counter:
            if counter > flow.max_counter + 1:
                flow.missing.update(range(flow.max_counter + 1, counter))
            flow.max_counter = counter
        else:
            flow.missing.discard(counter)
            self._find("reordered", [flow.frame_of.get(flow.max_counter) or frame, frame],
                       f"counter {counter} on 0x{receiver:08x} arrived after counter {flow.max_counter}", sender,
                       counter=counter)
        flow.frame_of[counter] = frame
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
        if plain is not None:
            flow.decrypted += 1
            sender.decrypted += 1
            if first_from_initiator and sess.handshake is not None:
                self.bus.emit(ev.KEYPAIR_CONFIRMED, now, sender.key_text, local_index=sess.responder_index)
                self.bus.emit(ev.HANDSHAKE_COMPLETED, now, sender.key_text, role="responder", rtt=None)
            if not plain:
                if self.bus.debug:
                    self.bus.emit(ev.KEEPALIVE_RECEIVED, now, sender.key_text)
                if self.annotate:
                    self._note(f"keepalive session={sess.id} counter={counter}")
                return
            self._inner(plain, sender, sess, receiver, counter)
        elif self.annotate:
            self._note(f"{'keepalive' if keepalive else 'transport'} session={sess.id} counter={counter} sealed")

    def _inner(self, plain: bytes, sender: Party, sess: Session, receiver: int, counter: int) -> None:
        now = self.now
        try:
            length, ver, source = ipmod.inbound(plain)
            plain = plain[:length]
        except ipmod.InvalidPacket:
            self._find("malformed", [self.frame], "decrypted transport data is not an IP packet", sender)
            return
        if self.bus.trace:
            self.bus.emit(ev.TRANSPORT_RECEIVED, now, sender.key_text, receiver_index=receiver, counter=counter,
                          size=len(plain))
        flow = sess.i2r if sender is sess.initiator else sess.r2i
        if flow is not None:
            flow.inner_bytes += len(plain)
        s = summarize(plain)
        key = f"{s.get('proto')} {s.get('src')} > {s.get('dst')}"
        self.r.inner[key] = self.r.inner.get(key, 0) + 1
        if self.keep_decrypted:
            self.r.decrypted_packets.append((now, plain))
        if self.annotate:
            self._note(f"data session={sess.id} counter={counter} inner={s.get('proto')} {s.get('src')}>{s.get('dst')}")
        if sender.public_key is not None:
            nets = self.keyring.allowed(sender.public_key)
            if nets is not None:
                addr = ipmod.address_text(ver, int.from_bytes(source, "big"))
                import ipaddress

                a = ipaddress.ip_address(addr)
                if not any(a.version == n.version and a in n for n in nets):
                    self._find("source_not_allowed", [self.frame], f"{sender.name} sent a packet from {addr}, "
                               f"outside its allowed IPs {', '.join(map(str, nets)) or '(none)'}", sender, src=addr)
                    self.bus.emit(ev.SOURCE_REJECTED, now, sender.key_text, src=addr, owner=None,
                                  endpoint=endpoint_text(sender.endpoint), receiver_index=receiver)

    def _orphan(self, receiver: int, src: tuple, dst: tuple) -> tuple[Session, Flow]:
        """Transport for an index no handshake created: a session older than the capture (or an error)."""
        sender = self._party(src, None)
        receiver_party = self._party(dst, None)
        # The other direction of the same session, if already seen, has the endpoints swapped.
        for sess in reversed(self.r.sessions):
            if sess.predates_capture and sess.r2i is None and sess.initiator is receiver_party \
                    and sess.responder is sender:
                sess.r2i = Flow(sender, receiver)
                sess.initiator_index = receiver
                self._flows[receiver] = (sess, sess.r2i)
                return sess, sess.r2i
        sess = Session(len(self.r.sessions) + 1, sender, receiver_party, None, receiver, self.now,
                       predates_capture=True, sealed_reason="handshake_not_captured")
        sess.i2r = Flow(sender, receiver)
        self.r.sessions.append(sess)
        self._flows[receiver] = (sess, sess.i2r)
        return sess, sess.i2r

    # ================================================================ timers, replayed
    def _data_received(self, party: Party) -> None:
        w = self._keepalive.get(party.id)
        if w is None:
            w = self._keepalive[party.id] = _KeepaliveWatch()
        if w.armed_at is None:
            w.armed_at, w.armed_frame = self.now, self.frame
        else:
            w.need_another = True

    def _sent_authenticated(self, party: Party, keepalive: bool, sess: Session | None = None,
                            first: bool = False) -> None:
        """WG-GO timersAnyAuthenticatedPacketSent cancels the send-keepalive timer."""
        w = self._keepalive.get(party.id)
        armed = w is not None and w.armed_at is not None
        if keepalive:
            confirm = first and sess is not None and sess.handshake is not None and \
                self.now - sess.created < 1.0
            if confirm:
                self._note("keepalive confirms the new session")
            elif armed:
                delay = self.now - w.armed_at
                early = delay < KEEPALIVE_TIMEOUT - EARLY_TOLERANCE and not party.persistent_keepalive_seen
                if early or delay > KEEPALIVE_TIMEOUT + LATE_TOLERANCE:
                    self._find("keepalive_timing", [w.armed_frame, self.frame],
                               f"{party.name} sent a keepalive {delay:.3f} s after the data it answers; "
                               f"KEEPALIVE_TIMEOUT is {KEEPALIVE_TIMEOUT:g} s", party, delay=round(delay, 6))
                if w.need_another:
                    w.need_another = False
                    w.armed_at, w.armed_frame = self.now, self.frame
                    return
            else:
                party.persistent_keepalive_seen = True  # not a passive keepalive: persistent or scheduled
        if w is not None:
            w.armed_at = None

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

    # ================================================================ end of capture
    def finish(self) -> Replay:
        r = self.r
        # Sessions "older than the capture" with one or two packets are errors, not sessions.
        keep = []
        for sess in r.sessions:
            if sess.predates_capture and sum(f.packets for f in sess.flows()) <= 2 and \
                    any(f.first_frame for f in sess.flows()):
                frames = sorted(fr for f in sess.flows() for fr in f.frame_of.values())
                self.now = sess.created
                for idx in {f.receiver_index for f in sess.flows()}:
                    self._find("unknown_receiver_index", frames, f"transport for receiver index 0x{idx:08x}, "
                               "which no handshake in the capture created", sess.i2r.sender if sess.i2r else None)
                    self.bus.emit(ev.PACKET_DROPPED, sess.created, None, reason="unknown_index", kind="transport",
                                  endpoint=None, receiver_index=idx)
                for f in sess.flows():
                    f.sender.tx_packets -= f.packets
                continue
            keep.append(sess)
        for i, sess in enumerate(keep, 1):
            sess.id = i
        r.sessions = keep
        # Loss: counters never seen inside each flow.
        for sess in r.sessions:
            for f in sess.flows():
                if f.missing:
                    gaps = frame_ranges(sorted(f.missing))
                    frames = []
                    for lo, hi in gaps[:20]:
                        before, after = f.frame_of.get(lo - 1), f.frame_of.get(hi + 1)
                        frames += [x for x in (before, after) if x]
                    self.now = f.last_time or sess.created
                    text = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in gaps[:6])
                    self._find("loss", frames, f"{len(f.missing)} packet(s) missing from {f.sender.name} on "
                               f"0x{f.receiver_index:08x} (counters {text}{', …' if len(gaps) > 6 else ''})",
                               f.sender, missing=len(f.missing))
        # Handshakes nobody answered: one finding per chain of attempts.
        for hs in r.handshakes:
            if hs.outcome != "unanswered":
                continue
            nxt = [h for h in r.handshakes if h.retry_of is hs]
            if nxt:
                continue  # the chain continues; report it at its last attempt
            if any(h.outcome == "completed" for h in self._chain(hs)):
                continue
            chain = self._chain(hs)
            if r.last_time is not None and r.last_time - hs.time < REKEY_TIMEOUT and len(chain) == 1 \
                    and hs.retry_of is None:
                continue  # the capture ended before a response could be expected
            self.now = hs.time
            self._find("handshake_unanswered", [h.frame for h in chain],
                       f"{hs.initiator.name} sent {len(chain)} initiation(s) to {hs.responder.name}; none was answered",
                       hs.initiator, attempts=len(chain))
        r.findings.sort(key=lambda f: (f.frames[0] if f.frames else 0, f.kind))
        r.keys = self.keyring.describe()
        if not self.keyring.empty and not r.notices and any(s.sealed_reason == "no_ephemeral_key" for s in r.sessions):
            r.notices.append("transport data needs ephemeral keys to decrypt")
        if self.keyring.empty and r.sessions:
            r.notices.append("no keys given: peers are named by endpoint and transport data stays sealed; headers "
                             "still give kinds, indices, counters, timing and sizes")
        return r

    @staticmethod
    def _chain(hs: Handshake) -> list[Handshake]:
        chain = [hs]
        while chain[-1].retry_of is not None:
            chain.append(chain[-1].retry_of)
        return chain[::-1]
