"""Replay throughput, beside tshark reading the same capture.

    python -m bench.replay_bench [--packets 100000] [--json OUT.json]      lab capture (no root)
    python -m bench.replay_bench --iperf SECONDS [--json OUT.json]         live capture (root)

`measure`: the in-process lab makes a capture (one session of pings and replies, a DSB and a
separate key log); `replay_capture` (observer and both sides re-executed) against tshark
decrypting it with the key log.

`measure_iperf`: the issue-13 figure. Two `wgscope up` nodes in namespaces (bench/topology.py)
carry an iperf3 TCP run while node A writes its own `--capture` (self-decrypting, DSB); then
`wgscope replay CAPTURE --decrypted OUT` and `tshark -r CAPTURE -Y tcp` run on the same file, each
as a process; wall time and the CPU time of the process (the machine is shared) are reported.
`make bench` runs both; the test suite only a tiny smoke test of `measure`.
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


def _timed(argv: list[str]) -> dict:
    """Run a command to completion; its wall time and its own CPU time (user + system)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=1800)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "returncode": proc.returncode,
            "stderr": proc.stderr[-300:]}


def make_iperf_capture(workdir: str, seconds: float) -> tuple[str, float]:
    """A wgscope <-> wgscope iperf3 TCP run; node A's own capture (root: namespaces, TUN)."""
    from pathlib import Path

    from .topology import WGSCOPE, tunnel
    from .traffic import iperf

    cap = os.path.join(workdir, "iperf.pcapng")
    with tunnel(WGSCOPE, WGSCOPE, Path(workdir) / "nodes", extra_a=("--capture", cap)) as setup:
        bits = iperf(setup, seconds)
        time.sleep(1.0)  # the capture writer's last flush
    return cap, bits


def measure_iperf(seconds: float = 8.0, workdir: str | None = None) -> dict:
    from wgscope.pcap import read_capture

    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="wgscope-replay-iperf-")
    try:
        cap, bits = make_iperf_capture(workdir, seconds)
        packets = sum(1 for _ in read_capture(cap, comments=False))
        wgscope = os.path.join(os.path.dirname(sys.executable), "wgscope")
        replay = _timed([wgscope, "replay", cap, "--decrypted", os.path.join(workdir, "inner.pcap")])
        out = {"packets": packets, "capture_bytes": os.path.getsize(cap), "iperf_bits_per_second": round(bits),
               "wgscope_replay_decrypted": replay, "tshark_tcp": None}
        if shutil.which("tshark"):
            shark = _timed(["tshark", "-r", cap, "-Y", "tcp"])
            out["tshark_tcp"] = shark
            out["speed_x_tshark_wall"] = round(shark["wall_seconds"] / replay["wall_seconds"], 3)
            out["speed_x_tshark_cpu"] = round(shark["cpu_seconds"] / max(replay["cpu_seconds"], 1e-9), 3)
        return out
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packets", type=int, default=100_000)
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    p.add_argument("--no-tshark", action="store_true")
    p.add_argument("--iperf", type=float, metavar="SECONDS", help="measure on a live wgscope<->wgscope iperf3 "
                   "capture instead (root)")
    args = p.parse_args(argv)
    if args.iperf:
        res = measure_iperf(args.iperf)
        print(iperf_line(res))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
        return 0
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


def iperf_line(res: dict) -> str:
    r, t = res["wgscope_replay_decrypted"], res.get("tshark_tcp")
    line = (f"replay --decrypted on a {res['packets']}-packet iperf3 capture: {r['wall_seconds']} s wall, "
            f"{r['cpu_seconds']} s CPU")
    if t:
        line += (f"; tshark -Y tcp {t['wall_seconds']} s wall, {t['cpu_seconds']} s CPU; "
                 f"{res['speed_x_tshark_wall']} x tshark (wall), {res['speed_x_tshark_cpu']} x (CPU)")
    return line


if __name__ == "__main__":
    sys.exit(main())
