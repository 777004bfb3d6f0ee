"""`doctor --capture FILE`: the replay engine's findings turned into the same plain diagnosis.

The replay engine (wgscope/replay) reconstructs handshakes, cookies and sessions from a
capture, with keys from the capture's DSBs and from the configuration; this module only
translates what it found into Findings a person can act on.
"""

from __future__ import annotations

from collections import defaultdict

from ..plural import counted, noun
from .evidence import unanswered_findings
from .reexecuted import CoreVerdicts, divergence_findings, psk_findings, unused_response_findings, unused_responses
from .finding import ERROR, INFO, OK, WARNING, Finding

# replay finding kind -> (code, severity, title, explanation, fix)
PLAIN = {
    "bad_mac1": (
        "capture_wrong_public_key", ERROR, "initiations are addressed to the wrong public key",
        "mac1 of an initiation is keyed by the responder's public key (WP §5.4.4); these do not match it, so the "
        "responder drops them without a word. The initiator's copy of the responder's PublicKey is wrong.",
        "On the initiator, set the peer's PublicKey to what `wg show` prints as 'public key' on the responder."),
    "bad_mac2": (
        "capture_cookie_mismatch", ERROR, "mac2 does not match the cookie the responder handed out",
        "Under load a responder wants mac2 computed from a cookie bound to the initiator's source address and port "
        "(WP §5.4.7). A mismatch usually means a NAT changed the source port between the cookie and the retry.",
        "Look for a NAT between the peers that rewrites ports; a stable mapping (or PersistentKeepalive) helps."),
    "source_not_allowed": (
        "capture_source_not_allowed", ERROR, "decrypted packets come from addresses outside the sender's AllowedIPs",
        "The tunnel works, but the receiver drops these packets: AllowedIPs is also an access list (WP §2), and "
        "the sender's inner source address is not in its AllowedIPs on the receiving side.",
        "On the receiver, add the sender's tunnel address (or network) to that peer's AllowedIPs."),
    "unknown_receiver_index": (
        "capture_unknown_index", WARNING, "messages for sessions the capture never saw start",
        "Transport data or responses name a receiver index no handshake in the capture created: the capture "
        "started mid-session, or the receiver restarted and forgot the session (it then drops the data until a "
        "new handshake).", "If it persists after a restart of one side, wait for (or force) a new handshake."),
    "replayed": (
        "capture_replayed", WARNING, "messages seen twice", "The same message crossed the capture point twice: a "
        "duplicate on the path, or a replay; WireGuard drops the copy (WP §5.1, §5.4.6).",
        "Usually harmless; look for a looping or duplicating middlebox if it is frequent."),
    "loss": (
        "capture_loss", WARNING, "packets lost", "Counters are missing from a flow: packets were lost before the "
        "capture point (or the capture dropped them).", "Check the underlay for loss (and the MTU)."),
    "counter_outside_window": (
        "capture_reordered", WARNING, "packets arrived far out of order", "Counters more than the replay window "
        "(8128) behind are dropped by the receiver (WP §5.4.6).", "Look for heavy reordering on the path."),
    "reordered": (
        "capture_reordered", INFO, "packets arrived out of order", "Reordering within the replay window is "
        "accepted by WireGuard.", "Nothing to do."),
    "expired_keypair": (
        "capture_expired_keypair", WARNING, "data on an expired session", "Transport data was sent on a keypair "
        "older than REJECT_AFTER_TIME (180 s); the receiver drops it (WP §6.1).",
        "The sender failed to rekey in time: look for lost handshakes around that time."),
}
TIMING = {"retry_timing", "rekey_timing", "keepalive_timing"}


def diagnose_capture(path: str, cfg=None) -> tuple[list[Finding], dict]:
    from ..replay import ReplayInputError, replay_capture

    configs = [cfg.path] if cfg is not None else []
    core = CoreVerdicts()
    try:
        replay = replay_capture(path, configs=configs, node_bus=core.node_bus)
    except ReplayInputError as e:
        return [Finding("capture_unreadable", ERROR, f"cannot use the capture: {e}",
                        "The file is not a pcap/pcapng capture doctor can read.",
                        "Capture with `tcpdump -w file.pcap udp port 51820` (or Wireshark) and try again.",
                        [str(e)], "capture")], {"error": str(e)}
    findings = plain_findings(replay, core)
    report = {"frames": replay.frames, "wireguard": replay.wireguard, "kinds": dict(replay.kinds),
              "handshakes": len(replay.handshakes),
              "completed": sum(1 for h in replay.handshakes if h.outcome == "completed"),
              "cookies": len(replay.cookies), "notices": list(replay.notices),
              "findings": [f.as_dict() for f in replay.findings]}
    return findings, report


