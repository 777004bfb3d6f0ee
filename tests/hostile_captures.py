"""Captures made to hurt a reader: every one must end in findings or one clear line and a non-zero
exit, never a traceback, a hang or an unbounded allocation (issue 13, item 5).

    python tests/hostile_captures.py DIR   # write them
    python tests/hostile_captures.py --run LIMIT_BYTES FILE...   # replay each under RLIMIT_AS

The replay side runs every file through `wgscope replay --json` in one process whose address
space is limited, and prints one JSON line per file: its exit code, stderr, and seconds.
"""

from __future__ import annotations

import json
import random
import struct
import sys
from pathlib import Path

EPOCH = 1_767_225_600.0


def _lab_capture(path: Path, forged=None) -> None:
    """A real two-node capture with its keys (DSB), optionally with forged datagrams sent at bravo."""
    from wgscope.replay.labcapture import LabCapture
    from wgscope.runtime.lab import Lab

    lab = Lab(seed=21)
    a, b = lab.alpha_bravo()
    with LabCapture(lab, path):
        for i in range(4):
            a.ping("10.0.0.2", seq=i)
            lab.run(0.5)
            if forged is not None:
                forged(lab, a, b, i)
        lab.run(1)


def _forge_every_type(lab, a, b, i) -> None:
    rng = random.Random(i)
    evil = ("203.0.113.9", 4444)
    session = next(iter(b.device.index_table), 0)  # a real receiver index of bravo's
    msgs = [
        struct.pack("<IIQ", 4, rng.getrandbits(32), rng.getrandbits(64)) + rng.randbytes(32),  # random index+counter
        struct.pack("<IIQ", 4, session, rng.getrandbits(64)) + rng.randbytes(48),  # real index, random counter
        struct.pack("<IIQ", 4, session, (1 << 64) - 1) + rng.randbytes(16),  # counter past the limit
        bytes([1, 0, 0, 0]) + rng.randbytes(144), bytes([2, 0, 0, 0]) + rng.randbytes(88),
        bytes([3, 0, 0, 0]) + rng.randbytes(60), bytes([1, 0, 0, 0]) + rng.randbytes(10),
        bytes([2, 0, 0, 0]) + rng.randbytes(200), bytes([4, 1, 0, 0]) + rng.randbytes(40), b"\x04",
        rng.randbytes(rng.randrange(1, 300)),
    ]
    for data in msgs:
        lab.network.send(evil, b.endpoint, data)
        lab.network.send(a.endpoint, b.endpoint, data)  # and as if from the real peer


