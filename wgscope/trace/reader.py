"""Reading events back: a binary trace (`.wgtrace`) or JSON lines (`--events FILE.jsonl`), as Events.

    for ev in read_events(path): ...          every event, in emission order, as events.Event
    read_blocks(path)                          the same per block, as numpy records + side info

Both forms give the same Events: the catalogue name, time, wall time, peer, level and the
catalogue's field names (docs/events.md). Per-packet records are decoded here, not when
they were written. A file cut short (the node was killed mid-write) ends at its last whole
block; a file that is not a trace, or a block that makes no sense, raises TraceFormatError.
"""

from __future__ import annotations

import json
from typing import BinaryIO, Iterator

import numpy as np

from ..events import CATALOGUE, INFO, LEVELS, PACKED, Event
from .format import (
    BLOCK_HEAD, BLOCK_MAGIC, GENERIC_CODE, MAGIC, MAX_RECORDS, MAX_SIDE, RECORD, U32, TraceFormatError,
)

__all__ = ["read_events", "read_blocks", "read_header", "TraceFormatError"]

# JSON lines keys that are not fields (jsonlog's envelope)
ENVELOPE = ("event", "time", "timestamp", "wall", "peer", "level", "category", "node")


def read_header(f: BinaryIO) -> dict:
    if f.read(len(MAGIC)) != MAGIC:
        raise TraceFormatError("not a wgscope trace file (no WGSTRACE header)")
    raw = f.read(U32.size)
    (length,) = U32.unpack(raw) if len(raw) == U32.size else (-1,)
    if not 0 <= length <= MAX_SIDE:
        raise TraceFormatError("damaged trace header")
    try:
        return json.loads(f.read(length))
    except ValueError:
        raise TraceFormatError("damaged trace header") from None


def read_blocks(f: BinaryIO) -> Iterator[tuple[np.ndarray, dict]]:
    """(records, side) per whole block after the header; stops quietly at a torn last block."""
    while True:
        head = f.read(BLOCK_HEAD.size)
        if len(head) < BLOCK_HEAD.size:
            return
        magic, count, side_len = BLOCK_HEAD.unpack(head)
        if magic != BLOCK_MAGIC or count > MAX_RECORDS or side_len > MAX_SIDE:
            raise TraceFormatError(f"damaged block at byte {f.tell() - BLOCK_HEAD.size}")
        side_raw = f.read(side_len)
        body = f.read(count * RECORD.itemsize)
        if len(side_raw) < side_len or len(body) < count * RECORD.itemsize:
            return  # torn: the writer was stopped mid-block
        try:
            side = json.loads(side_raw)
        except ValueError:
            raise TraceFormatError(f"damaged block side data at byte {f.tell()}") from None
        yield np.frombuffer(body, RECORD), side


class _Decoder:
    """Carries the code and peer tables across blocks and turns records into Events."""

    def __init__(self) -> None:
        self.codes: dict[int, str] = {}
        self.peers: dict[int, str | None] = {0: None}

    def events(self, rows: np.ndarray, side: dict) -> Iterator[Event]:
        self.codes.update((int(k), v) for k, v in side.get("codes", {}).items())
        self.peers.update((int(k), v) for k, v in side.get("peers", {}).items())
        offset = float(side.get("wall_offset", 0.0))
        generic = side.get("generic", [])
        codes, peers = self.codes, self.peers
        for time, code, peer, a, b, c in rows.tolist():
            if code == GENERIC_CODE:
                try:
                    name, wall, fields = generic[a]
                except (IndexError, ValueError, TypeError):
                    raise TraceFormatError("a record points past its block's events") from None
                et = CATALOGUE.get(name)
                yield Event(name, time, peers.get(peer), fields, et.level if et else INFO, wall)
                continue
            name = codes.get(code)
            packed = PACKED.get(name)
            if packed is None:
                raise TraceFormatError(f"record code {code} is not defined in the file")
            yield Event(name, time, peers.get(peer), packed(a, b, c), CATALOGUE[name].level, time + offset)


def _binary_events(path) -> Iterator[Event]:
    with open(path, "rb") as f:
        read_header(f)
        decoder = _Decoder()
        for rows, side in read_blocks(f):
            yield from decoder.events(rows, side)


def _jsonl_events(path) -> Iterator[Event]:
    """JSON lines as jsonlog writes them (`timestamp` ISO wall time, `level` by name)."""
    import datetime

    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                name = d["event"]
            except (ValueError, KeyError, TypeError):
                raise TraceFormatError(f"line {number} is not a wgscope JSON event") from None
            fields = {k: v for k, v in d.items() if k not in ENVELOPE}
            wall = d.get("wall")
            if wall is None and isinstance(d.get("timestamp"), str):
                try:
                    wall = datetime.datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00")).timestamp()
                except ValueError:
                    wall = None
            et = CATALOGUE.get(name)
            level = LEVELS.get(d.get("level"), et.level if et else INFO)
            yield Event(name, float(d.get("time") or 0.0), d.get("peer"), fields, level, wall or 0.0)


def read_events(path) -> Iterator[Event]:
    """Every event of a trace file or a JSON lines file, in order."""
    with open(path, "rb") as f:
        start = f.read(len(MAGIC))
    if start == MAGIC:
        return _binary_events(path)
    return _jsonl_events(path)


def parse_when(text: str) -> tuple[str, float]:
    """A --since/--until bound: protocol seconds ("12.5") -> ("time", 12.5); ISO 8601 wall time
    ("2026-12-01T09:00:00Z", no zone means UTC) -> ("wall", unix seconds). ValueError otherwise."""
    import datetime

    try:
        return "time", float(text)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither protocol seconds (12.5) nor an ISO 8601 time "
                         "(2026-12-01T09:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return "wall", when.timestamp()


def select(events, kinds: list[str] | None = None, peer: str | None = None, level: int | None = None,
           since: tuple[str, float] | None = None, until: tuple[str, float] | None = None) -> Iterator[Event]:
    """The events that pass every filter given: kinds are event names, categories or shell
    patterns (`handshake_*`); peer is a prefix of the base64 key ("-" for events with no peer);
    level the lowest level; since/until from parse_when (inclusive)."""
    import fnmatch

    patterns = [k.strip() for k in kinds or () if k.strip()]
    wanted_cache: dict[str, bool] = {}

    def wanted(name: str) -> bool:
        hit = wanted_cache.get(name)
        if hit is None:
            category = CATALOGUE[name].category if name in CATALOGUE else None
            hit = wanted_cache[name] = any(fnmatch.fnmatchcase(name, p) or p == category for p in patterns)
        return hit

    for ev in events:
        if level is not None and ev.level < level:
            continue
        if patterns and not wanted(ev.name):
            continue
        if peer is not None and (ev.peer is not None if peer == "-" else not (ev.peer or "").startswith(peer)):
            continue
        if since is not None and getattr(ev, since[0]) < since[1]:
            continue
        if until is not None and getattr(ev, until[0]) > until[1]:
            continue
        yield ev


def read_node(path) -> str | None:
    """The node that wrote a trace file (its header), or None (JSON lines name it per line)."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            return None
        f.seek(0)
        return read_header(f).get("node")
