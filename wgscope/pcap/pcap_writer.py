"""Minimal classic pcap writer (microsecond or nanosecond timestamps), e.g. for the
decrypted inner packets of a tunnel (LINKTYPE_RAW).  Paths are created 0600."""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from .output import CaptureOutput
from .pcapng_writer import timestamp_to_ns

__all__ = ["PcapWriter"]

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
_RECORD = struct.Struct("<IIII")


class PcapWriter(CaptureOutput):
    def __init__(
        self,
        path_or_fileobj: str | os.PathLike | BinaryIO,
        linktype: int = 101,
        snaplen: int = 65535,
        nanosecond: bool = False,
    ) -> None:
        super().__init__(path_or_fileobj)
        self.linktype = linktype
        self.snaplen = snaplen
        self._units = 1_000_000_000 if nanosecond else 1_000_000
        magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
        self._file.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write_packet(self, data: bytes, timestamp: float) -> None:
        self.write_packets(((timestamp, data),))

    def write_packets(self, packets) -> int:
        """(timestamp, data) pairs, as write_packet writes each, gathered into few large writes."""
        self._check_open()
        pack, snaplen, units_ns = _RECORD.pack, self.snaplen, self._units == 1_000_000_000
        out: list[bytes] = []
        n = 0
        for timestamp, data in packets:
            seconds, ns = divmod(timestamp_to_ns(timestamp), 1_000_000_000)
            if seconds > 0xFFFFFFFF:
                raise ValueError(f"timestamp beyond classic pcap's 32-bit seconds: {timestamp!r}")
            orig_len = len(data)
            if orig_len > snaplen:
                data = data[:snaplen]
            out.append(pack(seconds, ns if units_ns else ns // 1000, len(data), orig_len))
            out.append(data)
            n += 1
            if len(out) >= 8192:
                self._file.write(b"".join(out))
                out.clear()
        self._file.write(b"".join(out))
        return n

    def write_columns(self, timestamps, datas: list, lengths=None) -> int:
        """What write_packets(zip(timestamps, datas)) writes, for many packets at once: the record
        headers made in a few numpy passes, each header one 16-byte bytes object (a void-typed
        view's tolist, no Python slicing per packet), and headers and packets joined a thousand
        records at a time (~1.5 MB; never the whole list) and written. Same results and errors as
        write_packets. `lengths`: each data's length as array('Q'), when the caller has it."""
        import numpy as np

        n = len(datas)
        t = np.fromiter(timestamps, np.float64, len(timestamps))
        lengths = np.fromiter(map(len, datas), np.int64, n) if lengths is None else \
            np.frombuffer(lengths, dtype=np.uint64).astype(np.int64)
        try:
            fd = self._file.fileno()
        except (AttributeError, OSError):  # io.UnsupportedOperation is an OSError
            fd = None
        if self._closed or fd is None or not n or not np.isfinite(t).all() or (t < 0).any() \
                or (lengths > self.snaplen).any():
            return self.write_packets(zip(timestamps, datas))  # the packet-at-a-time path says what is wrong
        seconds = np.floor(t)
        total = seconds.astype(np.int64) * 1_000_000_000 + np.round((t - seconds) * 1e9).astype(np.int64)
        sec, ns = np.divmod(total, 1_000_000_000)  # as timestamp_to_ns, then divmod
        if (sec > 0xFFFFFFFF).any():
            return self.write_packets(zip(timestamps, datas))
        head = np.empty((n, 4), dtype="<u4")
        head[:, 0] = sec
        head[:, 1] = ns if self._units == 1_000_000_000 else ns // 1000
        head[:, 2] = lengths
        head[:, 3] = lengths
        records: list = [None] * (2 * n)
        records[0::2] = head.view("V16").ravel().tolist()  # void items are bytes, trailing zeros kept
        records[1::2] = datas
        self._file.flush()
        for k in range(0, 2 * n, 2048):
            rest = memoryview(b"".join(records[k: k + 2048]))
            while rest:
                rest = rest[os.write(fd, rest):]
        return n
