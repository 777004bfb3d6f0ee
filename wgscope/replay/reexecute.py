"""The second pass: every side whose static private key is known is re-executed (node.py).

The observer's pass (observer.py) has told who is who: which endpoints are each side's, which
handshake messages each side sent (their indices, ephemerals and timestamps feed the side's
Entropy, entropy.py), and the first inner packets of each session (what a side had staged
before a handshake). This pass walks the datagrams that pass kept (the file is read once) and
hands each to the side it arrived at, or to the side that sent it; a side's own transport
comes with the inner packet the observer decrypted, so it is not opened twice.
"""

from __future__ import annotations

from ..events import INFO, EventBus
from ..protocol.constants import MESSAGE_TRANSPORT, TRANSPORT_MIN_SIZE
from ..protocol.messages import head_word, transport_fields
from .entropy import EARLY, CaptureEntropy, WireMessage
from .node import ReplayNode
from .verdicts import parse_comment


def own_messages(result, public: bytes) -> list[WireMessage]:
    """The handshake messages this side sent, in capture order."""
    out = []
    for hs in result.handshakes:
        if hs.initiator.public_key == public:
            out.append(WireMessage(hs.frame, hs.time, "initiation", hs.sender_index, hs.ephemeral, hs.timestamp))
        if hs.response_frame is not None and hs.responder.public_key == public:
            out.append(WireMessage(hs.response_frame, hs.response_time, "response", hs.responder_index,
                                   hs.response_ephemeral))
    for c in result.cookies:
        if c.sender.public_key == public:
            out.append(WireMessage(c.frame, c.time, "cookie_reply", c.handshake.sender_index if c.handshake else 0,
                                   nonce=c.nonce))
    out.sort(key=lambda m: m.frame)
    return out


def staged_lookup(result):
    """initiation sender index -> the inner packets its initiator had staged: the data it sent on
    the new session at once, in the core call that consumed the response."""
    by_sender = {}
    for hs in result.handshakes:
        attempt = hs if hs.session is not None else None
        while attempt is not None:  # every attempt of a chain of retries staged for the session it made
            by_sender.setdefault(attempt.sender_index, hs)
            attempt = attempt.retry_of

    def staged_for(sender: int) -> tuple[int | None, list[bytes]]:
        hs = by_sender.get(sender)
        if hs is None or hs.session.i2r is None:
            return None, []
        packets = []
        for i, (t, counter, plain) in enumerate(hs.session.i2r.head):
            if counter != i or t > hs.response_time + EARLY:
                break
            packets.append(plain)
        return hs.responder_index, packets

    return staged_for


class Sides:
    """The re-executed nodes and which datagram belongs to which."""

    def __init__(self, ring, observer, result, node_bus) -> None:
        self.nodes: list[ReplayNode] = []
        self.endpoints: dict[tuple, ReplayNode] = {}
        start = result.first_time or 0.0
        staged_for = staged_lookup(result)
        for side in ring.sides.values():
            party = next((p for p in result.parties if p.public_key == side.public_key), None)
            if party is None:
                continue  # this key never spoke in the capture
            _first_contact(side, result, party)
            entropy = CaptureEntropy(own_messages(result, side.public_key), ring.ephemeral_private)
            bus = node_bus(side.node_name) if node_bus is not None else EventBus(INFO)
            node = ReplayNode(side, entropy, bus, start, observer.finding, staged_for)
            self.nodes.append(node)
            for ep in party.endpoints:
                self.endpoints[ep] = node

    def roles(self, src: tuple, dst: tuple, data: bytes):
        """(node, "in" | "out") for each side this datagram concerns."""
        to, frm = self.endpoints.get(dst), self.endpoints.get(src)
        if to is None and len(data) >= TRANSPORT_MIN_SIZE and head_word(data)[0] == MESSAGE_TRANSPORT:
            receiver = transport_fields(data)[0]
            to = next((n for n in self.nodes if receiver in n.device.index_table), None)
        out = []
        if to is not None:
            out.append((to, "in"))
        if frm is not None and frm is not to:
            out.append((frm, "out"))
        return out


def _first_contact(side, result, party) -> None:
    """A key log says nothing of endpoints: a peer the side sent the first initiation to had its
    endpoint configured (a node cannot initiate to a peer without one); one that initiated first is
    learned by roaming, as the node would."""
    seen: set[bytes] = set()
    for hs in result.handshakes:
        other = hs.responder if hs.initiator is party else hs.initiator if hs.responder is party else None
        if other is None or other.public_key not in side.peers or other.public_key in seen:
            continue
        seen.add(other.public_key)
        if hs.initiator is party and side.peers[other.public_key].endpoint is None:
            side.peers[other.public_key].endpoint = hs.dst


