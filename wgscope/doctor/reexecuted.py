"""What `doctor --capture` concludes from replay's re-execution of a side (wgscope/replay/node.py).

When a side's static private key is known, replay runs that side's own `Device` over the capture.
Two kinds of evidence come out of it that the headers alone cannot give:

- a response the re-executed core rejects as `decryption_failed`, after its responder identified
  the initiator (it answered), is the pre-shared key mismatch: the PSK enters Noise_IKpsk2 only in
  the response (WP §5.4.3), so with both static keys right the response does not verify exactly
  when the two sides' PresharedKeys differ;
- seen from the responder's side (its keys only), the same mismatch leaves responses that verify
  under the responder's keys but that the initiator never uses: no data or keepalive on the new
  session (the responder waits for the initiator's first transport message, WP §5.4.6, and
  wireguard-go and wgscope send a keepalive right after consuming a response when nothing is
  queued), and a fresh initiation instead. doctor does not count those as completed;
- a divergence: the wire shows something the same core, fed the same inputs, does not do. Each one
  becomes a finding with its frame numbers and replay's own sentence, grouped when the same rule is
  broken again and again (a retry timer firing early does so at every retry).
"""

from __future__ import annotations

import re

from ..plural import noun
from .finding import ERROR, WARNING, Finding

MAX_DIVERGENCE_FINDINGS = 8  # distinct departures listed; the rest are counted in the last one
MAX_FRAMES_LISTED = 6
MAX_TITLE = 110  # characters of replay's sentence kept whole in a finding's title


class CoreVerdicts:
    """The re-executed sides' own rejections of responses: `node_bus` for replay_capture records them."""

    def __init__(self):
        self.rejected: list[tuple[str, object]] = []  # (node name, handshake_response_rejected event)

    def node_bus(self, name: str):
        from ..events import INFO, EventBus

        bus = EventBus(INFO)
        bus.subscribe(lambda e: self._see(name, e), INFO)
        return bus

    def _see(self, name: str, event) -> None:
        if event.name == "handshake_response_rejected" and event.fields.get("reason") == "decryption_failed":
            self.rejected.append((name, event))


def psk_findings(replay, responses: list, core: CoreVerdicts | None = None) -> list[Finding]:
    """The PSK mismatch, from responses that do not verify.

    The strongest evidence is the initiator's own core, re-executed over the capture, rejecting the
    response (`core`); without a re-executed initiator, `responses` are replay's `decryption_failed`
    findings about responses (the known keys, among them the PSK, do not open them)."""
    by_index = {h.sender_index: h for h in replay.handshakes}
    seen = []
    for name, event in (core.rejected if core else []):
        h = by_index.get(event.fields.get("receiver_index"))
        where = (f"frame {h.response_frame}: the response to {name}'s initiation in frame {h.frame}"
                 if h is not None and h.response_frame is not None else
                 f"a response to {name}'s initiation 0x{event.fields.get('receiver_index', 0):08x}")
        seen.append(f"{where} does not verify: {name}'s own protocol core, re-executed, rejected it "
                    "(handshake_response_rejected reason=decryption_failed)")
    if not seen and not responses:
        return []
    how = ("the initiator's own protocol core, re-executed over the capture with its keys, rejected each "
           "response" if seen else "the responses do not authenticate under the known keys")
    seen = seen or [f"{noun(len(f.frames), 'frame')} {f.frames_text()}: {f.detail}" for f in responses]
    if len(seen) > 4:
        seen = seen[:4] + [f"… {len(seen) - 4} more {noun(len(seen) - 4, 'response')} that do not verify"]
    return [Finding(
        "capture_psk_mismatch", ERROR, "the responses do not verify: the pre-shared keys differ",
        f"The responder identified the initiator (it answered, which it does only after decrypting the "
        f"initiator's static key and timestamp: WP §5.4.2), but {how}. The pre-shared key enters Noise_IKpsk2 "
        "only at the response (WP §5.4.3), so different PresharedKeys (or one side with none) fail exactly "
        "here and nowhere earlier.",
        "Make PresharedKey identical on both sides of the pair, or remove it on both.", seen, "capture")]


