"""The live control socket: a node's events and per-peer state, streamed to other processes.

One unix socket per node (see `control_path`). The protocol is newline-delimited JSON,
server to client:

    {"type": "hello", "name": ..., "version": ..., "pid": ..., "rate": 5.0, "queue_limit": 1000}
    {"type": "event", "event": "handshake_completed", "time": 12.3, "wall": 1764579600.123,
     "timestamp": "2026-12-01T09:00:00.123000Z", "peer": "base64", "level": 20, "fields": {...}}
    {"type": "snapshot", "data": Device.snapshot(now)}          at most `rate` times a second
    {"type": "missed", "count": N}                               N events were dropped for this client
    {"type": "pong"}                                             answer to {"cmd": "ping"}

The socket is read-only. Commands: {"cmd": "ping"}, and {"cmd": "level", "level": "trace"|"debug"|
"info"}, the lowest event level this client is sent (debug unless asked; trace is every packet,
built as an Event only while a client asks for it, and dropped and counted like any other when
the client cannot keep up). Unknown or malformed lines get {"type": "error", "message": ...}
and are otherwise ignored.

A slow client never slows the node. The bus sink only appends to each client's bounded
deque (no JSON, no I/O on the node's path); when the deque is full the event is dropped and
counted, and the client is told how many it missed. A snapshot is not queued at all: each
client holds only the latest one, so a stalled client costs one snapshot, however long it
stalls. Each client's writer awaits `drain()`, so the transport buffer stays bounded too.

While no client is connected the server does not listen: the bus keeps the last HISTORY events
at INFO (handshakes, sessions, drops) as the core emitted them and builds their Events when a
client attaches (EventBus.keep_history). The first client subscribes at DEBUG (timers,
keepalives), and the history follows its level; the last one to leave unsubscribes again, so an
idle control socket costs the data path nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..events import DEBUG, INFO, LEVELS, Event, EventBus

SNAPSHOT_RATE = 5.0  # snapshots per second, per client at most
QUEUE_LIMIT = 1000  # events held per client before dropping
HISTORY = 200  # recent events a newly attached client receives first


def control_dir() -> Path:
    """/run/wgscope as root; else $XDG_RUNTIME_DIR/wgscope, or /tmp/wgscope-$UID."""
    if os.geteuid() == 0:
        return Path("/run/wgscope")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "wgscope"
    return Path(tempfile.gettempdir()) / f"wgscope-{os.getuid()}"


def control_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Where node NAME's control socket lives (shared by the server and `wgscope top`)."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid node name {name!r}")
    return Path(directory or os.environ.get("WGSCOPE_CONTROL_DIR") or control_dir()) / f"{name}.ctl"


def list_sockets(directory: str | os.PathLike | None = None) -> list[Path]:
    d = Path(directory or os.environ.get("WGSCOPE_CONTROL_DIR") or control_dir())
    try:
        return sorted(p for p in d.glob("*.ctl") if stat.S_ISSOCK(p.stat().st_mode))
    except OSError:
        return []


def _event_message(ev: Event) -> dict[str, Any]:
    return {"type": "event", "event": ev.name, "time": ev.time, "wall": ev.wall, "timestamp": ev.timestamp,
            "peer": ev.peer, "level": ev.level, "fields": ev.fields}


def _line(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, default=str, separators=(",", ":")).encode() + b"\n"


class ControlClient:
    """The server's side of one attached client."""

    def __init__(self, writer: asyncio.StreamWriter, queue_limit: int) -> None:
        self.writer = writer
        self.events: deque[Event] = deque()
        self.queue_limit = queue_limit
        self.snapshot: dict | None = None  # latest only
        self.replies: list[dict] = []
        self.missed = 0  # dropped since last told
        self.level = DEBUG  # the lowest event level this client wants
        self.dropped_total = 0
        self.wake = asyncio.Event()

    def offer(self, ev: Event) -> None:
        if ev.level < self.level:
            return
        if len(self.events) >= self.queue_limit:
            self.missed += 1
            self.dropped_total += 1
        else:
            self.events.append(ev)
        self.wake.set()

    def take(self) -> list[bytes]:
        out = []
        if self.missed:
            out.append(_line({"type": "missed", "count": self.missed}))
            self.missed = 0
        out.extend(_line(m) for m in self.replies)
        self.replies.clear()
        while self.events:
            out.append(_line(_event_message(self.events.popleft())))
        if self.snapshot is not None:
            out.append(_line({"type": "snapshot", "data": self.snapshot}))
            self.snapshot = None
        return out


