"""A capture as columns: every frame's number, time, UDP endpoints and payload, and for
transport messages their receiver index and counter, so replay can cut the capture into runs
of one flow (driver.py) instead of handling it a Python object at a time.

Two builders, one result:

- `_fast`: a pcapng file of one little-endian section whose blocks are interface
  descriptions, enhanced packet blocks, secrets and skippable blocks (what Wireshark, dumpcap
  and wgscope's own --capture write). The walk over the block headers (blockwalk.py) collects
  the packet blocks' offsets; numpy then checks every block as the reader does (trailing length,
  captured length, interface, timestamp range, a comment's option) and parses the usual frame
  (IPv4 without options, not a fragment, UDP filling it; the reader's `_udp4_plain`) for all
  packets at once. A frame that is anything else goes through `parse_frame` alone.
- `_generic`: anything else, or any block the fast walk does not accept: the ordinary reader
  (wgscope.pcap.read_capture) and `parse_frame`, packet by packet, with its own error messages
  and "damaged after frame N" behaviour.

Comments are decoded when asked for (`Columns.comment(i)`): replay only reads those of datagrams
that arrived at a re-executed side.
"""

from __future__ import annotations

import os
import socket

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..pcap import CaptureError, FrameError, parse_frame, read_capture
from ..pcap import reader as _rd
from ..pcap.frames import LINKTYPE_IPV4, LINKTYPE_RAW, _endpoint
from ..protocol.constants import MESSAGE_TRANSPORT, TRANSPORT_MIN_SIZE
from ..protocol.messages import head_word, transport_fields
from .blockwalk import leave as _leave
from .blockwalk import mapped as _mapped
from .blockwalk import walk_file as _walk_file

_FAST_LINKTYPES = (LINKTYPE_RAW, LINKTYPE_IPV4)  # the frame starts with the IPv4 header
_IPV4_UDP = 28


class Columns:
    """`frames`, `times`, `src`, `dst` (endpoint tuples, None: no UDP datagram in the frame),
    `payload` (bytes, a view of the file for transport, or None) as lists; `transport`,
    `receiver`, `counter`, `size` (the payload's length, 0: none), and `src_id`, `dst_id` (a
    number per distinct endpoint) as numpy arrays."""

    def __init__(self, frames, times, src, dst, payload, transport, receiver, counter, comment_of,
                 damage: str | None = None, ids=None, size=None) -> None:
        self.frames, self.times, self.src, self.dst, self.payload = frames, times, src, dst, payload
        # each UDP payload's length (0: none), as a numpy array
        self.size = size if size is not None else np.fromiter(
            (0 if p is None else len(p) for p in payload), np.int64, len(payload))
        self.transport, self.receiver, self.counter = transport, receiver, counter
        self._comment_of = comment_of
        self.damage = damage  # the reader's error after the last good frame, if any
        self.src_id, self.dst_id = ids if ids is not None else _endpoint_ids(src, dst)

    def __len__(self) -> int:
        return len(self.frames)

    def comment(self, i: int) -> str | None:
        return self._comment_of(i)


def read_columns(capture, comments: bool = True) -> Columns:
    """The whole capture as columns; a damaged file gives what came before the damage and
    `damage` (CaptureError when not even one frame could be read)."""
    if isinstance(capture, (str, os.PathLike)) and os.path.isfile(capture):
        with open(capture, "rb") as f:
            buf = _mapped(f)
            walked = _walk_file(f, buf) if buf else None
        if walked is not None:
            fast = _fast(buf, walked, comments)
            if fast is not None:
                return fast
        if buf:
            try:
                buf.close()
            except BufferError:  # a view of it still alive: it closes when that goes
                pass
    return _generic(capture, comments)


def _endpoint_ids(src: list, dst: list):
    ids: dict = {}
    n = len(src)
    return (np.fromiter((ids.setdefault(e, len(ids)) for e in src), np.int64, n),
            np.fromiter((ids.setdefault(e, len(ids)) for e in dst), np.int64, n))


# --------------------------------------------------------------------------- fast


def secrets_of(capture) -> list[str] | None:
    """The WireGuard key logs of a plain pcapng file by the fast walk (None: ask the reader)."""
    if not isinstance(capture, (str, os.PathLike)) or not os.path.isfile(capture):
        return None
    try:
        with open(capture, "rb") as f:
            if not os.fstat(f.fileno()).st_size:
                return None
            buf = _mapped(f)
            walked = _walk_file(f, buf) if buf else None
            if walked is None:
                return None
            _leave(buf)  # for read_columns, which takes it
            return walked[2]
    except (OSError, ValueError):
        return None


def _be16(word, shift):
    """A big-endian 16-bit field from little-endian 32-bit words (bytes at shift/8, shift/8 + 1)."""
    return ((word >> shift) & 0xFF) << 8 | ((word >> (shift + 8)) & 0xFF)


