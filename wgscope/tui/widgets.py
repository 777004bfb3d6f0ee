"""The dashboard's widgets: node bar, peer table, peer card, event pane. They render; the app decides."""

from __future__ import annotations

from collections import deque

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable, RichLog, Static

from . import formatting as fmt
from ..plural import counted
from ..protocol.timers import TIMER_NAMES


class NodeBar(Static):
    """One line: which node, its key and port, load, and whether we are connected."""

    def show(self, snapshot: dict | None, status: str, connected: bool, paused: bool) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        if snapshot:
            text.append(f" {snapshot.get('name', '?')} ", style="bold reverse")
            text.append(f" {fmt.short_key(snapshot.get('public_key'), 10)}  port {snapshot.get('listen_port')}  ")
            wall = snapshot.get("wall")
            if isinstance(wall, (int, float)):
                text.append(f"{fmt.wall_clock(wall)[:8]} UTC  ")
            text.append(f"t={snapshot.get('time', 0.0):.1f}s  ", style="dim")
            if snapshot.get("under_load"):
                text.append("UNDER LOAD ", style="bold yellow")
            drops = snapshot.get("drops")
            if drops:
                text.append(f"node drops {sum(drops.values())}  ", style="red")
            io = snapshot.get("io")
            if io and io.get("tun_reads"):  # a live node: how much each TUN read and write carried
                writes = io["tun_gso_writes"]
                text.append(f"tun {io['tun_packets'] / io['tun_reads']:.1f} pkt/read"
                            + (f", {io['tun_coalesced'] / writes:.1f} pkt/GRO write" if writes else "") + "  ",
                            style="dim")
        text.append("● " if connected else "○ ", style="green" if connected else "bold red")
        text.append(status, style="" if connected else "bold red")
        if paused:
            text.append("  ⏸ PAUSED", style="bold yellow")
        self.update(text)


# Most telling first: at 80 columns the table is cut on the right (the card below has everything).
PEER_COLUMNS = (("peer", "peer"), ("state", "session"), ("rekey", "rekey in"), ("reject", "reject in"),
                ("next", "next timer"),
                ("tx", "tx"), ("rx", "rx"), ("hs", "hs"), ("drops", "drops"), ("endpoint", "endpoint"),
                ("current", "current index"))


