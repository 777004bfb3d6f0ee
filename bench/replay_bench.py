"""Replay throughput: packets per second through `wgscope replay`'s engine, beside tshark
decrypting the same capture with the same keys.

    python -m bench.replay_bench [--packets 100000] [--json OUT.json]

The capture is made by the in-process lab (one session of pings and replies, a DSB and a
separate key log); both tools read the same file. Not run by the test suite (a tiny smoke
test only); `make bench` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def measure(packets: int = 100_000, workdir: str | None = None, tshark: bool = True) -> dict:
    from wgscope.replay import replay_capture
    from wgscope.replay.sample import make_bench_capture

    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="wgscope-replay-bench-")
    try:
        cap = os.path.join(workdir, "bench.pcapng")
        keylog = os.path.join(workdir, "bench.keys")
        t = time.perf_counter()
        written = make_bench_capture(cap, packets, keylog_path=keylog)
        generate = time.perf_counter() - t
        t = time.perf_counter()
        result = replay_capture(cap, keylogs=[keylog])
        elapsed = time.perf_counter() - t
        decrypted = sum(p.decrypted for p in result.parties)
        out = {
            "packets": written, "capture_bytes": os.path.getsize(cap), "generate_seconds": round(generate, 3),
            "wgscope": {"seconds": round(elapsed, 3), "packets_per_second": round(written / elapsed),
                        "decrypted": decrypted, "findings": len(result.findings)},
        }
        if tshark and shutil.which("tshark"):
            t = time.perf_counter()
            proc = subprocess.run(["tshark", "-r", cap, "-o", f"wg.keylog_file:{keylog}", "-T", "fields",
                                   "-e", "wg.type"], capture_output=True, text=True, timeout=1800)
            elapsed = time.perf_counter() - t
            lines = proc.stdout.count("\n")
            out["tshark"] = {"seconds": round(elapsed, 3), "packets_per_second": round(written / elapsed),
                             "lines": lines, "returncode": proc.returncode}
            out["ratio_wgscope_to_tshark"] = round(out["wgscope"]["packets_per_second"]
                                                   / max(1, out["tshark"]["packets_per_second"]), 3)
        else:
            out["tshark"] = None
        return out
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packets", type=int, default=100_000)
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    p.add_argument("--no-tshark", action="store_true")
    args = p.parse_args(argv)
    res = measure(args.packets, tshark=not args.no_tshark)
    w = res["wgscope"]
    print(f"replay: {res['packets']} packets in {w['seconds']} s = {w['packets_per_second']} packets/s "
          f"({w['decrypted']} decrypted)")
    if res.get("tshark"):
        ts = res["tshark"]
        print(f"tshark: {ts['seconds']} s = {ts['packets_per_second']} packets/s; "
              f"wgscope/tshark = {res['ratio_wgscope_to_tshark']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
