"""The binary trace writer: a record sink of the bus (`--events FILE.wgtrace`).

The node's thread does the least it can: the bus gathers per-packet records as tuples of
integers; every FLUSH_RECORDS of them (or FLUSH_INTERVAL) this sink turns the batch into one
block with a handful of numpy conversions (no per-event formatting) and queues it. A writer
thread writes the blocks. The queue is bounded: if the disk cannot keep up, a block is lost,
counted, and announced at once as an `events_lost` event (which every sink sees, this file
included as soon as it catches up). Nothing is sampled and nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from operator import itemgetter

import numpy as np

from .. import __version__
from ..events import EVENTS_LOST, GENERIC, TRACE, EventBus
from .format import BLOCK_HEAD, BLOCK_MAGIC, GENERIC_CODE, NO_PEER, RECORD, file_header

QUEUE_BLOCKS = 64  # blocks waiting for the writer thread (64 x 4096 records x 40 bytes: ~10 MB)
_name, _time, _peer, _a, _b, _c = (itemgetter(i) for i in range(6))


class _Numbering(dict):
    """key -> number; a key seen for the first time gets the next number and is remembered in
    `new` until the block that introduces it has been queued."""

    def __init__(self, first: dict) -> None:
        super().__init__(first)
        self.next = max(first.values()) + 1
        self.new: dict[int, object] = {}

    def __missing__(self, key) -> int:
        n = self[key] = self.next
        self.next += 1
        self.new[n] = key
        return n


class TraceWriter:
    """Subscribes to `bus` for records at `level` and writes them to `path` (overwritten)."""

    def __init__(self, path: str | os.PathLike, bus: EventBus, level: int = TRACE, node: str | None = None,
                 queue_blocks: int = QUEUE_BLOCKS) -> None:
        self.path = str(path)
        self._file = open(path, "wb", buffering=0)
        self._file.write(file_header({"format": 1, "node": node, "wgscope": __version__,
                                      "created": time.time(), "record": str(RECORD.descr)}))
        self.bus = bus
        self._codes = _Numbering({GENERIC: GENERIC_CODE})
        self._peers = _Numbering({None: NO_PEER})
        self._queue: queue.Queue = queue.Queue(maxsize=queue_blocks)
        self._closing = False
        self._reporting = False
        self.write_error: OSError | None = None
        self.records = self.blocks = 0
        self.lost = self._unreported = 0
        self._failed = self._failed_seen = 0  # records in blocks the writer thread could not write
        self._thread = threading.Thread(target=self._write_loop, name=f"wgscope-trace {self.path}", daemon=True)
        self._thread.start()
        self._unsubscribe = bus.subscribe_records(self, level)

    # ---------------------------------------------------------------- node thread
    def __call__(self, records: list, generic: list, wall_offset: float) -> None:
        count = len(records)
        if self._failed != self._failed_seen:  # blocks already queued when writing failed
            failed, self._failed_seen = self._failed - self._failed_seen, self._failed
            self.records -= failed
            self.lost += failed
            self._unreported += failed
        block = self.encode(records, generic, wall_offset)
        reason = "write_failed" if self.write_error is not None else None
        if reason is None:
            try:
                if self._closing:
                    self._queue.put(block)
                else:
                    self._queue.put_nowait(block)
            except queue.Full:
                reason = "queue_full"
        if reason is None:
            self._codes.new.clear()  # the file now knows them
            self._peers.new.clear()
            self.records += count
            self.blocks += 1
            return
        self.lost += count
        self._unreported += count
        self._report_loss(records[-1][1], reason)

    def _report_loss(self, now: float, reason: str) -> None:
        if self._reporting or self._closing:
            return
        self._reporting = True
        try:
            lost, self._unreported = self._unreported, 0
            self.bus.emit(EVENTS_LOST, now, None, sink=self.path, lost=lost, total=self.lost, reason=reason)
        finally:
            self._reporting = False

    def encode(self, records: list, generic: list, wall_offset: float) -> bytes:
        """One block: a few C-level passes over the records, JSON only for the generic Events."""
        n = len(records)
        rows = np.empty(n, RECORD)
        rows["time"] = np.fromiter(map(_time, records), np.float64, n)
        rows["code"] = np.fromiter(map(self._codes.__getitem__, map(_name, records)), np.uint32, n)
        rows["peer"] = np.fromiter(map(self._peers.__getitem__, map(_peer, records)), np.uint32, n)
        rows["a"] = np.fromiter(map(_a, records), np.uint64, n)
        rows["b"] = np.fromiter(map(_b, records), np.uint64, n)
        rows["c"] = np.fromiter(map(_c, records), np.uint64, n)
        side = {"wall_offset": wall_offset, "codes": self._codes.new, "peers": self._peers.new,
                "generic": [[ev.name, ev.wall, ev.fields] for ev in generic]}
        body = json.dumps(side, separators=(",", ":"), default=str).encode()
        return BLOCK_HEAD.pack(BLOCK_MAGIC, n, len(body)) + body + rows.tobytes()

    def flush(self) -> None:
        """Everything the bus gathered goes to the writer thread now."""
        self.bus.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        self._closing = True
        self._unsubscribe()  # flushes the bus: the last block is queued (waiting, not dropped)
        self._queue.put(None)
        self._thread.join(timeout=30)
        self._file.close()

    # ---------------------------------------------------------------- writer thread
    def _write_loop(self) -> None:
        while True:
            block = self._queue.get()
            if block is None:
                return
            if self.write_error is None:
                try:
                    view = memoryview(block)
                    while view:
                        view = view[self._file.write(view):]
                    continue
                except OSError as e:
                    self.write_error = e
            self._failed += BLOCK_HEAD.unpack_from(block)[1]
