"""A re-executed side: the side's own Device, driven by the capture as the live node drives it.

    datagrams that arrived at the side  -> Device.receive_datagram(data, src, t)
    the capture's timestamps            -> the clock; Device.tick at each deadline between frames
    the side's own transport sends      -> decrypted with its own keypair -> Device.send_packet

What the core sends is kept as `pending` and compared with what the side put on the wire
(compare.py): the same bytes is agreement (the normal case); anything else is a divergence, a
finding with the frame number and a sentence in the protocol's terms. Where the capture does
not reveal a random input (entropy.py `unknown`), a message is compared by kind and timing
instead. Runs of transport sends take node_runs.py's batched path.
"""

from __future__ import annotations

from collections import Counter, deque

from cryptography.exceptions import InvalidTag

from ..events import HANDSHAKE_COMPLETED, HANDSHAKE_GAVE_UP, INFO, EventBus
from ..protocol import ip
from ..protocol.actions import SendDatagram
from ..protocol.constants import (
    DEFAULT_MTU, KEEPALIVE_TIMEOUT, MESSAGE_RESPONSE, REJECT_AFTER_MESSAGES,
    REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, RESPONSE_SIZE, TRANSPORT_HEADER_SIZE,
)
from ..protocol.crypto import MAC, nonce
from ..protocol.device import Device
from ..protocol.antireplay import AntiReplayWindow
from ..protocol.messages import first_index, transport_fields
from .entropy import LATE, CaptureEntropy
from .load import load_for
from .rules import GIVE_UP, ONE_PER_REKEY_TIMEOUT, REJECT, timer_cause
from .sides import SideSetting
from .compare import ARTICLE, Comparison, Pending, wire_kind
from .node_runs import RunSender
from .verdicts import VerdictJudge

BATCH_MAX = 64  # sends fed as one run: what the live node reads from its TUN per readiness (runtime/live.py)
BATCH_SPAN = 0.01  # seconds a run may span (below EARLY, and below every timer a send arms, >= 1 s)


