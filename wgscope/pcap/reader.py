"""Read classic pcap and pcapng captures: packets, in order, plus WireGuard secrets.

The format is detected from the first bytes.  The file is mapped (mmap) and walked
with struct.unpack_from, so the only per-packet object is the CapturedPacket itself.
A damaged file raises CaptureError naming what is wrong and where; packets before the
damage have been yielded by then, as Wireshark shows them too.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import BinaryIO, Iterator, NamedTuple

__all__ = ["CaptureError", "CapturedPacket", "CaptureReader", "read_capture", "read_capture_secrets"]

SECRETS_WIREGUARD = 0x57474B4C  # "WGKL"

_BLOCK_SHB = 0x0A0D0D0A
_BLOCK_IDB = 0x00000001
_BLOCK_PB = 0x00000002  # obsolete Packet Block
_BLOCK_SPB = 0x00000003
_BLOCK_EPB = 0x00000006
_BLOCK_DSB = 0x0000000A
# Blocks Wireshark shows as frames although they are not packets: they take a frame
# number (so ours match Wireshark's) but are not yielded.  Systemd journal export,
# Sysdig events, custom blocks.  (wiretap/pcapng_module.h)
_NUMBERED_NON_PACKETS = frozenset({0x9, 0x204, 0x208, 0x216, 0x217, 0x221, 0x222, 0xBAD, 0x40000BAD})
_OPT_COMMENT = 1
_IF_TSRESOL = 9
_IF_TSOFFSET = 14

# classic pcap magic (as the first four bytes read big-endian) -> (byte order, units/s, record size)
_PCAP_MAGIC = {
    b"\xa1\xb2\xc3\xd4": (">", 1e6, 16),
    b"\xd4\xc3\xb2\xa1": ("<", 1e6, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1e9, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9, 16),
    b"\xa1\xb2\xcd\x34": (">", 1e6, 24),  # Alexey Kuznetzov's patched libpcap
    b"\x34\xcd\xb2\xa1": ("<", 1e6, 24),
}
_SHB_MAGIC = b"\x0a\x0d\x0d\x0a"
_BOM = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}


class CaptureError(ValueError):
    """The capture file is not a pcap/pcapng file or is damaged."""


class CapturedPacket(NamedTuple):
    frame_number: int  # 1-based, counting every packet record, as Wireshark numbers frames
    timestamp: float  # seconds since the epoch
    linktype: int
    data: bytes
    comment: str | None


class _Structs:
    """Pre-compiled structs for one byte order."""

    def __init__(self, bo: str) -> None:
        self.head = struct.Struct(bo + "II")  # block type, block total length
        self.u32 = struct.Struct(bo + "I")
        self.opt = struct.Struct(bo + "HH")
        self.epb = struct.Struct(bo + "IIIII")  # if id, ts high, ts low, caplen, origlen
        self.pb = struct.Struct(bo + "HHIIII")  # if id, drops, ts high, ts low, caplen, origlen
        self.idb = struct.Struct(bo + "HHI")  # linktype, reserved, snaplen
        self.shb = struct.Struct(bo + "IHHq")  # magic, major, minor, section length
        self.i64 = struct.Struct(bo + "q")
        self.dsb = struct.Struct(bo + "II")  # secrets type, secrets length


_STRUCTS = {"<": _Structs("<"), ">": _Structs(">")}


class _Interface(NamedTuple):
    linktype: int
    snaplen: int
    divisor: float  # timestamp units per second
    offset: int  # if_tsoffset seconds


class CaptureReader:
    """One pass over a capture: iterate it for packets; `secrets` fills in as the
    Decryption Secrets Blocks go by (so each is known before the packets after it).

    `source` is a path, a binary file object, or the capture's bytes.
    """

    def __init__(self, source: str | os.PathLike | BinaryIO | bytes, comments: bool = True) -> None:
        self._source = source
        self.comments = comments  # False: packets come without their comment (it is not parsed)
        self.secrets: list[str] = []
        self.format: str | None = None  # "pcap" or "pcapng", known once iteration starts

    def __iter__(self) -> Iterator[CapturedPacket]:
        return self._run(want_packets=True)

    def read_secrets(self) -> list[str]:
        """Walk the whole file for WireGuard key logs without building packets."""
        for _ in self._run(want_packets=False):
            pass
        return self.secrets

    def _run(self, want_packets: bool) -> Iterator[CapturedPacket]:
        self.secrets.clear()  # a second pass starts over rather than doubling up
        buf, closer = _open_buffer(self._source)
        try:
            head = bytes(buf[:4])
            if head == _SHB_MAGIC:
                self.format = "pcapng"
                yield from _read_pcapng(buf, self.secrets, want_packets, self.comments)
            elif head in _PCAP_MAGIC:
                self.format = "pcap"
                bo, units, record_size = _PCAP_MAGIC[head]
                linktype = _pcap_header(buf, bo)
                if want_packets:  # classic pcap has nowhere to keep secrets
                    yield from _read_pcap(buf, bo, units, record_size, linktype)
            elif len(buf) < 4:
                raise CaptureError(f"not a pcap or pcapng file: only {len(buf)} bytes")
            elif head[:2] == b"\x1f\x8b":
                raise CaptureError("not a pcap or pcapng file: gzip-compressed (gunzip it first)")
            else:
                raise CaptureError(f"not a pcap or pcapng file: starts with 0x{head.hex()}")
        finally:
            closer()


def read_capture(source: str | os.PathLike | BinaryIO | bytes, comments: bool = True) -> Iterator[CapturedPacket]:
    """Yield every packet record of a pcap or pcapng capture, in file order."""
    return iter(CaptureReader(source, comments))


def read_capture_secrets(source: str | os.PathLike | BinaryIO | bytes) -> list[str]:
    """The key log text of every WireGuard (WGKL) Decryption Secrets Block, in order."""
    return CaptureReader(source).read_secrets()


# --------------------------------------------------------------------------- input


def _open_buffer(source):
    """Return (buffer, close function): an mmap of a regular file, else bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), _noop
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return _map_file(f)
    return _map_file(source)