def reexecute(kept, ring, observer, result, node_bus=None, annotate=False, progress: dict | None = None) -> None:
    """`kept` (driver.Kept): the capture's columns and runs as the observer's pass read them, and
    per datagram the inner packet the observer decrypted when a side sent it."""
    sides = Sides(ring, observer, result, node_bus)
    if not sides.nodes:
        return
    cols = kept.cols
    frames, times, srcs, dsts, payloads = cols.frames, cols.times, cols.src, cols.dst, cols.payload
    plain = kept.plain
    verdicts = result.node_comments
    t = result.first_time or 0.0
    nodes, roles = sides.nodes, sides.roles
    for start, stop in kept.runs:
        if progress is not None:
            progress["frame"] = frames[start]
        if stop - start > 1:
            taken = _run(sides, kept, start, stop, annotate)
            if taken:
                start += taken
                t = times[start - 1]
        for i in range(start, stop):
            src = srcs[i]
            if src is None:
                continue
            frame, t, dst, payload = frames[i], times[i], dsts[i], payloads[i]
            for node in nodes:
                node.advance(t)
            for node, role in roles(src, dst, payload):
                if role == "in":  # the node's verdict: to write, or to check against the capture's own
                    comment = cols.comment(i)
                    said = node.arrive(frame, t, src, dst, payload, annotate or comment is not None)
                else:
                    comment = None
                    said = node.sent(frame, t, src, dst, payload, annotate, plain(i))
                if said is not None:
                    _against_source(observer, node, frame, t, comment, said, role)
                    if annotate:  # the receiving side's verdict first: it decides the datagram's fate
                        verdicts.setdefault(frame, said)
    for node in nodes:
        node.finish(t)
        result.nodes.append(node.summary())
    result.findings.sort(key=lambda f: (f.frames[0] if f.frames else 0, f.kind))


def _run(sides, kept, start: int, stop: int, annotate: bool) -> int:
    """A run that only its sender among the re-executed sides is concerned with goes to that side
    at once (node_runs.py); returns how many of its datagrams were taken."""
    cols = kept.cols
    t = cols.times[start]
    for node in sides.nodes:
        node.advance(t)
    concerned = sides.roles(cols.src[start], cols.dst[start], cols.payload[start])
    if len(concerned) != 1 or concerned[0][1] != "out":
        return 0
    node = concerned[0][0]
    done = node.sent_run(cols.frames[start:stop], cols.times[start:stop], cols.payload[start:stop],
                         kept.inner[start:stop], kept.padded[start:stop], cols.counter[start:stop].tolist(),
                         int(cols.receiver[start]), annotate, kept.batch)
    if done:
        for other in sides.nodes:
            if other is not node:
                other.advance(cols.times[start + done - 1])
    return done


def _against_source(observer, node, frame: int, t: float, theirs_text: str | None, comment: str, role: str) -> None:
    """A capture written by the live node carries its verdict on each datagram: the re-executed
    core must reach the same one."""
    if role != "in" or not theirs_text:
        return
    theirs = _parsed(theirs_text, True)
    if not theirs or theirs.get("dir") != "in":
        return
    ours = _parsed(comment, False)
    if (theirs.get("verdict"), theirs.get("reason")) != (ours.get("verdict"), ours.get("reason")):
        observer.finding("divergence", [frame], f"the node's own capture says verdict="
                         f"{theirs.get('verdict')}" + (f" reason={theirs['reason']}" if theirs.get("reason") else "")
                         + f"; re-executed, the core says verdict={ours.get('verdict')}"
                         + (f" reason={ours['reason']}" if ours.get("reason") else ""), t, node.name)


_PARSED: dict = {}  # comment text -> its pairs: a bulk transfer's datagrams carry the same few comments


def _parsed(text: str, lines: bool) -> dict:
    """parse_comment of `text` (with `lines`: of its first wgscope line), remembered (bounded)."""
    key = (text, lines)
    pairs = _PARSED.get(key)
    if pairs is None:
        if len(_PARSED) >= 4096:
            _PARSED.clear()
        pairs = next((parse_comment(line) for line in text.splitlines() if parse_comment(line)), {}) if lines \
            else parse_comment(text)
        _PARSED[key] = pairs
    return pairs
