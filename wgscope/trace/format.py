"""The binary trace file (`--events FILE.wgtrace`): fixed-layout records, decoded when read.

    file    = MAGIC, u32 header length, header JSON, block*
    block   = BLOCK_MAGIC, u32 record count, u32 side length, side JSON, count x RECORD
    RECORD  = time f64 | code u32 | peer u32 | a u64 | b u64 | c u64        (40 bytes, little-endian)

The header says which node wrote the file. Each block's side JSON carries what its records
need and the file has not said yet:

    {"wall_offset": float,               wall time = time + wall_offset (per-packet records)
     "codes": {"7": "transport_sent"},   record codes first used in this block
     "peers": {"3": "base64 key"},       peer numbers first used in this block (0 is no peer)
     "generic": [[name, wall, fields], ...]}   the Events of code 0 records, by their `a`

Per-packet records (events.PACKED) keep their fields as the integers a, b, c; every other
event is a code 0 record whose `a` indexes the block's generic list, so the records of a
block stay in emission order. A writer that loses a block keeps its codes and peers for the
next block, so what follows stays readable; the loss itself is an `events_lost` event.
"""

from __future__ import annotations

import json
import struct

import numpy as np

MAGIC = b"WGSTRACE\x01\x00\x00\x00"
BLOCK_MAGIC = b"WGB1"
BLOCK_HEAD = struct.Struct("<4sII")
U32 = struct.Struct("<I")
RECORD = np.dtype([("time", "<f8"), ("code", "<u4"), ("peer", "<u4"), ("a", "<u8"), ("b", "<u8"), ("c", "<u8")])
GENERIC_CODE = 0
NO_PEER = 0
SUFFIX = ".wgtrace"
MAX_SIDE = 64 << 20  # a side JSON larger than this is not one we wrote (memory bound for readers)
MAX_RECORDS = 1 << 22

__all__ = ["MAGIC", "BLOCK_MAGIC", "BLOCK_HEAD", "RECORD", "GENERIC_CODE", "NO_PEER", "SUFFIX", "file_header",
           "is_trace_file", "TraceFormatError"]


class TraceFormatError(ValueError):
    """The file is not a wgscope trace, or is damaged beyond its last whole block."""


def file_header(meta: dict) -> bytes:
    body = json.dumps(meta, separators=(",", ":")).encode()
    return MAGIC + U32.pack(len(body)) + body


def is_trace_file(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False
