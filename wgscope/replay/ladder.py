"""A terminal ladder diagram of the handshake messages between two parties.

    time      alpha (192.0.2.1:51820)                bravo (192.0.2.2:51820)
    +0.000    |──── initiation 0x0750f0eb ─────────────▶|   #1
    +0.001    |◀─── response 0xe2880ed9 ──────────────────|   #2  session 1
"""

from __future__ import annotations

from .observer import Replay
from .model import Party, endpoint_text

WIDTH = 44


def _arrow(label: str, rightward: bool, width: int = WIDTH) -> str:
    body = f" {label} "
    fill = max(2, width - len(body) - 2)
    left = 4
    if rightward:
        return "|" + "─" * left + body + "─" * (fill - left) + "▶|"
    return "|◀" + "─" * left + body + "─" * (fill - left) + "|"


def ladder_pairs(result: Replay) -> list[tuple[Party, Party]]:
    pairs: list[tuple[Party, Party]] = []
    for hs in result.handshakes:
        pair = (hs.initiator, hs.responder)
        if pair not in pairs and (hs.responder, hs.initiator) not in pairs:
            pairs.append(pair)
    return pairs


def ladder_rows(result: Replay, left: Party, right: Party) -> list[tuple[float, int, str, bool, str]]:
    """(time, frame, label, rightward, remark) for every handshake message between left and right."""
    rows = []
    for hs in result.handshakes:
        if {hs.initiator.id, hs.responder.id} != {left.id, right.id}:
            continue
        to_right = hs.initiator is left
        remark = f"attempt {hs.attempt}" if hs.attempt > 1 else ""
        if hs.mac2:
            remark = (remark + " mac2").strip()
        # A verdict on the response stands on the response's row; one on the initiation on its own.
        verdict = ""
        if hs.outcome == "rejected":
            verdict = f"rejected: {hs.reason}"
        elif hs.outcome == "unverified":
            verdict = "not confirmed by the initiator" if hs.reason == "unconfirmed" else \
                "not verified: " + (hs.reason or "keys unknown")
        on_response = bool(verdict) and hs.response_frame is not None
        if verdict and not on_response:
            remark = (remark + " " + verdict).strip()
        rows.append((hs.time, hs.frame, f"initiation 0x{hs.sender_index:08x}", to_right, remark))
        for fr in hs.cookie_frames:
            c = next((c for c in result.cookies if c.frame == fr), None)
            if c is not None:
                rows.append((c.time, fr, "cookie reply", not to_right, "under load"))
        if hs.response_frame is not None:
            sess = hs.session
            rows.append((hs.response_time, hs.response_frame, f"response 0x{hs.responder_index:08x}", not to_right,
                         f"session {sess.id}" + ("" if sess is None or sess.decryptable else " (sealed)")
                         + (f" {verdict}" if on_response else "")))
            if sess is not None and sess.confirmed_frame is not None and sess.i2r is not None \
                    and sess.i2r.first_time is not None:
                kind = "keepalive" if sess.i2r.keepalives and sess.i2r.data_packets == 0 else "first data"
                rows.append((sess.i2r.first_time, sess.confirmed_frame, kind, to_right, "confirms the session"))
        elif hs.outcome == "unanswered":
            rows[-1] = rows[-1][:4] + ((rows[-1][4] + " no response").strip(),)
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def render(result: Replay, limit: int = 40) -> list[str]:
    """Text lines of one ladder per pair of parties."""
    out: list[str] = []
    t0 = result.first_time or 0.0
    for left, right in ladder_pairs(result):
        lname = f"{left.name} ({endpoint_text(left.endpoint)})"
        rname = f"{right.name} ({endpoint_text(right.endpoint)})"
        out.append(f"{'time':>10}  {lname}" + " " * max(2, WIDTH + 1 - len(lname) - len(rname)) + rname)
        rows = ladder_rows(result, left, right)
        shown = rows if len(rows) <= limit else rows[: limit // 2] + [None] + rows[-limit // 2:]
        for row in shown:
            if row is None:
                out.append(f"{'':>10}  {'⋮':^{WIDTH}}  ({len(rows) - limit} more messages)")
                continue
            t, frame, label, rightward, remark = row
            out.append(f"{t - t0:>+10.3f}  {_arrow(label, rightward)}  #{frame}" + (f"  {remark}" if remark else ""))
        out.append("")
    return out
