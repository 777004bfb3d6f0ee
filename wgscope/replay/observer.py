"""The observer: what crossed the wire, seen from beside it, built from the core's own pieces.

The observer is neither node. It parses every datagram with protocol/messages.py, finds whom
a handshake message is for with the core's mac1 check (protocol/cookie.py), computes the
handshake with whatever keys it has (passive.py, on protocol/crypto.py and noise.py's
constants), checks counters with the core's anti-replay window (protocol/antireplay.py) and
judges timing by the core's constants (protocol/constants.py). It never guesses a key: a
response that does not open under the known keys is "unverified", never "completed".

It emits no node events (a re-executed side does, node.py): only `replay_finding`. What it
concludes lands in a `Replay` (model.py objects plus findings). The handshake and transport
halves are observe_handshake.py and observe_transport.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import events as ev
from ..events import EventBus
from ..protocol.constants import (
    MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_TRANSPORT, REKEY_TIMEOUT,
    TRANSPORT_MIN_SIZE,
)
from ..protocol.messages import MessageError, head_word, message_type
from .findings import Finding
from .keys import KeyRing
from .model import CookieExchange, Flow, Handshake, Party, Roam, Session, endpoint_text
from .observe_handshake import HandshakeObserver
from .observe_runs import RunObserver
from .observe_transport import TimerShadow, TransportObserver


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
    decrypted_packets: list = field(default_factory=list)  # inner packets when asked, in capture order
    decrypted_times: list = field(default_factory=list)  # the time of each
    decrypted_written: int | None = None  # with a --decrypted file: the inner packets written to it
    nodes: list = field(default_factory=list)  # what re-executing each side gave (node.py summary)
    node_comments: dict = field(default_factory=dict)  # frame -> a re-executed side's verdict comment

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
            "nodes": list(self.nodes),
            "findings": [f.as_dict() for f in self.findings],
        }

    def findings_of(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]


class Observer(HandshakeObserver, TransportObserver, RunObserver):
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
        self._timers = TimerShadow()  # the parties' keepalive timers, run by the core's hooks
        self._current: dict[tuple, Session] = {}  # (initiator id, responder id) -> latest session
        self._ephemeral_warned = False
        self._inner_keys: dict[bytes, str] = {}  # inner header bytes -> "proto src > dst"
        self._orphan_halves: dict[tuple, object] = {}  # (sender id, receiver id) -> one-way orphan session
        self.keep_plain_of: set[bytes] = set()  # public keys of re-executed sides: their inner packets are
        self.plain: bytes | None = None  # handed on (the last datagram's, if its sender is one of them)
        self.run_plain: tuple | None = None  # the same for the last run (observe_runs.py)

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
        self._by_endpoint[endpoint] = p

    # ================================================================ findings and notes
    def _find(self, kind: str, frames: list[int], detail: str, party: Party | None = None, **extra) -> Finding:
        return self.finding(kind, frames, detail, self.now, party.name if party else None,
                            party.key_text if party else None, **extra)

    def finding(self, kind: str, frames: list[int], detail: str, time: float, name: str | None,
                key: str | None = None, **extra) -> Finding:
        """Record a finding (also a re-executed side's divergence) and announce it on the bus."""
        f = Finding(kind, time, sorted(set(frames)), detail, name, extra)
        self.r.findings.append(f)
        self.bus.emit(ev.REPLAY_FINDING, time, key, kind=kind, frames=f.frames, detail=detail)
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
        self.plain = None
        if r.first_time is None:
            r.first_time = time
        r.last_time = time
        if len(data) >= TRANSPORT_MIN_SIZE and head_word(data)[0] == MESSAGE_TRANSPORT:
            r.wireguard += 1
            self._transport(src, dst, data)
            return
        try:
            kind = message_type(data)
        except MessageError as e:
            if data and 1 <= data[0] <= 4 and self._wireguard_port(src, dst):
                r.wireguard += 1
                self._find("malformed", [frame], f"{e}", None)
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
                for f in sess.flows():
                    f.sender.tx_packets -= f.packets
                continue
            keep.append(sess)
        for i, sess in enumerate(keep, 1):
            sess.id = i
        r.sessions = keep
        # Loss: counters never seen inside each flow (bounded ranges, loss.py).
        for sess in r.sessions:
            for f in sess.flows():
                missing = f.missing.count()
                if missing:
                    gaps = f.missing.ranges
                    frames = [x for g in gaps[:10] for x in (g.before, g.after) if x]
                    self.now = f.last_time or sess.created
                    text = ", ".join(f"{g.lo}" if g.lo == g.hi else f"{g.lo}-{g.hi}" for g in gaps[:6])
                    more = ", …" if len(gaps) > 6 or f.missing.overflow else ""
                    self._find("loss", frames, f"{missing} packet(s) missing from {f.sender.name} on "
                               f"0x{f.receiver_index:08x} (counters {text}{more})", f.sender, missing=missing)
        # Handshakes nobody answered: one finding per chain of attempts.
        for hs in r.handshakes:
            if hs.outcome == "unverified" and hs.session is not None and hs.session.confirmed_frame is not None:
                hs.outcome = "completed"  # the initiator sent on the new session: it took the response
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

