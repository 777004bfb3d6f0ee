"""pcapng writer: one section, one interface, packets with comments, WireGuard secrets.

Block layouts follow draft-ietf-opsawg-pcapng.  Files opened by path are created 0600:
a capture carrying a Decryption Secrets Block decrypts the tunnel's traffic.
"""

from __future__ import annotations

import math
import os
import struct
from typing import BinaryIO

from .output import CaptureOutput

__all__ = ["PcapngWriter", "SECRETS_WIREGUARD", "timestamp_to_ns"]

BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_EPB = 0x00000006
BLOCK_DSB = 0x0000000A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
SECRETS_WIREGUARD = 0x57474B4C  # "WGKL": WireGuard key log (Wireshark's wg.keylog_file format)

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_USERAPPL = 4
IF_TSRESOL = 9

_BLOCK_HEAD = struct.Struct("<II")
_U32 = struct.Struct("<I")
_OPT_HEAD = struct.Struct("<HH")
_EPB_HEAD = struct.Struct("<IIIIIII")  # type, length, if id, ts high, ts low, caplen, origlen
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


def timestamp_to_ns(timestamp: float) -> int:
    """Seconds since the epoch as float -> integer nanoseconds, without a 2**63 overflow
    or the precision lost by multiplying the whole float by 1e9."""
    if not math.isfinite(timestamp) or timestamp < 0:
        raise ValueError(f"timestamp must be a finite number >= 0, not {timestamp!r}")
    seconds = math.floor(timestamp)
    return int(seconds) * 1_000_000_000 + round((timestamp - seconds) * 1e9)


def _option(code: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"option {code} value too long: {len(value)} bytes (max 65535)")
    return _OPT_HEAD.pack(code, len(value)) + value + _PAD[len(value) & 3]


def _options(*opts: bytes) -> bytes:
    return b"".join(opts) + _OPT_HEAD.pack(OPT_ENDOFOPT, 0) if opts else b""


def _block(block_type: int, body: bytes) -> bytes:
    body += _PAD[len(body) & 3]
    total = len(body) + 12
    return _BLOCK_HEAD.pack(block_type, total) + body + _U32.pack(total)


class PcapngWriter(CaptureOutput):
    """Write a pcapng file: SHB, one IDB (nanosecond timestamps), then blocks as asked.

    `path_or_fileobj` is a path (created 0600, closed by close()) or a binary file
    object (left open).  Little-endian, like every writer on the hosts we run on.
    """

    def __init__(
        self,
        path_or_fileobj: str | os.PathLike | BinaryIO,
        linktype: int = 101,
        snaplen: int = 65535,
    ) -> None:
        if not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"link type out of range: {linktype}")
        if not 0 <= snaplen <= 0xFFFFFFFF:
            raise ValueError(f"snaplen out of range: {snaplen}")
        super().__init__(path_or_fileobj)
        self.linktype = linktype
        self.snaplen = snaplen
        self.packets_written = 0
        shb = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options(
            _option(SHB_USERAPPL, b"wgscope")
        )
        idb = struct.pack("<HHI", linktype, 0, snaplen) + _options(_option(IF_TSRESOL, b"\x09"))
        self._file.write(_block(BLOCK_SHB, shb) + _block(BLOCK_IDB, idb))

    def write_packet(self, data: bytes, timestamp: float, comment: str | None = None) -> None:
        """Append an Enhanced Packet Block on interface 0 (truncated to snaplen)."""
        self._check_open()
        ns = timestamp_to_ns(timestamp)
        orig_len = len(data)
        if orig_len > self.snaplen:
            data = data[: self.snaplen]
        cap_len = len(data)
        opts = _options(_option(OPT_COMMENT, comment.encode("utf-8"))) if comment is not None else b""
        total = 32 + cap_len + ((-cap_len) & 3) + len(opts)
        self._file.write(
            b"".join(
                (
                    _EPB_HEAD.pack(BLOCK_EPB, total, 0, ns >> 32 & 0xFFFFFFFF, ns & 0xFFFFFFFF, cap_len, orig_len),
                    data,
                    _PAD[cap_len & 3],
                    opts,
                    _U32.pack(total),
                )
            )
        )
        self.packets_written += 1

    def write_wireguard_secrets(self, keylog_text: str) -> None:
        """Append a Decryption Secrets Block of type WGKL holding a WireGuard key log
        (lines like ``LOCAL_STATIC_PRIVATE_KEY = <base64>``).  Wireshark applies it to
        the packets that follow it."""
        self._check_open()
        secrets = keylog_text.encode("utf-8")
        self._file.write(_block(BLOCK_DSB, struct.pack("<II", SECRETS_WIREGUARD, len(secrets)) + secrets))