def unused_responses(replay) -> list:
    """Handshakes whose response verified under the known keys, yet their initiator never sent on the
    session and started another handshake with the same peer after it: the response did not work for
    the initiator."""
    out = []
    for h in replay.handshakes:
        verified = h.outcome == "completed" or (h.outcome == "unverified" and h.reason == "unconfirmed")
        if not verified or h.session is None or h.session.confirmed_frame is not None:
            continue
        again = any(later.frame > (h.response_frame or h.frame) and later.initiator is h.initiator
                    and later.responder is h.responder for later in replay.handshakes)
        if again:
            out.append(h)
    return out


def unused_response_findings(replay) -> list[Finding]:
    unused = unused_responses(replay)
    if not unused:
        return []
    ini, res = unused[0].initiator.name, unused[0].responder.name
    seen = [f"frame {h.response_frame}: {res}'s response to the initiation in frame {h.frame} verifies under "
            f"{res}'s keys, but {ini} sent nothing on that session and initiated again" for h in unused[:4]]
    if len(unused) > 4:
        seen.append(f"… {len(unused) - 4} more")
    return [Finding(
        "capture_psk_mismatch", ERROR, f"{ini} never uses {res}'s responses: the pre-shared keys likely differ",
        f"{res} identified {ini} and answered (WP §5.4.2), and its responses verify under {res}'s own keys, "
        f"pre-shared key included. An initiator that accepts a response confirms the session at once with data "
        f"or a keepalive; {ini} sent nothing on these sessions and started a new handshake instead, so the "
        f"responses did not verify for it. The pre-shared key enters only at the response (WP §5.4.3): {ini}'s "
        "PresharedKey for this peer differs from (or is missing beside) "
        f"{res}'s. The other explanation is that the responses were lost after this capture point.",
        "Make PresharedKey identical on both sides of the pair, or remove it on both; if they are identical, "
        f"capture on {ini}'s side to see whether the responses arrive.", seen, "capture")]


def _short(name: str) -> str:
    return name[:8]


def divergence_findings(items: list) -> list[Finding]:
    """One finding per departure from the protocol, with its frames and replay's sentence."""
    groups: dict[tuple, list] = {}
    for f in items:
        groups.setdefault((f.peer, _rule_of(f.detail)), []).append(f)
    out = []
    for (peer, _), group in list(groups.items())[:MAX_DIVERGENCE_FINDINGS]:
        out.append(_divergence(peer, group))
    rest = list(groups.values())[MAX_DIVERGENCE_FINDINGS:]
    if rest:
        frames = sorted({n for g in rest for f in g for n in f.frames})
        out.append(Finding("capture_divergence", WARNING, f"{len(rest)} more {noun(len(rest), 'kind')} of divergence",
                           "Further places where the wire and the re-executed protocol core disagree.",
                           "See `wgscope replay` for each of them.",
                           [f"{noun(len(frames), 'frame')} {_frames(frames)}"], "capture"))
    return out


def _rule_of(detail: str) -> str:
    """The sentence with its numbers taken out: the same rule broken at several frames groups together."""
    return re.sub(r"\d+(\.\d+)?", "#", detail)


def _frames(frames: list[int]) -> str:
    text = ", ".join(map(str, frames[:MAX_FRAMES_LISTED]))
    return text + (f" … ({len(frames)} frames)" if len(frames) > MAX_FRAMES_LISTED else "")


def _divergence(peer: str | None, group: list) -> Finding:
    first = group[0]
    frames = sorted({n for f in group for n in f.frames})
    where = f"{noun(len(frames), 'frame')} {_frames(frames)}"
    sentence = first.detail
    if peer and sentence.startswith(peer):
        sentence = _short(peer) + sentence[len(peer):]
    head = sentence if len(sentence) <= MAX_TITLE else sentence.split("; ")[0]  # the rule itself stays in `why`
    more = f" ({len(group)} times)" if len(group) > 1 else ""
    seen = [f"{noun(len(f.frames), 'frame')} {','.join(map(str, f.frames)) or 'none'}: {f.detail}" for f in group[:4]]
    if len(group) > 4:
        seen.append(f"… {len(group) - 4} more at frames {_frames(sorted({n for f in group[4:] for n in f.frames}))}")
    return Finding(
        "capture_divergence", WARNING, f"{where}: {head}{more}",
        f"Replay re-executed {peer or 'this side'} through wgscope's own protocol core with the same inputs, "
        f"and the wire departs from what that core does: {sentence}. Either the implementation that sent "
        "this does not follow the protocol here, or it was configured differently from what the capture's "
        "keys and --config say.",
        "Compare the sender's timers and configuration with the rule quoted; `wgscope replay` shows the frames "
        "in their ladder.", seen, "capture")
