"""What replay reconstructs from a capture: parties, handshakes, sessions and their flows.

Names follow the whitepaper: an initiator and a responder run a handshake (initiation,
response, maybe cookie replies); a completed handshake yields a session with two receiver
indices, one flow per direction, each a run of transport counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..keytext import encode
from ..protocol.endpoint import endpoint_text as _endpoint_text
from ..protocol.antireplay import AntiReplayWindow
from .counterframes import CounterFrames
from .loss import LossRanges


def endpoint_text(ep: tuple | None) -> str:
    return _endpoint_text(ep, unknown="?")


@dataclass(eq=False)
class Party:
    """One WireGuard node seen in the capture: named by its static key when keys tell, else by endpoint."""

    id: int
    public_key: bytes | None = None
    label: str | None = None
    endpoints: list = field(default_factory=list)  # in the order they were used
    tx_packets: int = 0  # transport messages sent
    tx_bytes: int = 0
    data_packets: int = 0
    keepalives: int = 0
    decrypted: int = 0
    initiations: int = 0
    responses: int = 0
    cookie_replies: int = 0
    persistent_keepalive_seen: bool = False
    volume: dict = field(default_factory=dict)  # whole second of capture time -> transport bytes sent

    @property
    def key_text(self) -> str | None:
        return encode(self.public_key) if self.public_key else None

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        if self.public_key:
            return encode(self.public_key)[:8]
        return endpoint_text(self.endpoints[-1]) if self.endpoints else f"party{self.id}"

    @property
    def endpoint(self) -> tuple | None:
        return self.endpoints[-1] if self.endpoints else None

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "public_key": self.key_text,
                "endpoints": [endpoint_text(e) for e in self.endpoints], "tx_packets": self.tx_packets,
                "tx_bytes": self.tx_bytes, "data_packets": self.data_packets, "keepalives": self.keepalives,
                "decrypted": self.decrypted, "initiations": self.initiations, "responses": self.responses,
                "cookie_replies": self.cookie_replies}


@dataclass(eq=False)
class Handshake:
    """One initiation and what became of it."""

    id: int
    frame: int
    time: float
    initiator: Party
    responder: Party
    sender_index: int
    src: tuple
    dst: tuple
    ephemeral: bytes
    attempt: int = 1  # 1, then 2.. for retransmissions of an unanswered initiation
    retry_of: "Handshake | None" = None
    mac1_ok: bool | None = None  # None: responder key unknown
    mac2: bool = False
    identified: bool = False  # initiator static key decrypted
    timestamp: bytes | None = None
    outcome: str = "unanswered"  # unanswered | completed | rejected | unverified (keys cannot tell)
    response_frame: int | None = None
    response_time: float | None = None
    responder_index: int | None = None
    response_ephemeral: bytes = b""
    cookie_frames: list = field(default_factory=list)
    session: "Session | None" = None
    view: object = None  # passive.InitiationView
    mac1_bytes: bytes = b""  # what a cookie reply to this initiation is bound to (WP §5.4.7)
    reason: str | None = None  # why not decrypted / rejected

    @property
    def rtt(self) -> float | None:
        return None if self.response_time is None else self.response_time - self.time

    def as_dict(self) -> dict:
        return {"id": self.id, "frame": self.frame, "time": self.time, "initiator": self.initiator.name,
                "responder": self.responder.name, "sender_index": self.sender_index, "attempt": self.attempt,
                "outcome": self.outcome, "response_frame": self.response_frame,
                "responder_index": self.responder_index, "rtt": self.rtt, "mac2": self.mac2,
                "identified": self.identified, "cookie_frames": list(self.cookie_frames), "reason": self.reason}


@dataclass(eq=False)
class Flow:
    """One direction of a session: the sender's counters as seen on the wire."""

    sender: Party
    receiver_index: int
    cipher: object = None  # ChaCha20Poly1305 for this direction, when keys allow
    replay: AntiReplayWindow = field(default_factory=AntiReplayWindow)
    max_counter: int = -1
    missing: LossRanges = field(default_factory=LossRanges)  # counters skipped so far (gaps not yet filled)
    frame_of: CounterFrames = field(default_factory=CounterFrames)  # counter -> frame (for duplicate findings)
    packets: int = 0
    bytes: int = 0
    data_packets: int = 0
    keepalives: int = 0
    decrypted: int = 0
    failed: int = 0
    inner_bytes: int = 0
    head: list = field(default_factory=list)  # (time, counter, inner packet) of the first data (node.py's staging)
    first_time: float | None = None
    last_time: float | None = None
    first_frame: int | None = None


@dataclass(eq=False)
class Session:
    """A keypair: from a completed handshake (or already running when the capture began)."""

    id: int
    initiator: Party
    responder: Party
    initiator_index: int | None
    responder_index: int | None
    created: float
    handshake: Handshake | None = None
    predates_capture: bool = False
    decryptable: bool = False
    sealed_reason: str | None = None  # why transport data cannot be decrypted
    i2r: Flow | None = None  # initiator -> responder (receiver index = responder_index)
    r2i: Flow | None = None
    confirmed_frame: int | None = None  # first data from the initiator: the responder's keypair is confirmed
    expired_frames: list = field(default_factory=list)
    rekey_due_since: float | None = None
    rekey_reported: bool = False
    ended: float | None = None

    def flows(self) -> list[Flow]:
        return [f for f in (self.i2r, self.r2i) if f is not None]

    @property
    def last_time(self) -> float:
        times = [f.last_time for f in self.flows() if f.last_time is not None]
        return max(times) if times else self.created

    def as_dict(self) -> dict:
        def flow(f: Flow | None):
            if f is None:
                return None
            return {"sender": f.sender.name, "receiver_index": f.receiver_index, "packets": f.packets,
                    "bytes": f.bytes, "data_packets": f.data_packets, "keepalives": f.keepalives,
                    "decrypted": f.decrypted, "failed": f.failed, "max_counter": f.max_counter,
                    "missing": f.missing.count()}

        return {"id": self.id, "initiator": self.initiator.name, "responder": self.responder.name,
                "initiator_index": self.initiator_index, "responder_index": self.responder_index,
                "created": self.created, "last": self.last_time, "lifetime": round(self.last_time - self.created, 6),
                "handshake": self.handshake.id if self.handshake else None,
                "predates_capture": self.predates_capture, "decryptable": self.decryptable,
                "sealed_reason": self.sealed_reason, "i2r": flow(self.i2r), "r2i": flow(self.r2i)}


@dataclass
class Roam:
    party: Party
    frame: int
    time: float
    old: tuple
    new: tuple


@dataclass
class CookieExchange:
    frame: int
    time: float
    sender: Party  # the node under load that sent the reply
    receiver: Party
    handshake: Handshake | None
    decrypted: bool
    nonce: bytes = b""  # the reply's XChaCha20 nonce (what the sender's Entropy drew)
