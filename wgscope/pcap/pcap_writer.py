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
