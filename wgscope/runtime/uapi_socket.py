"""The UAPI socket: /var/run/wireguard/NAME.sock, where wg(8) finds userspace interfaces.

Carries bytes between clients and wgscope.uapi.UapiConnection on the node's asyncio loop
(the loop that owns the Device). Placement follows wireguard-go's ipc/uapi_unix.go: the
directory is created 0755; a socket already there is tested by connecting — a live one means
another process serves that interface name (we refuse to start), a dead one is stale and
replaced. The socket file is 0600 and, as the kernel's netlink interface refuses non-root
callers with EPERM, a connection whose SO_PEERCRED uid is neither root nor our own is
answered errno EPERM and closed. The file is removed on close (only if it is still ours).

    server = await start_uapi_server(node)          # node: see wgscope/uapi/__init__.py
    ...
    server.close(); await server.wait_closed()
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as E
import os
import socket
import stat
import struct

from ..events import UAPI_CONNECTION_REFUSED, UAPI_REQUEST_REJECTED
from ..uapi import UapiConnection, get_error_reply, set_reply

SOCKET_DIRECTORY = "/var/run/wireguard"  # WG-GO ipc/uapi_unix.go socketDirectory; wg(8) looks here
READ_SIZE = 256 * 1024
REQUEST_TIMEOUT = 30.0  # a client silent in the middle of a request is dropped (it holds the set lock)
REFUSED_READ_LIMIT = 64 * 1024
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class UapiSocketError(Exception):
    """The socket cannot be served; the message is one line for the user."""


def socket_path(name: str, directory: str = SOCKET_DIRECTORY) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise UapiSocketError(f"{name!r} is not a usable interface name for a UAPI socket")
    return os.path.join(directory, f"{name}.sock")


def _claim(path: str) -> None:
    """Make `path` free: refuse if a live process answers there, remove it if stale."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise UapiSocketError(f"{path} exists and is not a socket; not touching it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(path)
    except ConnectionRefusedError:  # nobody listens: a stale socket from a process that died
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except OSError as e:
        raise UapiSocketError(f"cannot check {path}: {e.strerror or e}") from None
    finally:
        probe.close()
    name = os.path.basename(path)[:-len(".sock")]
    raise UapiSocketError(f"interface name {name!r} is in use: another process serves {path}")


def check_free(name: str, directory: str = SOCKET_DIRECTORY) -> None:
    """Before anything is created: refuse a name whose socket answers; remove a stale one."""
    _claim(socket_path(name, directory))


def _listen(path: str) -> socket.socket:
    for attempt in range(2):
        _claim(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except OSError as e:
            sock.close()
            if e.errno == E.EADDRINUSE and attempt == 0:  # another starter won a race: check again
                continue
            raise UapiSocketError(f"cannot create {path}: {e.strerror or e}") from None
        try:
            os.chmod(path, 0o600)
            sock.listen(64)
        except OSError as e:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise UapiSocketError(f"cannot listen on {path}: {e.strerror or e}") from None
        sock.setblocking(False)
        return sock
    raise AssertionError("unreachable")


class UapiServer:
    def __init__(self, node, path: str) -> None:
        self.node = node
        self.path = path
        self.lock = asyncio.Lock()  # one request at a time, as WG-GO's ipcMutex
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._watch: asyncio.Task | None = None
        self.connections = 0
        self.refused = 0

    async def _start(self, on_removed) -> None:
        sock = _listen(self.path)
        self._inode = os.stat(self.path).st_ino
        self._server = await asyncio.start_unix_server(self._client, sock=sock, limit=READ_SIZE)
        if on_removed is not None:
            self._watch = asyncio.get_running_loop().create_task(self._watch_removal(on_removed))

    def is_ours(self) -> bool:
        """Does the socket file on disk still belong to this server? (Deleting it asks us to stop.)"""
        try:
            return os.stat(self.path).st_ino == self._inode
        except OSError:
            return False

    async def _watch_removal(self, on_removed, interval: float = 1.0) -> None:
        """The xplatform page: an implementation stops when its socket file is deleted."""
        while self._server is not None:
            await asyncio.sleep(interval)
            if self._server is not None and not self.is_ours():
                on_removed()
                return

    def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self._server = None
        if self._watch is not None:
            self._watch.cancel()
        for writer in list(self._writers):
            writer.close()
        if self.is_ours():
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    async def wait_closed(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # ---------------------------------------------------------------- one client
    def _allowed(self, sock: socket.socket) -> tuple[bool, int, int]:
        pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        return uid in (0, os.geteuid()), uid, pid

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            ok, uid, pid = self._allowed(writer.get_extra_info("socket"))
            if ok:
                await self._converse(reader, writer)
            else:
                self.refused += 1
                self.node.device.bus.emit(UAPI_CONNECTION_REFUSED, self.node.now(), None, uid=uid, pid=pid)
                await self._refuse(reader, writer)
        except ConnectionError:
            pass
        except Exception as e:  # never a traceback out of the loop: the node keeps running
            self.node.device.bus.emit(UAPI_REQUEST_REJECTED, self.node.now(), None, errno=E.ENOANO,
                                      reason=f"internal error: {type(e).__name__}: {e}")
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read the request (bounded), answer EPERM in the sign wg expects for it, close."""
        data = b""
        with contextlib.suppress(asyncio.TimeoutError):
            while b"\n\n" not in data and len(data) < REFUSED_READ_LIMIT:
                chunk = await asyncio.wait_for(reader.read(4096), 5.0)
                if not chunk:
                    break
                data += chunk
        reply = get_error_reply if data.startswith(b"get=1\n") else set_reply
        writer.write(reply(E.EPERM))
        await writer.drain()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = UapiConnection(self.node)
        holding = False
        try:
            while not conn.closed:
                try:
                    if conn.in_request:
                        data = await asyncio.wait_for(reader.read(READ_SIZE), REQUEST_TIMEOUT)
                    else:
                        data = await reader.read(READ_SIZE)
                except asyncio.TimeoutError:
                    break
                if not data:  # wg probes a socket by connecting and closing: nothing to answer
                    break
                if not holding:
                    await self.lock.acquire()
                    holding = True
                try:
                    reply = conn.feed(data)
                except Exception as e:  # a bug must not take the node down: answer and hang up
                    self.node.device.bus.emit(UAPI_REQUEST_REJECTED, self.node.now(), None, errno=E.ENOANO,
                                              reason=f"internal error: {type(e).__name__}: {e}")
                    reply, conn.closed = set_reply(E.ENOANO), True
                if not conn.in_request:
                    self.lock.release()
                    holding = False
                if reply:
                    writer.write(reply)
                    await writer.drain()
        finally:
            if conn.in_request:
                with contextlib.suppress(Exception):
                    conn.eof()
            if holding:
                self.lock.release()


async def start_uapi_server(node, *, directory: str = SOCKET_DIRECTORY, on_removed=None) -> UapiServer:
    """Serve the UAPI for `node` at DIRECTORY/NODE.NAME.sock on the running loop.

    Raises UapiSocketError (one-line message) when the name is served by a live process or the
    socket cannot be made. `on_removed()` is called if the socket file is deleted under us."""
    os.makedirs(directory, 0o755, exist_ok=True)
    server = UapiServer(node, socket_path(node.name, directory))
    await server._start(on_removed)
    return server
