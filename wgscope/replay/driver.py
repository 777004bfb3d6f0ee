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
from .decrypted import SAME, DecryptedStream, streams
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
                   reexecute_sides: bool = True, decrypted: str | os.PathLike | None = None) -> Replay:
    """Replay every WireGuard datagram of a pcap/pcapng capture; keys from its DSB, key logs and configs.

    `bus` gets the observer's findings; `node_bus(name) -> EventBus` the events of each
    re-executed side (the live node's events, under its name); `progress["frame"]` follows the
    frame being replayed. `keep_decrypted`: the inner packets in Replay.decrypted_packets;
    `decrypted`: written to this pcap file instead, as replay goes (decrypted.py), their count in
    Replay.decrypted_written (OSError: the file cannot be written)."""
    if isinstance(capture, (str, os.PathLike)):
        if not os.path.exists(capture):
            raise ReplayInputError(f"{capture}: no such file")
        if os.path.isdir(capture):
            raise ReplayInputError(f"{capture}: is a directory, not a capture file")
    ring = keyring if keyring is not None else load_keys(capture, keylogs, configs)
    stream = DecryptedStream(decrypted) if decrypted is not None and streams(decrypted) else None
    with _no_collector():
        result = _replay(capture, ring, bus, annotate, keep_decrypted or decrypted is not None, node_bus, progress,
                         reexecute_sides, stream)
    if decrypted is not None and stream is None:  # not a regular file: written whole, from memory
        from .outputs import write_decrypted

        result.decrypted_written = write_decrypted(decrypted, result)
    return result


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


def _replay(capture, ring, bus, annotate, keep_decrypted, node_bus, progress, reexecute_sides, stream) -> Replay:
    engine = Observer(ring, bus, annotate=annotate, keep_decrypted=keep_decrypted)
    reexecuting = reexecute_sides and bool(ring.sides)
    engine.keep_plain_of = {side.public_key for side in ring.sides.values()} if reexecuting else set()
    try:
        cols = read_columns(capture, comments=reexecuting)
    except CaptureError as e:
        raise ReplayInputError(f"{_name(capture)}: {e}") from None
    runs = run_bounds(cols)
    kept = Kept(cols, runs, stream) if reexecuting else None
    if stream is not None:  # the observer's list of inner packets is the stream's chunk
        engine.r.decrypted_packets, engine.r.decrypted_times = stream.packets, stream.times
    observe(engine, cols, runs, kept, progress, stream)
    if stream is not None:
        engine.r.decrypted_written = stream.finish()
    result = engine.finish()
    result.frames = cols.frames[-1] if cols.frames else 0
    if cols.damage:
        result.notices.append(cols.damage)
    if reexecuting:
        reexecute(kept, ring, engine, result, node_bus, annotate, progress)
    return result


class Kept:
    """What pass 1 keeps for pass 2: the columns, the runs, and per datagram the inner packet the
    observer decrypted (and its padded plaintext) when a re-executed side sent it. With a
    --decrypted stream (decrypted.py) `inner` holds the packet's number in that file and `padded`
    SAME where the padded plaintext was the inner packet itself; `plain` and `batch` read them."""

    def __init__(self, cols, runs, stream=None) -> None:
        self.cols, self.runs, self.stream = cols, runs, stream
        self.inner: list = [None] * len(cols)
        self.padded: list = [None] * len(cols)

    def keep_run(self, start: int, stop: int, run_plain, first: int) -> None:
        """A run the observer took: its inner packets (numbers from `first` in the stream)."""
        inners, padded = run_plain
        if self.stream is None:
            self.inner[start:stop], self.padded[start:stop] = inners, padded
            return
        self.inner[start:stop] = range(first, first + stop - start)
        self.padded[start:stop] = [SAME] * (stop - start) if padded is inners else \
            [SAME if q is p else q for p, q in zip(inners, padded)]

    def plain(self, i: int):
        """Datagram i's inner packet, or None."""
        k = self.inner[i]
        return k if self.stream is None or k is None else self.stream.packet(k)

    def batch(self, inners: list, padded: list) -> tuple[list, list]:
        """A run's slices of `inner` and `padded` as the core and the seal memo take them: packets
        (bytes), and the padded plaintexts (None: not known)."""
        if self.stream is None:
            return inners, padded
        packets = self.stream.read(inners)
        if padded.count(SAME) == len(padded):
            return packets, packets
        return packets, [p if q is SAME else q for p, q in zip(packets, padded)]


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


def observe(engine, cols, runs, kept, progress, stream=None) -> None:
    """Pass 1: every datagram through the observer, a run at once where it can (observe_runs.py).
    With a --decrypted `stream`, a kept inner packet is the last one the observer decrypted."""
    frames, times, src, dst, payload = cols.frames, cols.times, cols.src, cols.dst, cols.payload
    feed, skip, feed_run = engine.feed, engine.skip, engine.feed_run
    counters, sizes, nonces = cols.counter.tolist(), cols.size.tolist(), _nonces(cols.counter)
    for start, stop in runs:
        if progress is not None:
            progress["frame"] = frames[stop - 1]
        if stream is not None:
            stream.pending()
        if stop - start > 1 and feed_run(frames[start:stop], times[start:stop], src[start], payload[start:stop],
                                         int(cols.receiver[start]), counters[start:stop], sizes[start:stop],
                                         nonces[start:stop]):
            if kept is not None and engine.run_plain is not None:
                kept.keep_run(start, stop, engine.run_plain, stream.count - (stop - start) if stream else 0)
            continue
        for i in range(start, stop):
            if src[i] is None:
                skip(frames[i], times[i])
                continue
            feed(frames[i], times[i], src[i], dst[i], payload[i])
            if kept is not None:
                kept.inner[i] = engine.plain if stream is None or engine.plain is None else stream.count - 1
            if stream is not None:
                stream.pending()


_NONCE = np.dtype([("zero", "<u4"), ("counter", "<u8")])  # 12 bytes, packed: protocol.crypto.nonce's layout


def _nonces(counter) -> list:
    """Every frame's nonce(counter) (crypto.nonce: 32 zero bits, the 64-bit little-endian counter) as
    bytes, made by numpy at once: a void-typed view's tolist is a list of 12-byte bytes."""
    made = np.zeros(len(counter), dtype=_NONCE)
    made["counter"] = counter
    return made.view("V12").tolist()


def _name(capture) -> str:
    return str(capture) if isinstance(capture, (str, os.PathLike)) else "capture"
