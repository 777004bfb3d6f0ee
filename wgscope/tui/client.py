"""The dashboard's side of the control socket (wgscope/sinks/control.py): connect, read messages."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import AsyncIterator

from ..sinks.control import control_path, list_sockets

LINE_LIMIT = 16 * 1024 * 1024  # a snapshot of many peers is one long line


class NodeGone(Exception):
    """The control socket is absent, refused us, or closed; the message says which."""


def resolve(name: str | None, directory: str | os.PathLike | None = None) -> Path:
    """NAME's socket; with no NAME, the only socket present. Raises NodeGone with one line."""
    if name:
        if "/" in name:
            return Path(name)  # an explicit socket path
        return control_path(name, directory)
    found = list_sockets(directory)
    if not found:
        where = control_path("x", directory).parent
        raise NodeGone(f"no running node found (no control socket in {where}); start one with `wgscope up` "
                       "or `wgscope demo --tui`")
    if len(found) > 1:
        names = ", ".join(p.stem for p in found)
        raise NodeGone(f"several nodes are running ({names}); name one: wgscope top NAME")
    return found[0]


async def messages(path: Path) -> AsyncIterator[dict]:
    """Yield the node's messages until it goes away (then raise NodeGone)."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=LINE_LIMIT)
    except FileNotFoundError:
        raise NodeGone(f"no control socket at {path}") from None
    except ConnectionRefusedError:
        raise NodeGone(f"nothing listening on {path}") from None
    except OSError as e:
        raise NodeGone(f"cannot connect to {path}: {e.strerror or e}") from None
    try:
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, ValueError) as e:
                raise NodeGone(f"connection lost: {e}") from None
            if not line:
                raise NodeGone("the node closed the connection")
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # a torn or foreign line: skip it
            if isinstance(msg, dict):
                yield msg
    finally:
        writer.close()
