"""Plain functions from control-socket messages (snapshots, events) to short text.

Kept apart from the widgets so each rule — how a countdown, an index or a session state is
written — is decided once and tested without a terminal.
"""

from __future__ import annotations

import datetime

from rich.text import Text

from ..events import CATALOGUE, DEBUG
from ..plural import counted
from ..protocol.constants import REJECT_AFTER_TIME, REKEY_AFTER_TIME

# Timer names from wgscope/protocol/timers.py, shortened for narrow terminals.
TIMER_SHORT = {
    "retransmit_handshake": "retry",
    "send_keepalive": "keepalive",
    "new_handshake": "new-hs",
    "zero_key_material": "zero",
    "persistent_keepalive": "persist",
}
NONE = "—"


def short_key(key: str | None, n: int = 8) -> str:
    return f"{key[:n]}…" if key else NONE


def peer_name(peer: dict) -> str:
    """'bravo vT3xQ2ab…' or just the short key when the peer has no label."""
    label = peer.get("label")
    return f"{label} {short_key(peer.get('public_key'), 6)}" if label else short_key(peer.get("public_key"))


def seconds(s: float | None) -> str:
    """A duration or countdown: 0.42s, 9.8s, 2m03s, 1h02m; — when not set."""
    if s is None:
        return NONE
    sign = "-" if s < 0 else ""
    s = abs(s)
    if s < 10:
        return f"{sign}{s:.2f}s" if s < 1 else f"{sign}{s:.1f}s"
    if s < 60:
        return f"{sign}{s:.0f}s"
    if s < 3600:
        return f"{sign}{int(s // 60)}m{int(s % 60):02d}s"
    return f"{sign}{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def size(n: int | None) -> str:
    if n is None:
        return NONE
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def index(i: int | None) -> str:
    """Receiver indices as the 8 hex digits Wireshark shows (wg.receiver_index)."""
    return NONE if i is None else f"{i:08x}"


def reject_in(keypair: dict | None) -> float | None:
    """Seconds until the keypair reaches REJECT_AFTER_TIME (WP §6.1) and may no longer be used."""
    return None if keypair is None else REJECT_AFTER_TIME - keypair["age"]


def rekey_in(keypair: dict | None) -> float | None:
    """Seconds until the current keypair is REKEY_AFTER_TIME old (WP §6.2), after which the next packet
    we send starts a new handshake. Only the side that initiated the session rekeys this way (WG-GO
    keepKeyFreshSending checks keypair.isInitiator), so None for a session the peer initiated."""
    if keypair is None or not keypair.get("initiator"):
        return None
    return REKEY_AFTER_TIME - keypair["age"]


def rekey_text(keypair: dict | None) -> str:
    """The rekey countdown as a person reads it, saying whose turn it is."""
    if keypair is None:
        return NONE
    if not keypair.get("initiator"):
        return "by the peer (it initiated this session)"
    due = rekey_in(keypair)
    return f"in {seconds(due)} (we initiated)" if due > 0 else "due with our next packet (we initiated)"


def keepalive_in(peer: dict) -> float | None:
    """Seconds until the next keepalive is due: the passive one (KEEPALIVE_TIMEOUT after data we did not
    answer) or the persistent one, whichever is armed and sooner."""
    timers = peer.get("timers", {})
    due = [timers.get(n) for n in ("send_keepalive", "persistent_keepalive") if timers.get(n) is not None]
    return min(due) if due else None


def handshake_counts(peer: dict) -> str:
    """Honest handshake counts: completed ones, attempts since the latest completed handshake and the
    current run of initiations that got no answer at all (Peer.initiations_since_handshake,
    Peer.unanswered_initiations; absent from an older node's snapshot)."""
    parts = [f"{peer.get('handshakes', 0)} completed"]
    if peer.get("initiations_since_handshake") is not None:
        parts.append(f"{counted(peer['initiations_since_handshake'], 'initiation')} since the last")
    if peer.get("unanswered_initiations") is not None:
        parts.append(f"{peer['unanswered_initiations']} unanswered in a row")
    parts.append(f"{counted(peer.get('initiations_sent', 0), 'initiation')} sent in all "
                 f"({counted(peer.get('retries', 0), 'retry', 'retries')})")
    return ", ".join(parts)


def session_state(peer: dict) -> tuple[str, str]:
    """(word, style) summarising the peer's session for the table."""
    kps = peer.get("keypairs", {})
    cur, nxt = kps.get("current"), kps.get("next")
    timers = peer.get("timers", {})
    if cur is not None and cur["age"] < REJECT_AFTER_TIME:
        if timers.get("retransmit_handshake") is not None:
            return "rekeying", "yellow"
        return "established", "green"
    if nxt is not None:
        return "unconfirmed", "yellow"
    if timers.get("retransmit_handshake") is not None:
        return "handshaking", "yellow"
    if cur is not None:
        return "expired", "red"
    return "no session", "dim"