def _fast(buf, walked, comments: bool):
    offsets, interfaces, _secrets = walked
    n = len(offsets)
    if n and not interfaces:
        return None
    a = np.frombuffer(buf, dtype=np.uint8)
    w = np.frombuffer(buf, dtype="<u4", count=len(buf) // 4)  # blocks are 32-bit aligned (pcapng 3.1)
    off = np.asarray(offsets, dtype=np.int64)
    if (off & 3).any():
        return None
    # words 0-17 of every packet block at once: the block's header (0-6), then the frame (7-13:
    # IPv4 and UDP headers of the usual frame) and the message (14-17: type, receiver, counter)
    words = _words(w, off // 4, 18)

    def word(k):
        return words[:, k].astype(np.int64)

    blen, ifid, hi, lo, caplen = word(1), word(2), word(3), word(4), word(5)
    if (blen & 3).any():
        return None
    body_end = off + blen - 4
    data_start = off + 28
    data_end = data_start + caplen
    if (blen < 32).any() or (w[(body_end // 4)] != blen).any() or (data_end > body_end).any() \
            or (ifid >= max(1, len(interfaces))).any():
        return None
    ifaces = interfaces
    # The reader's ((hi << 32) | lo) / divisor + offset: the integer rounded to a double (as Python
    # and numpy both do, to nearest), divided, the offset added: the same double either way.
    divisor = np.array([i.divisor for i in ifaces] or [1.0])[ifid]
    shift = np.array([i.offset for i in ifaces] or [0], dtype=np.int64)[ifid]
    t = ((hi << 32) | lo).astype(np.float64) / divisor + shift
    if n and not ((t >= 0.0) & (t < _rd._LAST_TIMESTAMP)).all():
        return None
    times = t.tolist()
    opt_start = data_end + ((-caplen) & 3)
    comment_of = _comment_reader(buf, a, off, opt_start, body_end) if comments else (lambda i: None)
    if comment_of is None:
        return None
    link = np.array([i.linktype for i in ifaces] or [0], dtype=np.int64)[ifid]
    src, dst, payload, fast, ids = _frames(buf, word, link, data_start, caplen)
    transport, receiver, counter = _transport_columns(payload, word, fast, caplen - _IPV4_UDP)
    for i in np.flatnonzero(fast & ~transport).tolist():
        payload[i] = bytes(payload[i])  # handshake code keeps and hashes bytes (as the core's GRO path)
    size = np.where(fast, caplen - _IPV4_UDP, 0)
    for i in np.flatnonzero(~fast).tolist():
        size[i] = 0 if payload[i] is None else len(payload[i])
    return Columns(list(range(1, n + 1)), times, src, dst, payload, transport, receiver, counter, comment_of,
                   ids=ids, size=size)


def _words(w, base, count: int):
    """Words base..base + count - 1 of every block (a word past the file's end reads as its last
    word): rows of a strided view of the file taken whole (a copy of each row, not an index per
    word); the few blocks too near the end for a whole row take the index per word."""
    last = len(w) - count
    if last < 0:
        return w[np.minimum(base[:, None] + np.arange(count), len(w) - 1)]
    rows = as_strided(w, shape=(last + 1, count), strides=(w.strides[0], w.strides[0]), writeable=False)
    words = rows[np.minimum(base, last)]
    tail = np.flatnonzero(base > last)
    if len(tail):
        words[tail] = w[np.minimum(base[tail, None] + np.arange(count), len(w) - 1)]
    return words


def _comment_reader(buf, a, off, opt_start, body_end):
    """A function i -> packet i's comment. Packets whose options are one comment and the end are
    checked here at once and decoded when asked; any other options are decoded now (the reader's
    own walk, which raises on a malformed option: then None, and the generic path takes over)."""
    s = _rd._STRUCTS["<"]
    has = opt_start < body_end
    idx = np.flatnonzero(has)
    simple = np.zeros(len(off), dtype=bool)
    if len(idx):
        pos = opt_start[idx]
        stop = body_end[idx]
        ok = pos + 4 <= stop
        safe = np.where(ok, pos, 0)
        code = a[safe] | (a[safe + 1].astype(np.int64) << 8)
        length = a[safe + 2] | (a[safe + 3].astype(np.int64) << 8)
        nxt = pos + 4 + length + ((-length) & 3)
        ok &= (code == 1) & (pos + 4 + length <= stop)
        tail = nxt + 4 <= stop
        safe_n = np.where(ok & tail, nxt, 0)
        end_code = a[safe_n] | (a[safe_n + 1].astype(np.int64) << 8)
        ok &= ~tail | (end_code == 0)
        simple[idx[ok]] = True
    eager: dict[int, str | None] = {}
    for i in np.flatnonzero(has & ~simple).tolist():
        try:
            eager[i] = _rd._comment(buf, int(opt_start[i]), int(body_end[i]), s, int(off[i]))
        except CaptureError:
            return None
    start = opt_start + 4

    def comment_of(i: int) -> str | None:
        if simple[i]:
            p = int(start[i])
            length = buf[p - 2] | (buf[p - 1] << 8)
            return str(buf[p: p + length], "utf-8", "replace")
        return eager.get(i)

    return comment_of


def _frames(buf, word, link, data_start, caplen):
    """(src, dst, payload, fast) : the usual IPv4/UDP frame (the reader's `_udp4_plain`) parsed for
    all at once from the words after each packet block's header (word 7 is the frame's first),
    any other frame alone by parse_frame."""
    n = len(data_start)
    w7, w8, w9, w12, w13 = word(7), word(8), word(9), word(12), word(13)
    total, ulen = _be16(w7, 16), _be16(w13, 0)
    fast = np.isin(link, _FAST_LINKTYPES) & (caplen >= _IPV4_UDP) & ((w7 & 0xFF) == 0x45) \
        & (((w9 >> 8) & 0xFF) == socket.IPPROTO_UDP) & ((_be16(w8, 16) & 0x3FFF) == 0) & (total == caplen) \
        & (ulen == total - 20) & (ulen >= 8)
    src_ip, dst_ip = word(10), word(11)  # address bytes in file order
    src_key = (src_ip << 16) | _be16(w12, 0)
    dst_key = (dst_ip << 16) | _be16(w12, 16)
    keys, inverse = np.unique(np.concatenate([src_key[fast], dst_key[fast]]), return_inverse=True)
    eps = [_endpoint(socket.AF_INET, (k >> 16).to_bytes(4, "little"), k & 0xFFFF) for k in keys.tolist()]
    m = int(fast.sum())
    view = memoryview(buf)  # transport payloads stay views of the mapped file: no copy of the capture
    src: list = [None] * n
    dst: list = [None] * n
    payload: list = [None] * n
    fast_idx = np.flatnonzero(fast).tolist()
    starts = (data_start[fast] + _IPV4_UDP).tolist()
    ends = (data_start[fast] + caplen[fast]).tolist()
    if m == n:  # the usual capture: every frame is the plain kind
        each = np.empty(len(eps), dtype=object)  # the endpoints gathered by numpy, the same objects
        for k, e in enumerate(eps):
            each[k] = e
        src, dst = each[inverse[:m]].tolist(), each[inverse[m:]].tolist()
        payload = [view[p0:p1] for p0, p1 in zip(starts, ends)]
    else:
        for i, s_, d_, p0, p1 in zip(fast_idx, inverse[:m].tolist(), inverse[m:].tolist(), starts, ends):
            src[i] = eps[s_]
            dst[i] = eps[d_]
            payload[i] = view[p0:p1]
    for i in np.flatnonzero(~fast).tolist():
        start = int(data_start[i])
        try:
            udp = parse_frame(int(link[i]), buf[start: start + int(caplen[i])])
        except FrameError:
            udp = None
        if udp is not None:
            src[i], dst[i], payload[i] = udp.src, udp.dst, udp.payload
    ids = None
    if m == n:  # numbers per distinct endpoint, as np.unique gave them
        ids = (inverse[:m].astype(np.int64), inverse[m:].astype(np.int64))
    return src, dst, payload, fast, ids


def _transport_columns(payload, word=None, fast=None, size=None):
    """(is transport, receiver index, counter) per frame, as the core's fast check reads them
    (head_word, transport_fields); for the `fast` frames from the file's words (14: the message's
    first word, 15 the receiver index, 16-17 the counter) at once."""
    n = len(payload)
    transport = np.zeros(n, dtype=bool)
    receiver = np.zeros(n, dtype=np.int64)
    counter = np.zeros(n, dtype=np.uint64)
    if fast is not None and n:
        yes = fast & (size >= TRANSPORT_MIN_SIZE) & (word(14) == MESSAGE_TRANSPORT)
        transport[yes] = True
        receiver[yes] = word(15)[yes]
        counter[yes] = (word(16)[yes].astype(np.uint64) | (word(17)[yes].astype(np.uint64) << np.uint64(32)))
        rest = np.flatnonzero(~fast).tolist()
    else:
        rest = range(n)
    for i in rest:
        data = payload[i]
        if data is not None and len(data) >= TRANSPORT_MIN_SIZE and head_word(data)[0] == MESSAGE_TRANSPORT:
            transport[i] = True
            receiver[i], counter[i] = transport_fields(data)
    return transport, receiver, counter


# --------------------------------------------------------------------------- generic


def _generic(capture, comments: bool) -> Columns:
    frames, times, src, dst, payload, notes = [], [], [], [], [], []
    damage = None
    try:
        for pkt in read_capture(capture, comments=comments):
            frames.append(pkt.frame_number)
            times.append(pkt.timestamp)
            notes.append(pkt.comment)
            try:
                udp = parse_frame(pkt.linktype, pkt.data)
            except FrameError:
                udp = None
            src.append(udp.src if udp is not None else None)
            dst.append(udp.dst if udp is not None else None)
            payload.append(udp.payload if udp is not None else None)
    except CaptureError as e:
        if not frames:
            raise
        damage = f"the capture is damaged after frame {frames[-1]} ({e}); what came before is analysed"
    transport, receiver, counter = _transport_columns(payload)
    return Columns(frames, times, src, dst, payload, transport, receiver, counter, notes.__getitem__, damage)