class ControlServer:
    def __init__(self, name: str, bus: EventBus, snapshot_fn: Callable[[float], dict], now_fn: Callable[[], float],
                 path: Path, rate: float, queue_limit: int) -> None:
        self.name = name
        self.bus = bus
        self.snapshot_fn = snapshot_fn
        self.now_fn = now_fn
        self.path = path
        self.rate = rate
        self.queue_limit = queue_limit
        self.clients: set[ControlClient] = set()
        self.history = bus.keep_history(HISTORY, INFO)  # () -> the recent events, built when a client attaches
        self.snapshots_sent = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._unsubscribe: Callable[[], None] | None = None  # subscribed only while a client is attached
        self._level: int | None = None

    # ---------------------------------------------------------------- bus side (the node's path)
    def _on_event(self, ev: Event) -> None:
        if threading.get_ident() != self._thread:  # a node driven from another thread
            self._loop.call_soon_threadsafe(self._on_event, ev)
            return
        for client in self.clients:
            client.offer(ev)

    def _set_level(self, level: int | None) -> None:
        if level != self._level:
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._unsubscribe = self.bus.subscribe(self._on_event, level) if level is not None else None
            self.history = self.bus.keep_history(HISTORY, INFO if level is None else level)
            self._level = level

    def _follow_clients(self) -> None:
        """Listen at the lowest level a client asked for; while none is attached, not at all: the
        bus keeps the INFO history (EventBus.keep_history) without building an Event per event."""
        self._set_level(min((c.level for c in self.clients), default=None))

    # ---------------------------------------------------------------- lifecycle
    async def _start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(self.path.parent)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise OSError(f"refusing to serve in {self.path.parent}: not a directory we own")
        with contextlib.suppress(OSError):
            os.chmod(self.path.parent, 0o700)
        if self.path.exists() or self.path.is_symlink():
            if await _alive(self.path):
                raise OSError(f"control socket {self.path} is in use by another node named {self.name!r}")
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._spawn(self._snapshot_loop())

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        self._set_level(None)
        self.bus.forget_history()
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            client.writer.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def __aenter__(self) -> "ControlServer":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---------------------------------------------------------------- per client
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = ControlClient(writer, self.queue_limit)
        self.clients.add(client)
        self._follow_clients()
        client.replies.append({"type": "hello", "name": self.name, "version": __version__, "pid": os.getpid(),
                               "rate": self.rate, "queue_limit": self.queue_limit})
        for ev in self.history():
            client.offer(ev)
        client.snapshot = self._snapshot()
        writer_task = self._spawn(self._write(client))
        try:
            await self._read_commands(reader, client)
        finally:
            self.clients.discard(client)
            self._follow_clients()
            writer_task.cancel()
            writer.close()

    async def _read_commands(self, reader: asyncio.StreamReader, client: ControlClient) -> None:
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, ValueError):  # reset, or a line longer than the limit
                return
            if not line:
                return
            try:
                msg = json.loads(line)
                cmd = msg.get("cmd")
            except (ValueError, AttributeError):
                msg, cmd = {}, None
            if cmd == "ping":
                client.replies.append({"type": "pong", "time": self.now_fn()})
            elif cmd == "level" and msg.get("level") in LEVELS:
                client.level = LEVELS[msg["level"]]
                self._follow_clients()
                client.replies.append({"type": "level", "level": msg["level"]})
            else:
                client.replies.append({"type": "error", "message": "read-only socket: the commands are ping and "
                                                                   "level (trace, debug, info)"})
            client.wake.set()

    async def _write(self, client: ControlClient) -> None:
        writer = client.writer
        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                lines = client.take()
                if lines:
                    writer.writelines(lines)
                    await writer.drain()  # a slow reader parks here; its deque absorbs (and drops) meanwhile
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _snapshot(self) -> dict:
        return self.snapshot_fn(self.now_fn())

    async def _snapshot_loop(self) -> None:
        period = 1.0 / self.rate
        while True:
            await asyncio.sleep(period)
            if not self.clients:
                continue
            try:
                snap = self._snapshot()  # one snapshot for all clients, at a bounded rate
            except Exception as e:  # never let a view bug end the stream; say so instead
                snap = {"error": f"snapshot failed: {e.__class__.__name__}: {e}", "peers": []}
            self.snapshots_sent += 1
            for client in self.clients:
                client.snapshot = snap
                client.wake.set()

    def stats(self) -> dict:
        return {"clients": len(self.clients), "queued": [len(c.events) for c in self.clients],
                "dropped": [c.dropped_total for c in self.clients], "snapshots_sent": self.snapshots_sent}


async def _alive(path: Path) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


async def start_control_server(name: str, bus: EventBus, snapshot_fn: Callable[[float], dict],
                               now_fn: Callable[[], float], *, path: str | os.PathLike | None = None,
                               rate: float = SNAPSHOT_RATE, queue_limit: int = QUEUE_LIMIT) -> ControlServer:
    """Serve node NAME's control socket on the running loop until `await server.close()`.

    snapshot_fn(now) -> dict (Device.snapshot); now_fn() -> the node's protocol clock.
    Raises OSError if another live node already serves the same path."""
    server = ControlServer(name, bus, snapshot_fn, now_fn, Path(path) if path else control_path(name), rate,
                           queue_limit)
    try:
        await server._start()
    except BaseException:
        server._set_level(None)
        server.bus.forget_history()
        raise
    return server
