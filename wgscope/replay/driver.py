"""Read a capture, gather its keys, observe it, then re-execute every side whose key is known.

    pass 1  observer.py    what crossed the wire (parties, handshakes, sessions, flows)
    pass 2  reexecute.py   each known side's own Device, driven by the capture (node.py)

The file is read and parsed once, into columns (columns.py), and cut into runs of one flow
(`run_bounds`); pass 1 keeps, for a datagram a re-executed side sent, the inner packet the
observer already decrypted, for pass 2. Both passes take a run at once where nothing in it
asks for a decision per datagram (observe_runs.py, node_runs.py), else each datagram alone.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from typing import Iterable

import numpy as np

from ..events import EventBus
from ..pcap import CaptureError, CaptureReader
from .columns import read_columns, secrets_of
from .observer import Observer, Replay
from .reexecute import reexecute
from .keys import KeyRing, KeySourceError


class ReplayInputError(ValueError):
    """A capture or key source replay cannot use; the message is one line."""


def load_keys(capture: str | os.PathLike | bytes, keylogs: Iterable[str] = (), configs: Iterable[str] = ()) -> KeyRing:
    ring = KeyRing()
    secrets = secrets_of(capture)  # a plain pcapng file: its blocks' headers only
    if secrets is None:
        reader = CaptureReader(capture)
        try:
            reader.read_secrets()
        except CaptureError:
            pass  # the packet pass reports the damage; secrets before it are still used
        secrets = reader.secrets
    try:
        for i, text in enumerate(secrets, 1):
            ring.add_keylog(text, f"capture DSB {i}")
        for path in keylogs:
            ring.add_keylog_file(path)
        for path in configs:
            ring.add_config_file(path)
    except CaptureError as e:
        raise ReplayInputError(f"{_name(capture)}: {e}") from None
    except KeySourceError as e:
        raise ReplayInputError(str(e)) from None
    return ring


def replay_capture(capture: str | os.PathLike | bytes, keylogs: Iterable[str] = (), configs: Iterable[str] = (),
                   bus: EventBus | None = None, annotate: bool = False, keep_decrypted: bool = False,
                   keyring: KeyRing | None = None, node_bus=None, progress: dict | None = None,
                   reexecute_sides: bool = True) -> Replay:
    """Replay every WireGuard datagram of a pcap/pcapng capture; keys from its DSB, key logs and configs.

    `bus` gets the observer's findings; `node_bus(name) -> EventBus` the events of each
    re-executed side (the live node's events, under its name); `progress["frame"]` follows the
    frame being replayed."""
    if isinstance(capture, (str, os.PathLike)):
        if not os.path.exists(capture):
            raise ReplayInputError(f"{capture}: no such file")
        if os.path.isdir(capture):
            raise ReplayInputError(f"{capture}: is a directory, not a capture file")
    ring = keyring if keyring is not None else load_keys(capture, keylogs, configs)
    with _no_collector():
        return _replay(capture, ring, bus, annotate, keep_decrypted, node_bus, progress, reexecute_sides)


@contextmanager
def _no_collector():
    """The cyclic garbage collector off while replaying: the replay holds every datagram of the
    capture and the inner packets of its sessions (millions of objects for a large capture), none
    of them in reference cycles, and the collector's passes over them found nothing to free and
    cost a sixth of the run (bench/README.md, "Replay"). Reference counting still frees as usual."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _replay(capture, ring, bus, annotate, keep_decrypted, node_bus, progress, reexecute_sides) -> Replay:
    engine = Observer(ring, bus, annotate=annotate, keep_decrypted=keep_decrypted)
    reexecuting = reexecute_sides and bool(ring.sides)
    engine.keep_plain_of = {side.public_key for side in ring.sides.values()} if reexecuting else set()
    try:
        cols = read_columns(capture, comments=reexecuting)
    except CaptureError as e:
        raise ReplayInputError(f"{_name(capture)}: {e}") from None
    runs = run_bounds(cols)
    kept = Kept(cols, runs) if reexecuting else None
    observe(engine, cols, runs, kept, progress)
    result = engine.finish()
    result.frames = cols.frames[-1] if cols.frames else 0
    if cols.damage:
        result.notices.append(cols.damage)
    if reexecuting:
        reexecute(kept, ring, engine, result, node_bus, annotate, progress)
    return result


class Kept:
    """What pass 1 keeps for pass 2: the columns, the runs, and per datagram the inner packet the
    observer decrypted (and its padded plaintext) when a re-executed side sent it."""

    def __init__(self, cols, runs) -> None:
        self.cols, self.runs = cols, runs
        self.inner: list = [None] * len(cols)
        self.padded: list = [None] * len(cols)


def run_bounds(cols) -> list[tuple[int, int]]:
    """(start, stop) of each run of consecutive transport messages with one receiver index, one
    source and destination, counters rising; every other datagram is a run of its own."""
    n = len(cols)
    if not n:
        return []
    src, dst = cols.src_id, cols.dst_id
    t, rcv, ctr = cols.transport, cols.receiver, cols.counter
    same = t[1:] & t[:-1] & (rcv[1:] == rcv[:-1]) & (src[1:] == src[:-1]) & (dst[1:] == dst[:-1]) & (ctr[1:] > ctr[:-1])
    starts = np.concatenate(([0], np.flatnonzero(~same) + 1)).tolist()
    return list(zip(starts, starts[1:] + [n]))


def observe(engine, cols, runs, kept, progress) -> None:
    """Pass 1: every datagram through the observer, a run at once where it can (observe_runs.py)."""
    frames, times, src, dst, payload = cols.frames, cols.times, cols.src, cols.dst, cols.payload
    feed, skip, feed_run = engine.feed, engine.skip, engine.feed_run
    for start, stop in runs:
        if progress is not None:
            progress["frame"] = frames[stop - 1]
        if stop - start > 1 and feed_run(frames[start:stop], times[start:stop], src[start], payload[start:stop],
                                         int(cols.receiver[start]), cols.counter[start:stop].tolist()):
            if kept is not None and engine.run_plain is not None:
                kept.inner[start:stop], kept.padded[start:stop] = engine.run_plain
            continue
        for i in range(start, stop):
            if src[i] is None:
                skip(frames[i], times[i])
                continue
            feed(frames[i], times[i], src[i], dst[i], payload[i])
            if kept is not None:
                kept.inner[i] = engine.plain


def _name(capture) -> str:
    return str(capture) if isinstance(capture, (str, os.PathLike)) else "capture"