def plain_findings(replay, core: CoreVerdicts | None = None) -> list[Finding]:
    out: list[Finding] = []
    if not replay.wireguard:
        return [Finding("capture_no_wireguard", ERROR, "no WireGuard traffic in the capture",
                        "Not one datagram in the capture is a WireGuard message: the capture was taken on the wrong "
                        "interface or port, or nothing was sent at all (no Endpoint, or the tunnel had no traffic "
                        "to trigger a handshake).",
                        "Capture on the underlay interface (not wg0) with `udp port` and the ListenPort of either "
                        "side (51820 unless set) while pinging through the tunnel.",
                        [f"{counted(replay.frames, 'frame')}, none WireGuard"], "capture")]
    by_kind: dict[str, list] = defaultdict(list)
    for f in replay.findings:
        by_kind[f.kind].append(f)
    out += _decryption_findings(replay, by_kind.pop("decryption_failed", []), core)
    if not any(f.code == "capture_psk_mismatch" for f in out):
        out += unused_response_findings(replay)
    for kind, items in by_kind.items():
        if kind == "divergence":
            out += divergence_findings(items)
        elif kind == "handshake_unanswered":
            found = unanswered_findings(replay, items, _evidence(items))
            if "capture_wrong_public_key" in {f.code for f in out}:
                for f in found:
                    f.severity = INFO  # already explained by the mac1 mismatch
            out += found
        elif kind in PLAIN:
            code, sev, title, why, fix = PLAIN[kind]
            out.append(Finding(code, sev, title, why, fix, _evidence(items), "capture"))
        elif kind in TIMING:
            out.append(Finding("capture_timing", INFO, f"timing differs from the protocol's ({kind})",
                               "A timer fired at an unexpected moment: " + items[0].detail,
                               "Usually harmless; it can explain slow recovery.", _evidence(items), "capture"))
        else:
            out.append(Finding(f"capture_{kind}", WARNING, kind.replace("_", " "), items[0].detail,
                               "See `wgscope replay` for the frames.", _evidence(items), "capture"))
    if replay.cookies:
        out.append(_under_load_finding(replay))
    out += _healthy_findings(replay, out)
    for notice in replay.notices:
        out.append(Finding("capture_notice", INFO, notice, "What the replay could and could not see.", "",
                           [], "capture"))
    return out


def _decryption_findings(replay, failed: list, core: CoreVerdicts | None) -> list[Finding]:
    """A response that does not verify is the PSK mismatch (reexecuted.py); an initiation or data that does not
    decrypt is a key one."""
    response_frames = {h.response_frame for h in replay.handshakes if h.response_frame is not None}
    responses = [f for f in failed if f.detail.startswith("response") or response_frames & set(f.frames)]
    out = psk_findings(replay, responses, core)
    others = [f for f in failed if f not in responses]
    if others:
        out.append(Finding(
            "capture_decryption_failed", ERROR, "messages do not decrypt with the keys given",
            "Initiations or transport data fail to authenticate with the keys that decrypt their neighbours: a "
            "wrong key on one side, a corrupted path, or keys missing from the capture.",
            "Check both sides' keys; add the configuration of the other side with --capture's config if you have "
            "it.", _evidence(others), "capture"))
    return out


def _under_load_finding(replay) -> Finding:
    done = [h for h in replay.handshakes if h.outcome == "completed" and h.mac2]
    return Finding(
        "capture_under_load", WARNING if done else ERROR,
        "a peer was under load and answered with cookie replies"
        + ("; handshakes with mac2 then completed" if done else "; no handshake with mac2 completed"),
        "Under load a WireGuard responder answers initiations with a cookie reply, and the initiator must retry "
        "with mac2 (WP §5.3, §5.4.7), at its next retry REKEY_TIMEOUT (5 s) later.",
        "Nothing is misconfigured; find what floods the peer with handshakes.",
        [f"cookie reply in frame {c.frame}" for c in replay.cookies[:5]], "capture")


def _healthy_findings(replay, found: list[Finding]) -> list[Finding]:
    """Handshakes completed and no error found: the capture shows a healthy tunnel."""
    unused = unused_responses(replay)
    completed = [h for h in replay.handshakes if h.outcome == "completed" and h not in unused]
    if not completed or any(f.severity == ERROR for f in found):
        return []
    rtts = [h.rtt for h in completed if h.rtt is not None]
    rtt = f"; handshake round trip {min(rtts) * 1000:.1f} ms" if rtts else ""
    title = f"healthy: {counted(len(completed), 'handshake')} completed in the capture" + rtt
    return [Finding("capture_healthy", OK, title,
                    "Initiations were answered by responses that authenticate.", "Nothing to fix.",
                    [f"response in frame {h.response_frame}" for h in completed[:3]], "capture")]


def _evidence(items: list) -> list[str]:
    lines = [f"{noun(len(f.frames), 'frame')} {f.frames_text()}: {f.detail}" for f in items[:4]]
    if len(items) > 4:
        lines.append(f"… {len(items) - 4} more")
    return lines
