"""Running a built node in the foreground or as a daemon, and finding it again.

/run/wgscope/NAME.pid names the process serving NAME, so `wgscope down NAME` can stop it. An
interface name is free when no live wgscope process holds its pid file and nothing answers on
its UAPI socket: both are checked before anything is created, so a refused `up` touches nothing
of the node that runs; a pid file or socket left by a killed node is stale, and replaced.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from ..errors import UserError

PID_DIR = Path("/run/wgscope")
STOP_WAIT = 10.0  # seconds `down` waits for the node to remove its interface


def pidfile(name: str) -> Path:
    return PID_DIR / f"{name}.pid"


def serving_pid(name: str) -> int | None:
    """The live wgscope process that NAME's pid file names, or None (no file, or a stale one)."""
    try:
        pid = int(pidfile(name).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"wgscope" in cmdline and not _zombie(pid) else None


def check_free(name: str) -> None:
    """Refuse a name another node serves; clear what a killed one left (before anything is made)."""
    from ..runtime import uapi_socket

    pid = serving_pid(name)
    if pid is not None and pid != os.getpid():
        raise UserError(f"interface name {name!r} is in use: wgscope pid {pid} serves it "
                        f"(see {pidfile(name)}; stop it with `wgscope down {name}`)")
    try:
        uapi_socket.check_free(name)
    except uapi_socket.UapiSocketError as e:
        raise UserError(str(e)) from None


def _claim_pidfile(name: str) -> Path:
    path = pidfile(name)
    with contextlib.suppress(OSError):
        PID_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(path)
    return path


def serve(node, ready) -> str:
    """Run the node's loop; the pid file, written once it serves, lets `wgscope down NAME` find it."""
    path = pidfile(node.name)

    def serving(n) -> None:
        _claim_pidfile(n.name)
        ready(n)

    try:
        return node.serve(ready=serving)
    finally:
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text().strip()) == os.getpid():
                path.unlink()


def daemonize(build, describe) -> int:
    """Fork; the child builds (`build()` -> node) and serves the node and reports "ready" (or the
    error) through a pipe; the parent prints the report and returns once the node is ready."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            report = pipe.read().decode(errors="replace")
        if report.startswith("ok\n"):
            print(report[3:], end="", flush=True)
            return 0
        os.waitpid(pid, 0)
        raise UserError(report.removeprefix("error\n").strip() or "the daemon exited before it was ready")
    os.close(r)
    os.setsid()
    try:
        node = build()
    except UserError as e:
        os.write(w, f"error\n{e}".encode())
        os._exit(1)
    except BaseException as e:  # noqa: BLE001 - reported to the parent as one line
        os.write(w, f"error\n{e.__class__.__name__}: {e}".encode())
        os._exit(1)

    def ready(n) -> None:
        os.write(w, ("ok\n" + describe(n) + "\n").encode())
        os.close(w)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)

    try:
        serve(node, ready)
    except BaseException as e:  # noqa: BLE001 - before `ready`, the parent is waiting for this line
        with contextlib.suppress(OSError):
            os.write(w, f"error\n{e}".encode())
    finally:
        os._exit(0)


def down(args) -> int:
    from .upconfig import check_name

    name = check_name(args.ifname)  # a name, not a path: /run/wgscope/NAME.pid stays in /run/wgscope
    path = pidfile(name)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        raise UserError(f"no wgscope node is serving {name} (no {path})") from None
    if serving_pid(name) != pid:
        with contextlib.suppress(OSError):
            path.unlink()
        raise UserError(f"no wgscope node is serving {name} (stale {path}, removed)")
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        raise UserError(f"not allowed to stop pid {pid} (run as root)") from None
    except ProcessLookupError:
        return 0
    deadline = time.monotonic() + STOP_WAIT
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            print(f"wgscope: {name} down", file=sys.stderr)
            return 0
        time.sleep(0.05)
    raise UserError(f"pid {pid} serving {name} did not stop within {STOP_WAIT:.0f} s")


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False