def _map_file(f):
    try:
        fileno = f.fileno()
        if os.fstat(fileno).st_size > 0:
            mapped = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ, offset=0)
            if hasattr(f, "tell") and f.tell() == 0:
                return mapped, mapped.close
            mapped.close()
    except (AttributeError, OSError, ValueError):  # no fd (BytesIO), pipe, empty file
        pass
    return f.read(), _noop


def _noop() -> None:
    pass


# --------------------------------------------------------------------------- classic pcap


def _pcap_header(buf, bo: str) -> int:
    """Check the 24-byte file header; return the link type."""
    if len(buf) < 24:
        raise CaptureError(f"truncated pcap file header: {len(buf)} of 24 bytes")
    major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(bo + "HHiIII", buf, 4)
    if major != 2:
        raise CaptureError(f"unsupported pcap version {major}")
    return network & 0xFFFF  # upper bits carry FCS length flags


def _read_pcap(buf, bo: str, units: float, record_size: int, linktype: int) -> Iterator[CapturedPacket]:
    end = len(buf)
    scale = 1.0 / units
    record = struct.Struct(bo + "IIII")
    unpack = record.unpack_from
    packet = CapturedPacket
    off = 24
    n = 0
    while off < end:
        if off + record_size > end:
            raise CaptureError(f"truncated packet record header at offset {off}")
        sec, frac, incl, _orig = unpack(buf, off)
        start = off + record_size
        off = start + incl
        if off > end:
            raise CaptureError(
                f"truncated packet record at offset {start - record_size}: "
                f"{incl} bytes announced, {end - start} left"
            )
        n += 1
        yield packet(n, sec + frac * scale, linktype, buf[start:off], None)


# --------------------------------------------------------------------------- pcapng


# Timestamps a clock can hold: 1970 to the end of 9999 (what datetime and TAI64N label can write).
_LAST_TIMESTAMP = 253402300800.0