def _pcapng_block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _shb() -> bytes:
    return _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def _far_future(good: bytes) -> bytes:
    """The capture again, each interface given if_tsoffset 2^62 s (its packets then date from ~10^11 AD)."""
    out, off = bytearray(), 0
    while off + 8 <= len(good):
        btype, blen = struct.unpack_from("<II", good, off)
        block = good[off:off + blen]
        if btype == 1:  # IDB: linktype, reserved, snaplen, then an if_tsoffset option and the end of options
            body = block[8:16] + struct.pack("<HHq", 14, 8, 1 << 62) + struct.pack("<HH", 0, 0)
            block = _pcapng_block(1, body)
        out += block
        off += blen
    return bytes(out)


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []

    def put(name: str, data: bytes) -> None:
        p = out / name
        p.write_bytes(data)
        made.append(p)

    base = out / "base.pcapng"
    _lab_capture(base)
    good = base.read_bytes()
    forged = out / "forged-every-type.pcapng"
    _lab_capture(forged, _forge_every_type)
    made += [base, forged]
    rng = random.Random(5)
    put("empty.pcap", b"")
    put("random-bytes.bin", rng.randbytes(4096))
    put("random-pcapng-magic.pcapng", b"\x0a\x0d\x0d\x0a" + rng.randbytes(2000))
    put("random-pcap-magic.pcap", b"\xd4\xc3\xb2\xa1" + rng.randbytes(2000))
    for cut in (10, 30, 100, len(good) // 3, len(good) // 2, len(good) - 7):
        put(f"truncated-{cut}.pcapng", good[:cut])
    for k in range(12):
        flipped = bytearray(good)
        for _ in range(1 + k):
            pos = rng.randrange(len(flipped))
            flipped[pos] ^= 1 << rng.randrange(8)
        put(f"flipped-{k}.pcapng", bytes(flipped))
    # absurd lengths: a block that claims 4 GB, a record that claims 4 GB, a DSB that claims 4 GB
    put("block-4g.pcapng", _shb() + struct.pack("<II", 6, 0xFFFFFFF0) + bytes(64))
    put("record-4g.pcap", struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
        + struct.pack("<IIII", 0, 0, 0xFFFFFFFF, 0xFFFFFFFF) + bytes(40))
    idb = _pcapng_block(1, struct.pack("<HHI", 101, 0, 0))
    put("dsb-4g.pcapng", _shb() + idb + _pcapng_block(0xA, struct.pack("<II", 0x57474B4C, 0xFFFFFF00) + bytes(16)))
    put("option-4g.pcapng", _shb() + _pcapng_block(1, struct.pack("<HHIHH", 101, 0, 0, 9, 0xFFFF) + bytes(8)))
    # absurd timestamps: if_tsresol 2^-127 ... 10^-127 and if_tsoffset far in the future
    for name, opts in (("tsoffset-far", struct.pack("<HHq", 14, 8, 1 << 62)),
                       ("tsresol-tiny", struct.pack("<HHB3x", 9, 1, 0xFF)),
                       ("tsresol-huge", struct.pack("<HHB3x", 9, 1, 0x00))):
        idb = _pcapng_block(1, struct.pack("<HHI", 101, 0, 0) + opts + struct.pack("<HH", 0, 0))
        epb = _pcapng_block(6, struct.pack("<IIIII", 0, 0xFFFFFFFF, 0xFFFFFFFF, 40, 40) + bytes([0x45]) + bytes(39))
        put(f"{name}.pcapng", _shb() + idb + epb)
    # real WireGuard frames with their keys, in an interface whose if_tsoffset puts them in the year ~10^11
    put("wireguard-far-future.pcapng", _far_future(good))
    # a packet naming an interface the section does not have, and a thousand empty sections
    put("no-interface.pcapng", _shb() + _pcapng_block(6, struct.pack("<IIIII", 7, 0, 0, 0, 0)))
    put("many-sections.pcapng", _shb() * 1000)
    return made


def run(limit: int, files: list[str]) -> None:
    import contextlib
    import io
    import resource
    import signal
    import time

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from wgscope.cli import main

    def timeout(*_):
        raise TimeoutError("replay took too long")

    signal.signal(signal.SIGALRM, timeout)
    import os
    import tempfile

    inner = os.path.join(tempfile.mkdtemp(prefix="hostile-"), "inner.pcap")  # --decrypted: written as replay goes
    for f, extra in [(f, extra) for f in files for extra in (["--json"], [], ["--decrypted", inner])]:
        out, err = io.StringIO(), io.StringIO()
        t = time.perf_counter()
        signal.alarm(60)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(["replay", f, *extra])
        except SystemExit as e:
            rc = e.code
        except BaseException as e:  # noqa: BLE001 - what the test must never see
            rc = f"{type(e).__name__}: {e}"
        finally:
            signal.alarm(0)
        seconds = round(time.perf_counter() - t, 3)
        print(json.dumps({"file": f, "args": extra, "rc": rc, "stderr": err.getvalue(), "seconds": seconds,
                          "json": out.getvalue().startswith("{")}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--run":
        run(int(sys.argv[2]), sys.argv[3:])
    else:
        print("\n".join(map(str, write_all(Path(sys.argv[1])))))
