"""The CPU cost of tracing at a fixed offered rate, robust to a busy machine (root).

    python -m bench.trace_cost [--rate 150M] [--seconds 5] [--rounds 3]

Throughput on a shared 2-core machine moves with the other load; the CPU a node spends per
megabyte carried at a fixed rate moves much less. So: wgscope -> wgscope at iperf3 -b RATE,
alternately at the default level and with `--events FILE.wgtrace --events-level trace` on
both ends, and for each run the nodes' CPU time (utime + stime from /proc) per MB received.
The ratio default/trace of CPU per MB is the throughput ratio a CPU-bound pair would see.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .topology import WGSCOPE, tunnel
from .traffic import IPERF_PORT


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(tmp: Path, trace: bool, rate: str, seconds: float) -> dict:
    extra = {s: ("--events", str(tmp / f"{s}.wgtrace"), "--events-level", "trace") if trace else () for s in "ab"}
    with tunnel(WGSCOPE, WGSCOPE, tmp / ("trace" if trace else "default"), extra["a"], extra["b"]) as setup:
        server = setup.b.popen(["iperf3", "-s", "-1", "-B", setup.b_ip, "-p", str(IPERF_PORT)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            before = {s: _cpu_seconds(p) for s, p in setup.pids.items()}
            for _ in range(50):
                r = setup.a.run(f"iperf3 -c {setup.b_ip} -p {IPERF_PORT} -t {seconds} -b {rate} -J", check=False,
                                timeout=seconds + 30)
                report = json.loads(r.stdout or "{}")
                if "refused" not in str(report.get("error", "")):
                    break
            after = {s: _cpu_seconds(p) for s, p in setup.pids.items()}
        finally:
            server.kill()
            server.wait()
    mb = report["end"]["sum_received"]["bytes"] / 1e6
    cpu = sum(after[s] - before[s] for s in after)
    return {"trace": trace, "mb": round(mb, 1), "cpu_s": round(cpu, 2), "cpu_ms_per_mb": round(1000 * cpu / mb, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", default="150M")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.trace_cost: needs root", file=sys.stderr)
        return 2
    runs = []
    with tempfile.TemporaryDirectory(prefix="wgscope-tracecost-") as tmpdir:
        for rnd in range(a.rounds):
            for trace in (False, True):
                run = one_run(Path(tmpdir) / str(rnd), trace, a.rate, a.seconds)
                runs.append(run)
                print(f"  {'trace  ' if trace else 'default'} {run['mb']:8.1f} MB  {run['cpu_s']:6.2f} s CPU  "
                      f"{run['cpu_ms_per_mb']:.3f} ms/MB", flush=True)
    base = statistics.median(r["cpu_ms_per_mb"] for r in runs if not r["trace"])
    traced = statistics.median(r["cpu_ms_per_mb"] for r in runs if r["trace"])
    pairs = [round(d["cpu_ms_per_mb"] / t["cpu_ms_per_mb"], 3) for d, t in zip(runs[::2], runs[1::2])]
    print(f"CPU per MB, default / trace: {base / traced:.2f} (per round {pairs}): the throughput ratio "
          "of a CPU-bound pair")
    return 0


if __name__ == "__main__":
    sys.exit(main())
