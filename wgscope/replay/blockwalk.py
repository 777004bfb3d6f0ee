"""The block walk of a plain pcapng file (columns.py's fast builder, load_keys' key logs): the
packet blocks' offsets, the interfaces and the WireGuard key logs of a file of one little-endian
section of interface, packet, secrets and skippable blocks, or None (then the ordinary reader
decides).

The walk is sequential (each block's length says where the next begins): a Python loop, a turn a
block. A capture is mostly packet blocks one after the other, so at a packet block the walk asks
`_Chain` how far the blocks after it are packet blocks too, and takes them at once: numpy finds
every 32-bit word of the file equal to 6 (a packet block's type), and a packet block whose aligned
length ends exactly at the next such word is followed by it. The loop goes on at the first block
whose successor is not so found (another kind of block, a damaged one, the end, or a word 6 inside
a packet by chance): each block is taken as the loop would take it, only faster.
"""

from __future__ import annotations

import mmap
import os
import struct

import numpy as np

from ..pcap import CaptureError
from ..pcap import reader as _rd

_HEAD = struct.Struct("<II")
_LE_BOM = b"\x4d\x3c\x2b\x1a"
_SKIPPED = frozenset({4, 5})  # name resolution, interface statistics: the reader skips them too
_EPB = 6  # enhanced packet block
_SCAN = 1 << 24  # words compared at a time (16 MB of booleans)
_MOST = 16  # candidates beyond one per 16 words (a packet block is 8 or more): no chain, the file's size bounds the rest


_LAST_WALK: list = [None, None, None]  # (file identity, walk, mapping): load_keys maps and walks the file, then
# the replay reads it: one mapping of the file, not two (each mapping's first touch of a page is a fault;
# `mapped`, `leave`: columns.secrets_of leaves it, columns.read_columns takes it)


def _identity(f) -> tuple:
    st = os.fstat(f.fileno())
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def mapped(f):
    """The open file f mapped (b"": empty or not mappable); the mapping `leave` left for this very
    file is taken, not made again."""
    if _LAST_WALK[2] is not None and _LAST_WALK[0] == _identity(f):
        buf, _LAST_WALK[2] = _LAST_WALK[2], None
        return buf
    try:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
    except (OSError, ValueError):
        return b""


def leave(buf) -> None:
    """Keep `buf`, the mapping of the file walked last, for the next `mapped` of that file."""
    _LAST_WALK[2] = buf


def walk_file(f, buf):
    """`walk(buf)` of the open file f, once per file (by its identity)."""
    key = _identity(f)
    if _LAST_WALK[0] == key:
        return _LAST_WALK[1]
    walked = walk(buf)
    _LAST_WALK[:] = key, walked, None
    return walked


def walk(buf):
    """(packet block offsets, interfaces, secrets) of a plain pcapng file, or None."""
    end = len(buf)
    if end < 28 or buf[0:4] != _rd._SHB_MAGIC or buf[8:12] != _LE_BOM:
        return None
    s = _rd._STRUCTS["<"]
    head = _HEAD.unpack_from
    u32 = s.u32.unpack_from
    offsets: list[int] = []
    add = offsets.append
    interfaces: list = []
    secrets: list[str] = []
    runs: list = []  # arrays of offsets the chain took, in order with `offsets`
    chain = None
    off = 0
    while off < end:
        if end - off < 12:
            return None
        btype, blen = head(buf, off)
        if btype == _EPB and blen >= 32:  # a packet block: its length's alignment and end are checked with numpy (_fast)
            if not off & 3:
                if chain is None:
                    chain = _Chain(buf)
                ahead = chain.follow(off)
                if ahead is not None:  # this block and the packet blocks after it, to the one at `off`
                    runs.append(ahead[0])
                    off = ahead[1]
                    continue
            add(off)
            off += blen
            continue
        nxt = off + blen
        if blen < 12 or blen & 3 or nxt > end:
            return None
        if btype == 6:
            return None  # too short to be a packet block: the reader says so
        elif btype == 1:
            if offsets or runs:
                return None  # an interface after packets: the reader's per-block checks decide
            try:
                interfaces.append(_rd._interface(buf, off + 8, nxt - 4, s, off))
            except CaptureError:
                return None
        elif btype == 0x0A0D0D0A:
            if off:
                return None  # a second section
            try:
                _rd._section_structs(buf, off, end)
            except CaptureError:
                return None
        elif btype == 0xA:
            if u32(buf, nxt - 4)[0] != blen or blen < 20:
                return None
            stype, slen = s.dsb.unpack_from(buf, off + 8)
            if off + 16 + slen > nxt - 4:
                return None
            if stype == _rd.SECRETS_WIREGUARD:
                secrets.append(bytes(buf[off + 16: off + 16 + slen]).decode("utf-8", "replace"))
        elif btype not in _SKIPPED:
            return None  # packet blocks of other kinds, numbered non-packets, unknown blocks
        off = nxt
    if off != end:
        return None  # the last packet block runs past the end of the file
    if runs:  # the chain's arrays and the loop's offsets, in file order
        offsets = np.sort(np.concatenate([np.array(offsets, dtype=np.int64), *runs]))
    return offsets, interfaces, secrets


class _Chain:
    """Packet blocks that follow each other, found for the whole file at once."""

    def __init__(self, buf) -> None:
        w = np.frombuffer(buf, dtype="<u4", count=len(buf) // 4)
        n = len(w)
        parts, found = [np.zeros(0, dtype=np.int64)], 0
        for a in range(0, n, _SCAN):
            parts.append(_where(w[a:a + _SCAN] == _EPB) + a)
            found += len(parts[-1])
            if found > n // _MOST:  # a file of words equal to 6 (no capture): the loop walks it, no arrays
                parts = parts[:1]
                break
        cand = np.concatenate(parts).astype(np.int64)
        blen = w[np.minimum(cand + 1, n - 1)].astype(np.int64)
        nxt = cand + (blen >> 2)
        good = np.zeros(len(cand), dtype=bool)  # the block at cand[k] is followed by the one at cand[k + 1]
        good[:-1] = (blen[:-1] >= 32) & ((blen[:-1] & 3) == 0) & (nxt[:-1] == cand[1:])
        self.cand = cand
        self.bad = np.flatnonzero(~good)  # never empty when there is a candidate: the last one is bad

    def follow(self, off: int):
        """(byte offsets of the packet block at `off` and of those that follow it, the offset of the
        first block after them), or None when the block at `off` is not followed by a packet block."""
        i = off >> 2
        k = int(np.searchsorted(self.cand, i))
        if k >= len(self.cand) or self.cand[k] != i:
            return None
        stop = int(self.bad[np.searchsorted(self.bad, k)])
        if stop == k:
            return None
        return self.cand[k:stop] << 2, int(self.cand[stop]) << 2


def _where(hit):
    """np.flatnonzero(hit) for a boolean array with few True: the booleans read eight at a time
    (as 64-bit words) first, so only the words holding a True are looked into."""
    whole = len(hit) - len(hit) % 8
    eights = hit[:whole].reshape(-1, 8)
    some = np.flatnonzero(eights.view(np.uint64).ravel() != 0)
    at = np.flatnonzero(eights[some].ravel())
    return np.concatenate([some[at >> 3] * 8 + (at & 7), np.flatnonzero(hit[whole:]) + whole])
