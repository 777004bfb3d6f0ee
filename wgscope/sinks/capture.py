"""`--capture FILE.pcapng`: the node's UDP traffic as it saw it, annotated and self-decrypting.

Fed by two bus hooks:

* `bus.add_datagram_tap`: every underlay datagram, wrapped in a raw IP/UDP frame
  (LINKTYPE_RAW, wgscope/pcap/frames.build_udp_frame) and written as an Enhanced Packet Block.
* `bus.subscribe_secrets`: each handshake's keys, written at once as a Decryption Secrets
  Block (WireGuard key log, see keylog.py). The core publishes secrets while it builds the
  handshake message, and the adapter taps datagrams only after the core call returns, so the
  DSB always lands before the packets it decrypts: Wireshark/tshark decrypt with no settings.

Each packet carries a comment with wgscope's verdict, machine-readable first, then for humans:

    wgscope: dir=in peer=AbCdEfGh kind=initiation index=123 verdict=accepted | initiation from ...
    wgscope: dir=in kind=initiation index=77 verdict=dropped reason=bad_mac1 | initiation from ...

The verdict comes from the events the core emitted during the call (the adapter contract in
wgscope/events.py: the input datagram is tapped first, then each output; the events emitted
in that call are the verdict). dissectors/wgscope.lua turns these pairs into Wireshark fields.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from ..events import INFO, Event, EventBus, HandshakeSecrets
from ..pcap.frames import LINKTYPE_RAW, build_udp_frame
from ..pcap.pcapng_writer import PcapngWriter
from ..protocol.constants import TRANSPORT_MIN_SIZE
from ..protocol.endpoint import endpoint_text
from ..protocol.messages import KIND_NAMES, MessageError, first_index, kind_name, message_type
from .keylog import SECRETS_WARNING, format_keylog

__all__ = ["CaptureWriter", "Verdict", "parse_comment", "COMMENT_PREFIX"]

COMMENT_PREFIX = "wgscope:"
_KEEPALIVE_SIZE = TRANSPORT_MIN_SIZE  # empty payload + Poly1305 tag (WP §5.4.6)
_MAX_INDICES = 4096

# Events that decide the fate of an incoming datagram, by the message kind they concern.
_REJECTIONS = {
    "handshake_initiation_rejected": "initiation",
    "handshake_response_rejected": "response",
    "cookie_reply_rejected": "cookie_reply",
}
_ACCEPTANCES = {
    "handshake_initiation_consumed": "initiation",
    "handshake_response_consumed": "response",
    "cookie_reply_received": "cookie_reply",
}
# Events that name a peer for an index (ours or theirs).
_INDEX_FIELDS = ("sender_index", "receiver_index", "local_index", "remote_index")


class Verdict:
    """What wgscope decided about one datagram; `comment()` renders the pcapng comment."""

    __slots__ = ("direction", "peer", "kind", "index", "verdict", "reason", "endpoint", "note")

    def __init__(self, direction: str, kind: str, index: int | None, endpoint: str) -> None:
        self.direction = direction
        self.kind = kind
        self.index = index
        self.endpoint = endpoint
        self.peer: str | None = None
        self.verdict = "sent" if direction == "out" else "accepted"
        self.reason: str | None = None
        self.note: str | None = None

    def comment(self) -> str:
        pairs = [f"dir={self.direction}"]
        if self.peer:
            pairs.append(f"peer={self.peer[:8]}")
        pairs.append(f"kind={self.kind}")
        if self.index is not None:
            pairs.append(f"index={self.index}")
        pairs.append(f"verdict={self.verdict}")
        if self.reason:
            pairs.append(f"reason={self.reason}")
        what = self.kind.replace("_", " ")
        who = f"peer {self.peer[:8]}" if self.peer else self.endpoint
        human = f"{what} {'from' if self.direction == 'in' else 'to'} {who}: {self.verdict}"
        if self.reason:
            human += f" ({self.reason.replace('_', ' ')})"
        if self.note:
            human += f"; {self.note}"
        return f"{COMMENT_PREFIX} {' '.join(pairs)} | {human}"


def parse_comment(comment: str | None) -> dict[str, str]:
    """The key=value pairs of a wgscope packet comment ({} for other comments)."""
    if not comment or not comment.startswith(COMMENT_PREFIX):
        return {}
    machine = comment[len(COMMENT_PREFIX):].split(" | ", 1)[0]
    return dict(p.split("=", 1) for p in machine.split() if "=" in p)


def _classify(direction: str, data: bytes, remote: tuple) -> Verdict:
    """Message kind and the index it names: the sender's for an initiation and a response,
    the receiver's for a cookie reply and transport data."""
    try:
        kind_no = message_type(data)
    except MessageError as e:
        v = Verdict(direction, kind_name(data) if data else "empty", None, endpoint_text(remote))
        if direction == "in":
            v.verdict, v.reason = "dropped", e.reason
        return v
    kind = KIND_NAMES[kind_no]
    index = first_index(data)
    if kind_no == 4 and len(data) == _KEEPALIVE_SIZE:
        kind = "keepalive"
    return Verdict(direction, kind, index, endpoint_text(remote))


