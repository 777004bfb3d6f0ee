"""`wgscope top`: a textual app attached to a node's control socket (wgscope/sinks/control.py).

The app only reads. It draws each snapshot as it arrives (the node sends at most ~5 a
second), batches events into the event pane a few times a second, and when the node goes
away it says so, keeps the last picture on screen, and reconnects every `retry` seconds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Static

from ..plural import counted
from . import client
from . import formatting as fmt
from .widgets import EventPane, NodeBar, PeerCard, PeerTable

CSS = """
NodeBar { height: 1; background: $panel; }
PeerTable { height: auto; max-height: 9; scrollbar-size-horizontal: 0; }
PeerCard { height: auto; padding: 0 1; border-top: solid $primary-darken-2; }
EventPane { height: 1fr; min-height: 4; border-top: solid $primary-darken-2; }
#filter { dock: bottom; display: none; }
#filter.shown { display: block; }
.stale { opacity: 60%; }
"""


class XRayScreen(Screen):
    """The handshake x-ray of the peer's current session (wgscope/xray.py): every step as the whitepaper
    writes it, with roles, public keys and indices; values are not shown (the dashboard has no keys)."""

    BINDINGS = [Binding("escape,x", "app.pop_screen", "back"), Binding("q", "app.quit", "quit")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(self.text), id="xray")
        yield Footer()


class DetailScreen(Screen):
    """One peer: every keypair, timer, counter and configuration value, and only its events."""

    BINDINGS = [Binding("escape,enter,d", "app.pop_screen", "back"), Binding("x", "xray", "handshake x-ray"),
                Binding("space", "app.pause", "pause"), Binding("q", "app.quit", "quit")]

    def __init__(self, peer_key: str) -> None:
        super().__init__()
        self.peer_key = peer_key
        self.ready = False  # set once on_mount has given the pane the main pane's state

    def compose(self) -> ComposeResult:
        yield NodeBar()
        yield PeerCard(id="detail-card")
        yield EventPane(id="detail-events")
        yield Footer()

    def on_mount(self) -> None:
        pane = self.query_one(EventPane)
        main = self.app.main.query_one("#events", EventPane)
        pane.labels = main.labels
        pane.show_churn, pane.wall, pane.wall_offset = main.show_churn, main.wall, main.wall_offset
        pane.kept.extend(main.kept)
        pane.refilter(self.peer_key, [])
        pane.border_title = "events of this peer"
        self.ready = True
        self.app.redraw()

    def action_xray(self) -> None:
        from ..xray import render_skeleton

        peer = self.app.peer(self.peer_key) or {}
        cur = (peer.get("keypairs") or {}).get("current")
        if cur is not None and self.app.capture is not None:  # the node's capture carries its keys: real values
            from ..xray_capture import render_session

            text = render_session(str(self.app.capture), (cur["local_index"], cur["remote_index"]))
            if text is not None:
                self.app.push_screen(XRayScreen(f"from {self.app.capture}, which carries the session keys\n{text}"))
                return
        ours = (self.app.snapshot or {}).get("public_key", "?")
        text = render_skeleton("initiator" if cur is None or cur["initiator"] else "responder", ours, self.peer_key,
                               cur and cur["local_index"], cur and cur["remote_index"])
        if cur is None:
            text = "no current session with this peer: the steps any handshake with it takes\n" + text
        self.app.push_screen(XRayScreen(text))

    def redraw(self, app: "TopApp") -> None:
        peer = app.peer(self.peer_key)
        self.query_one(NodeBar).show(app.snapshot, app.status, app.connected, app.paused)
        self.query_one(PeerCard).show(peer, detailed=True)


class TopApp(App):
    TITLE = "wgscope top"
    ENABLE_COMMAND_PALETTE = False
    CSS = CSS
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("space", "pause", "pause"),
        Binding("enter,d", "detail", "detail"),
        Binding("p", "peer_filter", "peer events"),
        Binding("slash", "kind_filter", "filter"),
        Binding("t", "toggle_churn", "timers"),
        Binding("w", "toggle_clock", "clock"),
        Binding("c", "clear_events", "clear"),
    ]

    def __init__(self, path: Path | str, retry: float = 1.0, capture: Path | str | None = None) -> None:
        """`capture`: the node's --capture file (it carries its keys); the handshake x-ray reads it."""
        super().__init__()
        self.path = Path(path)
        self.capture = Path(capture) if capture else None
        self.retry = retry
        self.snapshot: dict | None = None
        self.hello: dict | None = None
        self.connected = False
        self.status = f"connecting to {self.path}"
        self.paused = False
        self.attempts = 0
        self.missed = 0
        self.messages_seen = 0
        self._incoming: deque[dict] = deque(maxlen=5000)
        self._dirty = False

    # ---------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield NodeBar(id="bar")
        yield PeerTable(id="peers")
        yield PeerCard(id="card")
        yield EventPane(id="events")
        yield Input(placeholder="event kinds, e.g. handshake cookie -timer (enter applies, escape cancels)",
                    id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self._title_events()
        self.main.query_one("#card", PeerCard).border_title = "selected peer"
        self.redraw()
        self.run_worker(self._attach(), exclusive=True, group="control")
        self.set_interval(0.2, self._flush_events)

    # ---------------------------------------------------------------- the connection
    async def _attach(self) -> None:
        while True:
            try:
                async for msg in client.messages(self.path):
                    self.on_control(msg)
            except client.NodeGone as gone:
                self._gone(str(gone))
            await asyncio.sleep(self.retry)

    def _gone(self, reason: str) -> None:
        self.attempts += 1
        if self.connected or self.attempts == 1:
            self.note(f"node gone: {reason}; retrying every {self.retry:g}s", "bold red")
        self.connected = False
        self.status = f"node gone: {reason} — retrying every {self.retry:g}s (attempt {self.attempts})"
        self.main.query("#peers, #card").add_class("stale")  # an empty query while the app closes
        self.redraw()

    def on_control(self, msg: dict) -> None:
        self.messages_seen += 1
        kind = msg.get("type")
        if kind == "hello":
            self.hello = msg
            self.connected = True
            self.attempts = 0
            self.status = f"attached to {msg.get('name')}"
            self.main.query("#peers, #card").remove_class("stale")
            self.note(self.status, "bold green")
        elif kind == "snapshot" and isinstance(msg.get("data"), dict):
            self.snapshot = msg["data"]
            pane = self._events_pane()
            if pane is None:  # the app is closing: its widgets are gone
                return
            labels = pane.labels
            wall, at = self.snapshot.get("wall"), self.snapshot.get("time")
            if isinstance(wall, (int, float)) and isinstance(at, (int, float)):  # for events without their own wall
                self._set_panes(wall_offset=wall - at)
            for p in self.snapshot.get("peers", []):
                if p.get("label"):
                    labels[p["public_key"]] = p["label"]
            if not self.paused:
                self.redraw()
        elif kind == "event":
            self._incoming.append(msg)
        elif kind == "missed":
            count = int(msg.get("count", 0))
            self.missed += count
            self._incoming.append({"type": "note", "text": f"… {counted(count, 'event')} dropped by the node "
                                   "(this dashboard fell behind)", "style": "yellow"})

    def note(self, text: str, style: str) -> None:
        """A line of our own in the event pane, in order with the events around it."""
        self._incoming.append({"type": "note", "text": text, "style": style})
        self._flush_events()

    def _flush_events(self) -> None:
        if not self._incoming:
            return
        pane = self._events_pane()
        if pane is None:
            return
        batch = list(self._incoming)
        self._incoming.clear()
        pane.add(batch, render=not self.paused)
        detail = self._detail_pane()
        if detail is not None:
            detail.add(batch, render=not self.paused)

    def _detail_pane(self) -> EventPane | None:
        """The detail view's event pane when the detail view is on top and mounted. Snapshots and
        events come whenever the node sends them, also between push_screen and the screen's mount;
        until then there is nothing to update: DetailScreen.on_mount copies the main pane's events
        and settings, these included. Nor once its widgets are being removed (the screen popped, the
        app shutting down), which `ready` does not see: the pane is looked up, as _events_pane does."""
        screen = self.screen
        if not isinstance(screen, DetailScreen) or not screen.ready:
            return None
        found = screen.query("#detail-events")
        return found.first(EventPane) if found else None

    def _events_pane(self) -> EventPane | None:
        """The main screen's event pane, or None before the app is mounted or while it shuts down."""
        if not self.screen_stack:
            return None
        found = self.main.query("#events")
        return found.first(EventPane) if found else None

    # ---------------------------------------------------------------- drawing
    @property
    def main(self) -> Screen:
        """The dashboard's own screen (the detail view is pushed above it)."""
        return self.screen_stack[0]

    def peer(self, key: str | None) -> dict | None:
        for p in (self.snapshot or {}).get("peers", []):
            if p.get("public_key") == key:
                return p
        return None

    def redraw(self) -> None:
        if isinstance(self.screen, XRayScreen):
            return
        if self._detail_pane() is not None:
            self.screen.redraw(self)
        bar = self.main.query_one("#bar", NodeBar)
        bar.show(self.snapshot, self.status, self.connected, self.paused)
        table = self.main.query_one("#peers", PeerTable)
        peers = (self.snapshot or {}).get("peers", [])
        table.show(peers)
        table.border_title = counted(len(peers), "peer")
        selected = table.selected_key() or (peers[0]["public_key"] if peers else None)
        self.main.query_one("#card", PeerCard).show(self.peer(selected))

    def on_data_table_row_highlighted(self, event) -> None:
        self.main.query_one("#card", PeerCard).show(self.peer(self.main.query_one("#peers", PeerTable).selected_key()))

    def on_data_table_row_selected(self, event) -> None:
        self.action_detail()

    # ---------------------------------------------------------------- actions
    def check_action(self, action: str, parameters) -> bool | None:
        """The filters and the detail key act on the main view; hide them over the detail and x-ray views.
        The event-pane switches act on the main and detail views; hide them over the x-ray."""
        if action in ("peer_filter", "kind_filter", "clear_events", "detail") and self.screen is not self.main:
            return False
        if action in ("toggle_churn", "toggle_clock", "pause") and isinstance(self.screen, XRayScreen):
            return False
        return True

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            pane = self.main.query_one("#events", EventPane)
            pane.refilter(pane.peer_filter, pane.terms)
            detail = self._detail_pane()
            if detail is not None:
                detail.refilter(detail.peer_filter, detail.terms)
        self.redraw()

    def action_detail(self) -> None:
        key = self.main.query_one("#peers", PeerTable).selected_key()
        if key and not isinstance(self.screen, DetailScreen):
            self.push_screen(DetailScreen(key))

    def action_peer_filter(self) -> None:
        pane = self.main.query_one("#events", EventPane)
        key = self.main.query_one("#peers", PeerTable).selected_key()
        pane.refilter(None if pane.peer_filter or not key else key, pane.terms)
        self._title_events()

    def action_kind_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        box.value = " ".join(self.main.query_one("#events", EventPane).terms)
        box.add_class("shown")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        pane = self.main.query_one("#events", EventPane)
        pane.refilter(pane.peer_filter, fmt.parse_terms(event.value))
        self._hide_filter()
        self._title_events()

    def on_key(self, event) -> None:
        box = self.main.query_one("#filter", Input)
        if event.key == "escape" and box.has_class("shown"):
            self._hide_filter()
            event.stop()

    def _hide_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        box.remove_class("shown")
        self.main.query_one("#peers", PeerTable).focus()

    def _title_events(self) -> None:
        pane = self.main.query_one("#events", EventPane)
        parts = []
        if pane.peer_filter:
            parts.append(f"peer {pane.labels.get(pane.peer_filter) or fmt.short_key(pane.peer_filter)}")
        if pane.terms:
            parts.append("kinds " + " ".join(pane.terms))
        if pane.show_churn:
            parts.append("with timers")
        parts.append("UTC" if pane.wall else "protocol clock")
        pane.border_title = "events (" + "; ".join(parts) + ")"

    def _panes(self) -> list[EventPane]:
        detail = self._detail_pane()
        return [self.main.query_one("#events", EventPane)] + ([detail] if detail is not None else [])

    def _set_panes(self, **settings) -> None:
        for pane in self._panes():
            for name, value in settings.items():
                setattr(pane, name, value)

    def action_toggle_churn(self) -> None:
        """Timer arming/cancelling and per-packet events in or out of the event panes."""
        show = not self.main.query_one("#events", EventPane).show_churn
        self._set_panes(show_churn=show)
        self._refilter_all()
        self.note("timer and per-packet events shown" if show else "timer and per-packet events hidden (t shows them)",
                   "dim")

    def action_toggle_clock(self) -> None:
        """Event times as UTC wall clock (default) or as the node's protocol clock (seconds)."""
        self._set_panes(wall=not self.main.query_one("#events", EventPane).wall)
        self._refilter_all()

    def _refilter_all(self) -> None:
        for pane in self._panes():
            pane.refilter(pane.peer_filter, pane.terms)
        self._title_events()

    def action_clear_events(self) -> None:
        pane = self.main.query_one("#events", EventPane)
        pane.kept.clear()
        pane.clear()