class ReplayNode(RunSender, Comparison):
    BATCH_MAX, BATCH_SPAN = BATCH_MAX, BATCH_SPAN

    def __init__(self, side: SideSetting, entropy: CaptureEntropy, bus: EventBus, start: float,
                 find, staged_for=None) -> None:
        self.side = side
        self.name = side.node_name
        self.bus = bus
        self.entropy = entropy
        self.find = find  # find(kind, frames, detail, time, peer name)
        self.staged_for = staged_for  # initiation sender index -> inner packets staged before it
        self.written = 0  # inner packets the receive path wrote to the TUN
        self.pending: deque[Pending] = deque()
        self.agreed: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()  # compared by kind and timing only
        self.divergences = 0
        self.stopped_at: int | None = None
        self.stop_reason: str | None = None
        self.prefed: dict[int, int] = {}  # receiver index -> data counters below this were fed when staged
        self.later_staged: dict[int, list] = {}  # receiver index -> packets staged after the first, fed
        self.overdue: deque[Pending] = deque(maxlen=64)  # sent by the core more than LATE ago, not seen yet
        self.seen: dict[int, AntiReplayWindow] = {}  # receiver index -> counters of own sends seen on the wire
        self.judge = VerdictJudge(bus)
        self.batch: list[tuple] = []  # (frame, time, data, inner): consecutive transport sends, one run
        self.gave_up: dict[str, float] = {}  # peer name -> when its core gave up the handshake
        bus.subscribe(self._on_event, INFO)
        self.device = Device(side.private_key, bus=bus, listen_port=side.listen_port, mtu=side.mtu or DEFAULT_MTU,
                             wall_offset=0.0, entropy=entropy, name=self.name)
        for p in side.peers.values():
            self.device.add_peer(p.public_key, preshared_key=p.preshared_key, endpoint=p.endpoint,
                                 allowed_ips=side.routes(p), persistent_keepalive=p.persistent_keepalive,
                                 label=p.label, now=start)
        self.now = start

    @property
    def active(self) -> bool:
        return self.stopped_at is None

    # ---------------------------------------------------------------- the clock
    def advance(self, t: float) -> None:
        """Run every timer due before `t` at its own deadline, then compare what is overdue."""
        dev = self.device
        if self.batch:  # time passing or a deadline before t ends the run: its sends come first, as they did
            when = dev.next_deadline()
            if not 0.0 <= t - self.batch[-1][1] <= BATCH_SPAN or (when is not None and when <= t):
                self.flush()
        while self.active:
            when = dev.next_deadline()
            if when is None or when > t:
                break
            self.now = self.entropy.now = max(when, self.now)
            due = [tm.name for peer in dev.peers.values() for tm in peer.timers.values()
                   if tm.deadline is not None and tm.deadline <= self.now]
            self._produced(dev.tick(self.now), self.now, timer_cause(due))
        self.now = max(self.now, t)
        while self.pending and self.pending[0].time < t - LATE:
            late = self.pending.popleft()
            if len(self.overdue) == self.overdue.maxlen:
                self._missing(self.overdue[0])
            self.overdue.append(late)
        while self.overdue and self.overdue[0].time < t - KEEPALIVE_TIMEOUT:
            self._missing(self.overdue.popleft())

    def finish(self, t: float) -> None:
        self.flush()
        self.advance(t)
        for p in self.overdue:
            self._missing(p)
        self.pending.clear()  # what the core sent in the last LATE seconds: the capture had ended
        self.overdue.clear()

    # ---------------------------------------------------------------- receive path
    def arrive(self, frame: int, t: float, src: tuple, dst: tuple, data: bytes, judge: bool = True) -> str | None:
        """A datagram that reached this side. Returns the node's verdict comment for the frame (when
        `judge`: the capture writer's words, sinks/capture.py)."""
        if self.batch:
            self.flush()
        if not self.active:
            return None
        self.entropy.now = t
        if self.later_staged and len(data) == RESPONSE_SIZE and data[0] == MESSAGE_RESPONSE:
            # One core call per packet, as the lab and a pinging node feed them: each asked for a
            # handshake while one was in flight (a handshake_initiation_skipped each). How the live
            # node's TUN reads grouped them is in no capture; one by one is the common case.
            for packet in self.later_staged.pop(first_index(data), ()):
                self._produced(self.device.send_packets([packet], t), t, f"frame {frame}")
        actions = self.device.receive_datagram(load_for(self.device, self.entropy, data, src, t), src, t)
        comment = self.judge.tap("in", src, dst, data, t) if judge else None
        self._produced(actions, t, f"frame {frame}")
        return comment

    # ---------------------------------------------------------------- send path
    def sent(self, frame: int, t: float, src: tuple, dst: tuple, data: bytes, judge: bool = True,
             opened: bytes | None = None) -> str | None:
        """A datagram this side put on the wire: produce it with the core and compare. `opened`: its
        inner packet, when the observer has decrypted it already (under the same session's keys)."""
        if not self.active:
            return None
        kind = wire_kind(data)
        self.entropy.now = t
        inner = b"" if kind == "keepalive" else None
        if kind in ("transport", "keepalive"):
            receiver, counter = transport_fields(data)
            window = self.seen.get(receiver)
            if window is None:
                window = self.seen[receiver] = AntiReplayWindow()
            if counter >= REJECT_AFTER_MESSAGES:
                if self._open_own(data)[0] is not None:  # sealed with its own key: the node did send it
                    self._diverge([frame], t, f"{self.name} sent {ARTICLE[kind]} with counter {counter}, past "
                                  f"REJECT_AFTER_MESSAGES ({REJECT_AFTER_MESSAGES}); {REJECT}")
                    return None
            elif window.check(counter) is not None:
                return None  # a copy the network made (or a replay): the observer reports it
        if kind == "transport":
            keypair = self._own_keypair(receiver) if opened is not None else None
            inner, keypair = (opened, keypair) if keypair is not None else self._open_own(data)
            if keypair is not None and keypair.expired_reason(t):
                self._diverge([frame], t, f"{self.name} sent transport data on a keypair {t - keypair.created:.1f} s "
                              f"old ({keypair.expired_reason(t).replace('_', ' ')}); {REJECT}")
            if inner is None:
                self._diverge([frame], t, f"{self.name} sent transport data on receiver index 0x{receiver:08x} "
                              "that none of its own keypairs seals (altered on the way to the capture point?)")
                return None
            if counter >= self.prefed.get(receiver, 0):
                self._learn_route(inner, data)
                if not judge and keypair is not None and self._steady(keypair, t):
                    self._run(frame, t, data, inner)
                    return None
                self.flush()
                self._produced(self.device.send_packet(inner, t), t, f"frame {frame}", inner)
        if self.batch:
            self.flush()
        if kind == "initiation" and not any(p.kind == "initiation" for p in self.pending):
            self._trigger(data, t, frame)
        self._compare(frame, t, kind, data, inner)
        return self.judge.tap("out", src, dst, data, t) if judge else None

    def _run(self, frame: int, t: float, data: bytes, inner: bytes) -> None:
        """A transport send joins the run of the side's consecutive sends (no deadline, arrival or
        other message between them), fed to the core as one batch as the live node feeds a TUN read."""
        if self.batch and (len(self.batch) >= BATCH_MAX or not self.batch[-1][1] <= t <= self.batch[0][1] + BATCH_SPAN):
            self.flush()
        self.batch.append((frame, t, data, inner))

    def _steady(self, keypair, t: float) -> bool:
        """A send the core seals on its current keypair with no handshake due does the same fed alone or
        in a run (the timer hooks are idempotent at one `now`). One that wants a handshake emits an
        event per core call (the live node's calls are not in the capture): it is fed alone."""
        if keypair.expired_reason(t + BATCH_SPAN):
            return False
        if keypair.is_initiator and (t + BATCH_SPAN - keypair.created > REKEY_AFTER_TIME
                                     or keypair.send_counter + BATCH_MAX > REKEY_AFTER_MESSAGES):
            return False
        return any(peer.keypairs.current is keypair for peer in self.device.peers.values())

    def flush(self) -> None:
        """Send the run through Device.send_packets, then compare each of its datagrams with the wire."""
        batch, self.batch = self.batch, []
        if not batch or not self.active:
            return
        t = batch[-1][1]
        self._clock_at(t)
        inners = [b[3] for b in batch]
        self._judge_batch(self.device.send_packets(inners, t), t, batch[0][0], batch, inners)

    def _clock_at(self, t: float) -> None:
        """A batch of sends is fed at its last send's time: the entropy's clock and the node's."""
        self.entropy.now = t
        self.now = max(self.now, t)

    def _judge_batch(self, actions: list, t: float, first_frame: int, batch, inners: list) -> None:
        """What the core made of a batch, each datagram compared with the wire's; `batch`: (frame,
        time, wire datagram, inner packet) per send."""
        self._produced(actions, t, f"frame {first_frame}", inners)
        for frame, sent_at, data, inner in batch:
            self._compare(frame, sent_at, "transport", data, inner)

    def _trigger(self, data: bytes, t: float, frame: int) -> None:
        """An initiation the core's timers did not make: data the TUN handed the live node made
        it. Those packets travel later, in the new session; feed them now, as the node got them."""
        sender = first_index(data)
        receiver, packets = self.staged_for(sender) if self.staged_for is not None else (None, [])
        if packets:  # the first made the initiation; the others came while the handshake went on
            self.prefed[receiver] = len(packets)
            self.later_staged[receiver] = packets[1:]
            self._produced(self.device.send_packets(packets[:1], t), t, f"frame {frame}")
            return
        peer = self._peer_for_initiation(data)
        if peer is None:
            return
        out = self.device.initiate_handshake(peer, t)
        if peer.name in self.gave_up:
            self._diverge([frame], t, f"{self.name} sent an initiation {t - self.gave_up.pop(peer.name):.3f} s after "
                          f"its protocol core gave up; {GIVE_UP}")
        if not any(type(a) is SendDatagram for a in out):
            since = t - peer.handshake.last_sent_handshake
            self._diverge([frame], t, f"{self.name} sent an initiation {since:.3f} s after its previous one; "
                          + ONE_PER_REKEY_TIMEOUT)
            out = self.device.force_handshake(peer, t)  # keep the core in step with what the node did
        self._produced(out, t, f"frame {frame}")

    def _on_event(self, ev) -> None:
        if ev.name == HANDSHAKE_GAVE_UP.name:
            self.gave_up[ev.peer] = ev.time
        elif ev.name == HANDSHAKE_COMPLETED.name:
            self.gave_up.pop(ev.peer, None)

    def _peer_for_initiation(self, data: bytes):
        """mac1 is keyed by the responder's public key (WP §5.4.4): it names the peer."""
        body, mac1 = data[:-32], data[-32:-16]
        for peer in self.device.peers.values():
            if MAC(peer.cookies.mac1_key, body) == mac1:
                return peer
        return None

    def _own_keypair(self, receiver: int):
        """The side's keypair that sends to this receiver index."""
        for peer in self.device.peers.values():
            for kp in peer.keypairs.all():
                if kp.remote_index == receiver and kp.send is not None:
                    return kp
        return None

    def _open_own(self, data: bytes):
        """(inner packet, keypair) of a transport message this side sent: its own send key opens it."""
        receiver, counter = transport_fields(data)
        kp = self._own_keypair(receiver)
        if kp is None:
            return None, None
        try:
            plain = kp.send.decrypt(nonce(counter), data[TRANSPORT_HEADER_SIZE:], None)
        except InvalidTag:
            return None, kp
        try:
            length = ip.inbound(plain)[0]
        except ip.InvalidPacket:
            return plain, kp
        return plain[:length], kp

    def _learn_route(self, packet: bytes, data: bytes | None) -> None:
        """Without a configuration the allowed IPs of several peers are not known: a packet the
        side sent to a peer shows that the peer's allowed IPs cover its destination."""
        if self.side.from_config or len(self.device.peers) < 2 or data is None:
            return
        try:
            ver, dst = ip.outbound(packet)
        except ip.InvalidPacket:
            return
        receiver = transport_fields(data)[0]
        for peer in self.device.peers.values():
            if any(kp.remote_index == receiver for kp in peer.keypairs.all()):
                bits = 32 if ver == 4 else 128
                self.device.allowed_ips.insert(f"{ip.address_text(ver, int.from_bytes(dst, 'big'))}/{bits}", peer)

    def summary(self) -> dict:
        return {"name": self.name, "source": self.side.source, "agreed": dict(self.agreed),
                "compared_by_kind": dict(self.by_kind), "divergences": self.divergences, "written": self.written,
                "unknown_inputs": sorted({what for _, what in self.entropy.unknown}
                                         | ({"pre-shared key (taken as none: a response that opens proves it)"}
                                            if self.side.psk_unknown else set())),
                "stopped_at_frame": self.stopped_at, "stop_reason": self.stop_reason}