class PeerTable(DataTable):
    """One row per peer; the cursor picks the peer for the card, the filter and the detail view."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for key, label in PEER_COLUMNS:
            self.add_column(label, key=key)

    def row_cells(self, p: dict) -> list:
        state, style = fmt.session_state(p)
        cur = p.get("keypairs", {}).get("current")
        reject = fmt.reject_in(cur)
        armed = fmt.armed_timers(p)
        rekey = fmt.rekey_in(cur)
        return [
            fmt.peer_name(p), Text(state, style=style),
            # a session the peer initiated is rekeyed by the peer: no countdown of ours ("peer")
            ("peer" if cur else fmt.NONE) if rekey is None else fmt.seconds(rekey) if rekey > 0 else "now",
            Text(fmt.seconds(reject), style="red" if reject is not None and reject < 30 else ""),
            f"{armed[0][0]} {fmt.seconds(armed[0][1])}" if armed else fmt.NONE,
            fmt.size(p["tx_bytes"]), fmt.size(p["rx_bytes"]), str(p["handshakes"]),
            str(sum(p.get("drops", {}).values())), p.get("endpoint") or fmt.NONE,
            fmt.index(cur["local_index"]) if cur else fmt.NONE,
        ]

    def show(self, peers: list[dict]) -> None:
        keys = [p["public_key"] for p in peers]
        for row_key in list(self.rows):
            if row_key.value not in keys:
                self.remove_row(row_key)
        for p in peers:
            cells = self.row_cells(p)
            key = p["public_key"]
            if key in {rk.value for rk in self.rows}:
                for (col, _), value in zip(PEER_COLUMNS, cells):
                    self.update_cell(key, col, value, update_width=True)
            else:
                self.add_row(*cells, key=key)

    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # the cursor sits on a row that just went away
            return None


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def peer_card(p: dict, detailed: bool = False) -> Group:
    """Everything about one peer, as rows of 'label  value'. `detailed` adds configuration and
    per-keypair counters, and lists unarmed timers too."""
    state, style = fmt.session_state(p)
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(fmt.peer_name(p), style="bold")
    head.append(f"  {p.get('endpoint') or 'no endpoint'}  ")
    head.append(state, style=style)
    head.append(f"  last handshake {fmt.last_handshake(p)}", style="dim")
    grid = _grid()
    kps = p.get("keypairs", {})
    for slot in ("current", "previous", "next"):
        kp = kps.get(slot)
        value = Text(fmt.keypair_text(kp))
        if kp is not None:
            if slot == "current":
                reject = fmt.reject_in(kp)
                value.append(f"  reject in {fmt.seconds(reject)}", style="red" if reject < 30 else "yellow")
            if detailed:
                value.append(f"  {'initiator' if kp['initiator'] else 'responder'}  send ctr {kp['send_counter']}"
                             f"  tx {counted(kp['tx_packets'], 'pkt')} rx {counted(kp['rx_packets'], 'pkt')}",
                             style="dim")
        if slot == "current" or kp is not None or detailed:
            grid.add_row(slot, value)
    cur = kps.get("current")
    if cur is not None:
        grid.add_row("rekey", fmt.rekey_text(cur))
    grid.add_row("keepalive", f"in {fmt.seconds(fmt.keepalive_in(p))}" if fmt.keepalive_in(p) is not None
                 else "none armed")
    timers = p.get("timers", {})
    if detailed:
        grid.add_row("timers", "  ".join(f"{fmt.TIMER_SHORT[n]} {fmt.seconds(timers.get(n))}" for n in TIMER_NAMES))
    else:
        grid.add_row("timers", fmt.timers_text(p))
    grid.add_row("traffic", f"tx {fmt.size(p['tx_bytes'])} {counted(p['tx_packets'], 'pkt')}   "
                            f"rx {fmt.size(p['rx_bytes'])} {counted(p['rx_packets'], 'pkt')}   "
                            f"staged {p['staged']}/{p['staged_limit']}")
    grid.add_row("handshakes", fmt.handshake_counts(p))
    grid.add_row("cookies", f"rx {p['cookies_received']} tx {p['cookies_sent']}   "
                            f"keepalives tx {p['keepalives_sent']} rx {p['keepalives_received']}")
    grid.add_row("drops", Text(fmt.drops_text(p.get("drops")), style="red" if p.get("drops") else ""))
    if detailed:
        grid.add_row("allowed",  ", ".join(p.get("allowed_ips", [])) or fmt.NONE)
        grid.add_row("config", f"persistent keepalive {p.get('persistent_keepalive') or 'off'}   "
                               f"psk {'yes' if p.get('has_psk') else 'no'}   handshake state "
                               f"{p.get('handshake_state')}")
        grid.add_row("key", p.get("public_key", ""))
    return Group(head, grid)


class PeerCard(Static):
    def show(self, peer: dict | None, detailed: bool = False) -> None:
        self.update(peer_card(peer, detailed) if peer else Text("no peer selected", style="dim"))


class EventPane(RichLog):
    """The scrolling event log. Holds recent events so a new filter re-renders the past too."""

    def __init__(self, keep: int = 2000, **kw) -> None:
        super().__init__(max_lines=keep, wrap=False, markup=False, highlight=False, **kw)
        self.kept: deque[dict] = deque(maxlen=keep)
        self.peer_filter: str | None = None
        self.terms: list[str] = []
        self.labels: dict[str, str] = {}
        self.show_churn = False  # timer arming/cancelling and per-packet events: behind the `t` key
        self.wall = True  # UTC wall clock; `w` switches to the node's protocol clock
        self.wall_offset: float | None = None  # snapshot wall - time, until events carry their own wall

    def add(self, msgs: list[dict], render: bool = True) -> None:
        self.kept.extend(msgs)
        if render:
            for msg in msgs:
                self._write(msg)

    def _write(self, msg: dict) -> None:
        if msg.get("type") == "note":
            self.write(Text(msg["text"], style=msg.get("style", "")))
        elif fmt.matches(msg, self.peer_filter, self.terms, self.show_churn):
            self.write(fmt.event_text(msg, self.labels, self.wall_offset, self.wall))

    def refilter(self, peer_filter: str | None, terms: list[str]) -> None:
        self.peer_filter, self.terms = peer_filter, terms
        self.clear()
        for msg in self.kept:
            self._write(msg)
