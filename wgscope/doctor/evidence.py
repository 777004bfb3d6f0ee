"""What unanswered initiations in a capture mean, reasoned from what else the capture holds.

A handshake that completed in either direction proves both static keys (each side decrypted
the other's identity and the responder's answer authenticated: WP §5.4.2-5.4.3), so key
mistakes are ruled out and not offered. Then where the unanswered initiations went is compared
with where the peer actually sends from: a different port or address is a wrong Endpoint.
Every value the text names comes from the capture; nothing is left as a placeholder.
"""

from __future__ import annotations

from ..plural import counted, noun
from .classify import SILENCE_CHECKS
from .finding import ERROR, Finding


def _ep(addr: tuple | None) -> str:
    if not addr:
        return "(unknown)"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _key(party) -> str | None:
    from ..keytext import encode

    return encode(party.public_key) if getattr(party, "public_key", None) else None


def _addresses_of(party, replay) -> list[tuple]:
    """Where `party` was seen sending from: its messages' sources in the capture."""
    seen = [tuple(ep) for ep in getattr(party, "endpoints", []) or []]
    for h in replay.handshakes:
        if h.initiator is party and h.src and tuple(h.src) not in seen:
            seen.append(tuple(h.src))
    return seen


def unanswered_findings(replay, items: list, evidence: list[str]) -> list[Finding]:
    """Findings for `handshake_unanswered` items (replay findings), given the whole replay."""
    chains = [h for h in replay.handshakes if h.outcome != "completed" and any(h.frame in f.frames for f in items)]
    completed = [h for h in replay.handshakes if h.outcome == "completed"]
    out: list[Finding] = []
    for silent_to in sorted({(h.initiator.id, h.responder.id) for h in chains}):
        chain = [h for h in chains if (h.initiator.id, h.responder.id) == silent_to]
        first = chain[0]
        proof = next((h for h in completed if {h.initiator.id, h.responder.id} == set(silent_to)), None)
        out.append(_explain(replay, first, chain, proof))
    return out or [_unknown_parties(evidence)]


def _explain(replay, first, chain, proof) -> Finding:
    ini, res = first.initiator, first.responder
    dst = tuple(first.dst) if first.dst else None
    frames = ", ".join(str(h.frame) for h in chain[:6]) + (" …" if len(chain) > 6 else "")
    seen = [f"{noun(len(chain), 'frame')} {frames}: {counted(len(chain), 'initiation')} from {ini.name} to {_ep(dst)}, "
            f"none answered"]
    if proof is None:
        checks = [c.format(ours=_key(ini) or f"{ini.name}'s public key (`wg show` on it prints it)",
                           endpoint=_ep(dst), port=dst[1] if dst else "the peer's ListenPort")
                  for c in SILENCE_CHECKS]
        return Finding("capture_handshake_unanswered", ERROR, f"{ini.name}'s handshake initiations to {_ep(dst)} "
                       "went unanswered", "Initiations reached the capture point and no response followed, and no "
                       "handshake in the capture completed, so nothing here rules out any cause. In order of "
                       "likelihood:\n" + "\n".join(checks),
                       "Work down the list; `wgscope doctor --probe` from the initiator's side narrows it down.",
                       seen, "capture")
    who = "the peer itself" if proof.initiator is res else ini.name
    seen.append(f"frame {proof.frame}: a handshake initiated by {proof.initiator.name} ({who}) completed "
                f"(response in frame {proof.response_frame}): both static keys are right")
    sources = [a for a in _addresses_of(res, replay) if a != dst]
    if dst and sources:
        real = sources[0]
        part = "port" if real[0] == dst[0] else "address"
        seen.append(f"{res.name} sends from {_ep(real)}, not {_ep(dst)}")
        return Finding(
            "capture_wrong_endpoint", ERROR, f"{ini.name}'s Endpoint for {res.name} has the wrong {part}: "
            f"{_ep(dst)}, but {res.name} is at {_ep(real)}",
            f"The keys are proven right: the handshake in frame {proof.frame} completed. {ini.name}'s own "
            f"initiations go to {_ep(dst)} and nothing answers there, while {res.name} sends from {_ep(real)}. "
            f"The tunnel came up only because {res.name} initiated: WireGuard then sends to the address an "
            f"authenticated message came from (WP §2). After a restart, or whenever {ini.name} has to start "
            "the handshake, it cannot reach the peer.",
            f"On {ini.name}, set the peer's Endpoint = {_ep(real)} (or make the peer listen on {_ep(dst)}).",
            seen, "capture")
    return Finding(
        "capture_handshake_unanswered", ERROR, f"{ini.name}'s initiations to {_ep(dst)} went unanswered, "
        "though the keys are right",
        f"The keys are proven right: the handshake in frame {proof.frame} completed, so this is not a key "
        f"mistake. {ini.name}'s initiations to {_ep(dst)} get no response: something drops UDP from "
        f"{ini.name} to {res.name} in that direction (a firewall or a NAT that does not forward it), or the "
        "peer rate-limits or ignores initiations that carry an old timestamp.",
        f"Look for the datagrams on {res.name} (`tcpdump -ni any udp port {dst[1] if dst else 51820}`); check "
        f"firewall rules and NAT forwarding for UDP to {_ep(dst)}.", seen, "capture")


def _unknown_parties(evidence: list[str]) -> Finding:
    return Finding("capture_handshake_unanswered", ERROR, "handshake initiations went unanswered",
                   "Initiations reached the capture point and no response followed.",
                   "Run `wgscope doctor --probe` from the initiator's side to narrow it down.", evidence, "capture")