def armed_timers(peer: dict) -> list[tuple[str, float]]:
    """Armed timers, soonest first, as (short name, seconds until due)."""
    items = [(TIMER_SHORT.get(n, n), v) for n, v in peer.get("timers", {}).items() if v is not None]
    return sorted(items, key=lambda kv: kv[1])


def timers_text(peer: dict) -> str:
    armed = armed_timers(peer)
    return "  ".join(f"{n} {seconds(v)}" for n, v in armed) if armed else NONE


def drops_text(drops: dict | None) -> str:
    if not drops:
        return "0"
    return ", ".join(f"{reason} {n}" for reason, n in sorted(drops.items(), key=lambda kv: -kv[1]))


def keypair_text(kp: dict | None) -> str:
    """'3a4f12c0→9b1e0d77 age 12.3s' (our receiver index → theirs)."""
    if kp is None:
        return NONE
    return f"{index(kp['local_index'])}→{index(kp['remote_index'])} age {seconds(kp['age'])}"


def last_handshake(peer: dict) -> str:
    ago = peer.get("since_handshake")
    return "never" if ago is None else f"{seconds(ago)} ago"


# ---------------------------------------------------------------- events
LEVEL_STYLE = {5: "dim", 10: "cyan", 20: "bold", 30: "bold red"}
CATEGORY_STYLE = {"handshake": "magenta", "cookie": "yellow", "session": "green", "timer": "blue",
                  "routing": "cyan", "data": "white", "config": "bright_black", "interface": "bright_black"}


def event_category(name: str) -> str:
    et = CATALOGUE.get(name)
    return et.category if et else "other"


def field_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") or "0"
    if isinstance(v, list):
        return ",".join(map(str, v)) or "[]"
    return str(v)


def wall_clock(wall: float) -> str:
    """Wall-clock time of day in UTC, to the millisecond: how the console log and Wireshark line up."""
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:12]


def event_wall(msg: dict, wall_offset: float | None) -> float | None:
    """The event's wall-clock time: its own `wall` field, else its protocol time plus the node's
    offset (snapshot `wall` - `time`), else None."""
    if isinstance(msg.get("wall"), (int, float)):
        return float(msg["wall"])
    if wall_offset is None or not isinstance(msg.get("time"), (int, float)):
        return None
    return msg["time"] + wall_offset


def event_text(msg: dict, labels: dict[str, str], wall_offset: float | None = None, wall: bool = True) -> Text:
    """One event as one line: time (UTC wall clock by default, else the protocol clock), peer, name, fields."""
    name = msg.get("event", "?")
    peer = msg.get("peer")
    who = labels.get(peer) or short_key(peer, 6) if peer else "node"
    text = Text(no_wrap=True, overflow="ellipsis")
    at = event_wall(msg, wall_offset) if wall else None
    text.append(f"{wall_clock(at)} " if at is not None else f"{msg.get('time', 0.0):12.3f} ", style="dim")
    text.append(f"{who[:12]:<12} ", style="bold")
    text.append(name, style=CATEGORY_STYLE.get(event_category(name), ""))
    for key, value in (msg.get("fields") or {}).items():
        if key == "sender_index" or key.endswith("_index") or key in ("current", "previous", "next"):
            value = index(value) if isinstance(value, int) else value
        text.append(f" {key}=", style="dim")
        text.append(field_value(value))
    return text


# Not a routing miss: the kernel's own link-local/multicast packets on the TUN (issue 17, "quiet when healthy")
QUIET_WHEN_HEALTHY = {"local_traffic_ignored"}


def is_churn(name: str) -> bool:
    """Events a person debugging a tunnel rarely wants by default: timer arming/cancelling/firing (four
    per ping), the per-packet trace events and the kernel's own local traffic left alone. Handshakes,
    cookies, keypairs, drops, routing misses, endpoint changes, keepalives and configuration stay in view."""
    et = CATALOGUE.get(name)
    return et is not None and (et.category == "timer" or et.level < DEBUG or name in QUIET_WHEN_HEALTHY)


def matches(msg: dict, peer_filter: str | None, terms: list[str], show_churn: bool = True) -> bool:
    """Filter for the event pane: a peer (public key), kind terms, and the churn switch.

    A term matches an event name or category by substring; '-term' excludes. With only
    exclusions, everything else passes. Churn (is_churn) is hidden unless `show_churn` or a
    term asks for it by name."""
    if peer_filter is not None and msg.get("peer") != peer_filter:
        return False
    name = msg.get("event", "")
    category = event_category(name)
    include = [t for t in terms if not t.startswith("-")]
    exclude = [t[1:] for t in terms if t.startswith("-") and len(t) > 1]
    if any(t in name or t == category for t in exclude):
        return False
    asked = any(t in name or t == category for t in include)
    if not show_churn and is_churn(name) and not asked:
        return False
    return not include or asked


def parse_terms(text: str) -> list[str]:
    return [t.strip().lower() for t in text.replace(",", " ").split() if t.strip()]