class CaptureWriter:
    """Tap + secrets subscriber + INFO event sink writing one annotated pcapng file."""

    def __init__(self, path: str | os.PathLike, bus: EventBus, wall_offset: float = 0.0,
                 name: str | None = None, warn: TextIO | None = sys.stderr) -> None:
        self.path = os.fspath(path)
        self.writer = PcapngWriter(self.path, linktype=LINKTYPE_RAW)  # created 0600
        self.wall_offset = wall_offset
        self.name = name
        self.packets = 0
        self.secrets_blocks = 0
        self.skipped = 0  # datagrams that could not be framed (e.g. mixed address families)
        self._fresh: list[Event] = []  # events since the last tap
        self._batch: list[Event] = []  # the events of the core call being tapped
        self._peer_of_index: dict[int, str] = {}
        self._last_flush = float("-inf")
        self._closed = False
        if warn is not None:
            print(SECRETS_WARNING.format(path=self.path) + " (Decryption Secrets Blocks)", file=warn, flush=True)
        bus.subscribe(self._on_event, INFO)
        bus.subscribe_secrets(self._on_secrets)
        bus.add_datagram_tap(self._on_datagram)

    # ---------------------------------------------------------------- bus hooks
    def _on_event(self, ev: Event) -> None:
        self._fresh.append(ev)
        if ev.peer is not None:
            for key in _INDEX_FIELDS:
                index = ev.fields.get(key)
                if isinstance(index, int):
                    self._remember(index, ev.peer)

    def _remember(self, index: int, peer: str) -> None:
        table = self._peer_of_index
        table[index] = peer
        if len(table) > _MAX_INDICES:
            del table[next(iter(table))]  # oldest first (dicts keep insertion order)

    def _on_secrets(self, secrets: HandshakeSecrets) -> None:
        if self._closed:
            return
        self.writer.write_wireguard_secrets(format_keylog(secrets, self.wall_offset, self.name))
        self.writer.flush()
        self.secrets_blocks += 1

    def _on_datagram(self, direction: str, src: tuple, dst: tuple, data: bytes, now: float) -> None:
        if self._closed:
            return
        if self._fresh:
            self._batch, self._fresh = self._fresh, []
        elif direction == "in":
            self._batch = []  # a new core call that emitted nothing at INFO
        remote = src if direction == "in" else dst
        verdict = _classify(direction, data, remote)
        self._judge(verdict, data)
        try:
            frame = build_udp_frame(tuple(src[:2]), tuple(dst[:2]), data)
        except ValueError:
            self.skipped += 1
            return
        self.writer.write_packet(frame, max(0.0, now + self.wall_offset), verdict.comment())
        self.packets += 1
        # handshake messages are rare: flush each at once, so a reader of the growing file (the dashboard's
        # handshake x-ray) sees it; transport data at most every 0.5 s
        if now - self._last_flush >= 0.5 or data[:1] != b"\x04":
            self.writer.flush()
            self._last_flush = now

    # ---------------------------------------------------------------- verdicts
    def _judge(self, v: Verdict, data: bytes) -> None:
        if v.index is not None:
            v.peer = self._peer_of_index.get(v.index)
        if v.direction == "out":
            self._judge_out(v)
        elif v.verdict != "dropped":
            self._judge_in(v)
        else:
            for ev in self._batch:  # a malformed datagram: the core's reason is the verdict
                if ev.name == "packet_dropped" and ev.fields.get("endpoint") == v.endpoint:
                    v.reason = ev.fields.get("reason") or v.reason
                    break

    def _judge_out(self, v: Verdict) -> None:
        for ev in self._batch:
            f = ev.fields
            if v.kind == "initiation" and ev.name == "handshake_initiation_sent" and f.get("sender_index") == v.index:
                v.peer = ev.peer
                v.note = f"attempt {f.get('attempt')}" + (", mac2 from a cookie" if f.get("mac2") else "")
                return
            if v.kind == "response" and ev.name == "handshake_response_sent" and f.get("sender_index") == v.index:
                v.peer = ev.peer
                return
            if v.kind == "cookie_reply" and ev.name == "cookie_reply_sent" and f.get("receiver_index") == v.index:
                v.note = f"under load: the {f.get('message')} lacked a valid mac2"
                return

    def _judge_in(self, v: Verdict) -> None:
        kind = "transport" if v.kind == "keepalive" else v.kind
        for ev in self._batch:
            name, f = ev.name, ev.fields
            endpoint = f.get("endpoint")
            if endpoint is not None and endpoint != v.endpoint and name != "packet_dropped":
                continue
            if name == "packet_dropped" and f.get("kind") == kind and f.get("endpoint") in (None, v.endpoint):
                v.verdict, v.reason = "dropped", f.get("reason")
            elif _REJECTIONS.get(name) == kind:
                v.verdict, v.reason = "dropped", f.get("reason")
                if f.get("reason") == "bad_mac2":
                    v.note = "answered with a cookie reply"
            elif name == "source_rejected" and kind == "transport":
                v.verdict, v.reason = "dropped", "source_not_allowed"
                v.note = f"inner source {f.get('src')}"
            elif _ACCEPTANCES.get(name) == kind:
                v.verdict = "accepted"
            else:
                continue
            if ev.peer is not None:
                v.peer = ev.peer
            return

    # ---------------------------------------------------------------- lifetime
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.writer.close()