def _read_pcapng(buf, secrets: list[str], want_packets: bool, comments: bool = True) -> Iterator[CapturedPacket]:
    # One loop, not a function per block kind: it is the per-packet path of every replay.
    end = len(buf)
    packet = CapturedPacket
    s = None
    interfaces: list[_Interface] = []
    n = 0
    last_ts = 0.0
    off = 0
    while off < end:
        if end - off < 12:
            raise CaptureError(f"truncated block at offset {off}: {end - off} bytes left")
        if buf[off : off + 4] == _SHB_MAGIC:
            s = _section_structs(buf, off, end)
            interfaces = []
        btype, blen = s.head.unpack_from(buf, off)
        if blen < 12 or blen & 3:
            raise CaptureError(f"bad block length {blen} at offset {off} (block type 0x{btype:08x})")
        nxt = off + blen
        if nxt > end:
            raise CaptureError(f"truncated block at offset {off}: {blen} bytes announced, {end - off} left")
        if s.u32.unpack_from(buf, nxt - 4)[0] != blen:
            raise CaptureError(f"block at offset {off}: trailing length does not match {blen}")
        body = off + 8
        body_end = nxt - 4
        if btype == _BLOCK_EPB or btype == _BLOCK_PB:
            what = "enhanced packet block" if btype == _BLOCK_EPB else "packet block"
            if body_end - body < 20:
                raise CaptureError(f"{what} at offset {off} too short")
            if btype == _BLOCK_EPB:
                ifid, hi, lo, caplen, _orig = s.epb.unpack_from(buf, body)
            else:  # the obsolete Packet Block: a 16-bit interface id and a drops count
                ifid, _drops, hi, lo, caplen, _orig = s.pb.unpack_from(buf, body)
            data_start = body + 20
            data_end = data_start + caplen
            if data_end > body_end:
                raise CaptureError(f"{what} at offset {off}: captured length {caplen} overruns the block")
            if ifid >= len(interfaces):
                raise CaptureError(f"packet block at offset {off} names interface {ifid}, section has {len(interfaces)}")
            n += 1
            if want_packets:
                iface = interfaces[ifid]
                opt_start = data_end + ((-caplen) & 3)
                comment = _comment(buf, opt_start, body_end, s, off) if comments and opt_start < body_end else None
                last_ts = ((hi << 32) | lo) / iface.divisor + iface.offset
                if not 0.0 <= last_ts < _LAST_TIMESTAMP:
                    raise CaptureError(f"packet block at offset {off}: timestamp {last_ts:.6g} s is not a date "
                                       "between 1970 and 9999 (if_tsresol/if_tsoffset)")
                yield packet(n, last_ts, iface.linktype, buf[data_start:data_end], comment)
        elif btype == _BLOCK_SPB:
            if body_end - body < 4:
                raise CaptureError(f"simple packet block at offset {off} too short")
            if not interfaces:
                raise CaptureError(f"simple packet block at offset {off} but the section has no interface")
            n += 1
            if want_packets:
                iface = interfaces[0]
                (orig,) = s.u32.unpack_from(buf, body)
                caplen = min(orig, body_end - body - 4)
                if iface.snaplen:
                    caplen = min(caplen, iface.snaplen)
                # An SPB has no timestamp: carry the previous packet's, keeping time monotonic.
                yield packet(n, last_ts, iface.linktype, buf[body + 4 : body + 4 + caplen], None)
        elif btype == _BLOCK_IDB:
            interfaces.append(_interface(buf, body, body_end, s, off))
        elif btype == _BLOCK_DSB:
            if body_end - body < 8:
                raise CaptureError(f"decryption secrets block at offset {off} too short")
            stype, slen = s.dsb.unpack_from(buf, body)
            if body + 8 + slen > body_end:
                raise CaptureError(f"decryption secrets block at offset {off}: secrets length {slen} overruns the block")
            if stype == SECRETS_WIREGUARD:
                secrets.append(bytes(buf[body + 8 : body + 8 + slen]).decode("utf-8", "replace"))
        elif btype in _NUMBERED_NON_PACKETS:
            n += 1
        # anything else (ISB, NRB, unknown) is skipped
        off = nxt


def _section_structs(buf, off: int, end: int) -> _Structs:
    if end - off < 28:
        raise CaptureError(f"truncated section header block at offset {off}")
    bo = _BOM.get(bytes(buf[off + 8 : off + 12]))
    if bo is None:
        raise CaptureError(f"section header block at offset {off} has a bad byte-order magic")
    s = _STRUCTS[bo]
    _magic, major, _minor, _length = s.shb.unpack_from(buf, off + 8)
    if major != 1:
        raise CaptureError(f"unsupported pcapng version {major} at offset {off}")
    return s


def _options(buf, pos: int, stop: int, s: _Structs, block_off: int) -> Iterator[tuple[int, int, int]]:
    """Yield (code, value start, value end) for each option in buf[pos:stop]."""
    while pos + 4 <= stop:
        code, length = s.opt.unpack_from(buf, pos)
        if code == 0:
            return
        start = pos + 4
        pos = start + length + ((-length) & 3)
        if start + length > stop:
            raise CaptureError(f"block at offset {block_off}: option {code} overruns the block")
        yield code, start, start + length


def _comment(buf, pos: int, stop: int, s: _Structs, block_off: int) -> str | None:
    if pos + 4 <= stop:  # the usual case, one comment and the end: read it without the option walk
        code, length = s.opt.unpack_from(buf, pos)
        nxt = pos + 4 + length + ((-length) & 3)
        if code == _OPT_COMMENT and pos + 4 + length <= stop and (nxt + 4 > stop or s.opt.unpack_from(buf, nxt)[0] == 0):
            return str(buf[pos + 4 : pos + 4 + length], "utf-8", "replace")
    comments = [
        bytes(buf[a:b]).decode("utf-8", "replace")
        for code, a, b in _options(buf, pos, stop, s, block_off)
        if code == _OPT_COMMENT
    ]
    return "\n".join(comments) if comments else None


def _interface(buf, body: int, body_end: int, s: _Structs, off: int) -> _Interface:
    if body_end - body < 8:
        raise CaptureError(f"interface description block at offset {off} too short")
    linktype, _reserved, snaplen = s.idb.unpack_from(buf, body)
    divisor = 1e6
    tsoffset = 0
    for code, a, b in _options(buf, body + 8, body_end, s, off):
        if code == _IF_TSRESOL and b - a >= 1:
            v = buf[a]
            exp = v & 0x7F
            divisor = float(2**exp) if v & 0x80 else float(10**exp)
        elif code == _IF_TSOFFSET and b - a >= 8:
            (tsoffset,) = s.i64.unpack_from(buf, a)
    return _Interface(linktype, snaplen, divisor, tsoffset)
