"""The human summary of a replay in the terminal: overview, per-peer table, sessions, ladder, findings."""

from __future__ import annotations

import datetime

from rich.console import Console
from rich.table import Table

from .observer import Replay
from .findings import KINDS
from .model import endpoint_text
from . import ladder


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def render(result: Replay, console: Console | None = None, ladder_limit: int = 40, findings_limit: int = 60) -> None:
    if console is None:
        probe = Console()
        console = probe if probe.is_terminal else Console(width=120)
    _overview(result, console)
    _tables(result, console)
    _handshakes(result, console, ladder_limit)
    _findings(result, console, findings_limit)


def _overview(result: Replay, c: Console) -> None:
    span = (result.last_time - result.first_time) if result.first_time is not None else 0.0
    k = result.kinds
    c.print(f"[bold]capture[/]: {result.frames} frames, {result.wireguard} WireGuard datagrams, "
            f"{result.other} other; {span:.3f} s from {_when(result.first_time)}")
    c.print(f"messages: {k['initiation']} initiation, {k['response']} response, {k['cookie_reply']} cookie reply, "
            f"{k['transport']} transport data, {k['keepalive']} keepalive")
    keys = result.keys
    c.print(f"keys: {keys.get('static_private', 0)} static private, {keys.get('static_public', 0)} static public, "
            f"{keys.get('ephemeral_private', 0)} ephemeral private, {keys.get('preshared', 0)} pre-shared"
            + (f" (from {', '.join(keys.get('sources', []))})" if keys.get("sources") else ""))
    for n in result.notices:
        c.print(f"[yellow]note[/]: {n}")


def _tables(result: Replay, c: Console) -> None:
    t = Table(title="peers", title_justify="left")
    for col in ("peer", "endpoints", "init", "resp", "sent", "data", "keepalive", "decrypted", "bytes"):
        t.add_column(col, justify="right" if col in ("init", "resp", "sent", "data", "keepalive", "decrypted",
                                                      "bytes") else "left")
    for p in result.parties:
        who = p.name if not p.label or not p.key_text else f"{p.label} ({p.key_text[:8]})"
        t.add_row(who if p.key_text else f"{who} (key unknown)", " → ".join(endpoint_text(e) for e in p.endpoints),
                  str(p.initiations), str(p.responses), str(p.tx_packets), str(p.data_packets), str(p.keepalives),
                  str(p.decrypted), str(p.tx_bytes))
    c.print(t)

    if result.sessions:
        t = Table(title="sessions", title_justify="left")
        for col in ("#", "initiator → responder", "indices", "from", "lifetime", "→ pkts", "← pkts", "decrypted",
                    "lost"):
            t.add_column(col)
        t0 = result.first_time or 0.0
        for s in result.sessions:
            fl = s.flows()
            dec = sum(f.decrypted for f in fl)
            state = str(dec) if s.decryptable else (s.sealed_reason or "sealed")
            t.add_row(str(s.id), f"{s.initiator.name} → {s.responder.name}",
                      f"0x{s.initiator_index or 0:08x}/0x{s.responder_index or 0:08x}",
                      "before capture" if s.predates_capture else f"+{s.created - t0:.3f}",
                      f"{s.last_time - s.created:.1f} s", str(s.i2r.packets if s.i2r else 0),
                      str(s.r2i.packets if s.r2i else 0), state, str(sum(len(f.missing) for f in fl)))
        c.print(t)


def _handshakes(result: Replay, c: Console, ladder_limit: int) -> None:
    for n in result.nodes:
        agreed = sum(n["agreed"].values())
        line = (f"re-executed [bold]{n['name']}[/] ({n['source']}): {agreed} datagrams sent as its core sends them, "
                f"{n['divergences']} divergences")
        if n["compared_by_kind"]:
            line += f", {sum(n['compared_by_kind'].values())} compared by kind and timing only"
        if n["unknown_inputs"]:
            line += f" (not in the capture: {', '.join(n['unknown_inputs'])})"
        c.print(line)
        if n.get("stop_reason"):
            c.print(f"  [yellow]note[/]: {n['stop_reason']}")
    hs = result.handshakes
    if hs:
        retries = [h for h in hs if h.attempt > 1]
        done = [h for h in hs if h.outcome == "completed"]
        unverified = [h for h in hs if h.outcome == "unverified"]
        rejected = [h for h in hs if h.outcome == "rejected"]
        rtts = [h.rtt for h in done if h.rtt is not None]
        line = f"handshakes: {len(hs)} initiations, {len(done)} completed, {len(retries)} retries"
        if rejected:
            line += f", {len(rejected)} rejected"
        unconfirmed = [h for h in unverified if h.reason == "unconfirmed"]
        if unconfirmed:
            line += (f", {len(unconfirmed)} answered but never used by the initiator (its pre-shared key "
                     "may differ, or the capture ends first)")
        if len(unverified) > len(unconfirmed):
            line += f", {len(unverified) - len(unconfirmed)} answered but not verified (keys unknown)"
        if rtts:
            line += f", response time median {sorted(rtts)[len(rtts) // 2] * 1000:.1f} ms"
        if result.cookies:
            line += f", {len(result.cookies)} cookie replies"
        if result.roams:
            line += f", {len(result.roams)} endpoint changes (roaming)"
        c.print(line)
        for row in ladder.render(result, ladder_limit):
            c.print(row, highlight=False, markup=False)

    if result.inner:
        top = sorted(result.inner.items(), key=lambda kv: -kv[1])[:8]
        c.print("inner packets: " + "; ".join(f"{k} ×{v}" for k, v in top))


def _findings(result: Replay, c: Console, findings_limit: int) -> None:
    if result.findings:
        t = Table(title=f"findings ({len(result.findings)})", title_justify="left")
        t.add_column("kind")
        t.add_column("frames")
        t.add_column("what")
        for f in result.findings[:findings_limit]:
            t.add_row(f.kind, f.frames_text(), f.detail)
        c.print(t)
        if len(result.findings) > findings_limit:
            c.print(f"… and {len(result.findings) - findings_limit} more (--json shows all)")
        for kind in sorted({f.kind for f in result.findings}):
            c.print(f"  [dim]{kind}: {KINDS.get(kind, '')}[/]")
    else:
        c.print("findings: none")
