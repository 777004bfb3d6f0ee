"""Anomalies replay reports, each with the frame numbers involved.

Every kind names the rule it checks and where the rule comes from (WP = whitepaper section,
WG-GO = wireguard-go device/ file), so a finding can be checked against the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS: dict[str, str] = {
    "replayed": "a message seen before: same counter on a session, or the same handshake message again (WP §5.4.6, §5.1)",
    "counter_outside_window": "counter more than the replay window (8128) behind the newest one (WP §5.4.6; WG-GO replay/replay.go)",
    "reordered": "a counter lower than one already seen on the same flow",
    "loss": "counters missing from a flow: packets lost before the capture point",
    "decryption_failed": "a message that does not authenticate with the keys that decrypt its neighbours",
    "unknown_receiver_index": "a message for a receiver index no handshake in the capture created",
    "bad_mac1": "mac1 does not match the responder's public key (WP §5.4.4)",
    "bad_mac2": "mac2 does not match the cookie the responder handed out (WP §5.4.4, §5.4.7)",
    "handshake_unanswered": "initiations that no response followed (WP §6.4)",
    "retry_timing": "a retransmitted initiation not REKEY_TIMEOUT (5 s) + up to 334 ms jitter after the last (WP §6.4; WG-GO timers.go)",
    "rekey_timing": "a session initiator rekeying before REKEY_AFTER_TIME (120 s), or sending past it without rekeying (WP §6.2)",
    "keepalive_timing": "a passive keepalive not KEEPALIVE_TIMEOUT (10 s) after the data it answers (WP §6.5)",
    "expired_keypair": "transport data on a keypair older than REJECT_AFTER_TIME (180 s) (WP §6.1)",
    "source_not_allowed": "a decrypted packet whose source is outside the sender's allowed IPs (WP §2)",
    "malformed": "a datagram that looks like WireGuard but is not a valid message",
    "divergence": "a re-executed side's protocol core and the wire disagree: what the node sent (or its verdict on "
                  "what it received) is not what the same Device, fed the same inputs, does",
}


@dataclass
class Finding:
    kind: str
    time: float
    frames: list[int]
    detail: str
    peer: str | None = None  # who it concerns (name)
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "time": self.time, "frames": list(self.frames), "detail": self.detail,
                "peer": self.peer, **self.extra}

    def frames_text(self, limit: int = 8) -> str:
        fr = self.frames
        text = ",".join(map(str, fr[:limit]))
        return text + (f",… ({len(fr)} frames)" if len(fr) > limit else "")


def frame_ranges(counters: list[int]) -> list[tuple[int, int]]:
    """Sorted counters -> [(first, last)] runs, for loss reports."""
    out: list[tuple[int, int]] = []
    for c in counters:
        if out and c == out[-1][1] + 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out
