"""Ping RTT through the tunnel, wgscope <-> wgscope against wireguard-go <-> wireguard-go, alternately.

    python -m bench.rtt [--rounds 5] [--count 100] [--interval 0.02]

Each round brings up one tunnel of each kind in turn (bench/topology.py) and sends `count`
pings A -> B through it, so every ratio is of runs taken one after the other under the same
load of the shared machine. Besides the RTT it reads each node process's CPU time (utime +
stime, /proc/PID/stat, all threads) before and after the pings: CPU per ping per node, which
moves less with the other load than the RTT does. Prints the per-round ratios of the mean RTT
(what ping and `make bench` report) and of the median ping (less moved by the other load's stalls).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from .topology import WGGO, WGSCOPE, tunnel
from .traffic import ping_rtt

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (proc(5) fields 14, 15)


def one(impl: str, tmp: Path, count: int, interval: float) -> dict:
    with tunnel(impl, impl, tmp) as setup:
        before = {side: cpu_seconds(pid) for side, pid in setup.pids.items()}
        rtt = ping_rtt(setup, count, interval)
        cpu = {side: round((cpu_seconds(pid) - before[side]) / count * 1e6) for side, pid in setup.pids.items()}
    return {"rtt_ms": rtt["avg_ms"], "median_ms": rtt["median_ms"], "min_ms": rtt["min_ms"], "cpu_us_per_ping": cpu}


def alternating(tmp: Path, rounds: int, count: int, interval: float) -> dict:
    runs: dict[str, list] = {WGSCOPE: [], WGGO: []}
    for r in range(rounds):
        for impl in (WGSCOPE, WGGO):
            res = one(impl, tmp / f"{impl}-{r}", count, interval)
            runs[impl].append(res)
            print(f"  round {r + 1}: {impl:13} rtt {res['rtt_ms']} ms (median {res['median_ms']}, min {res['min_ms']}), "
                  f"CPU/ping us {res['cpu_us_per_ping']}", flush=True)
    ratios = [round(s["rtt_ms"] / g["rtt_ms"], 2) for s, g in zip(runs[WGSCOPE], runs[WGGO])
              if s["rtt_ms"] and g["rtt_ms"]]
    median_ratios = [round(s["median_ms"] / g["median_ms"], 2) for s, g in zip(runs[WGSCOPE], runs[WGGO])
                     if s["median_ms"] and g["median_ms"]]
    return {"runs": runs, "ratios": ratios, "ratio": statistics.median(ratios) if ratios else None,
            "median_ratios": median_ratios,
            "median_ratio": statistics.median(median_ratios) if median_ratios else None,
            "wgscope_ms": statistics.median(s["rtt_ms"] for s in runs[WGSCOPE] if s["rtt_ms"]),
            "wggo_ms": statistics.median(g["rtt_ms"] for g in runs[WGGO] if g["rtt_ms"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.02, help="seconds between pings")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.rtt: needs root (network namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wgscope-rtt-") as tmpdir:
        result = alternating(Path(tmpdir), a.rounds, a.count, a.interval)
    print(f"ping RTT (mean) wgscope / wireguard-go: {result['ratio']} (per round {result['ratios']}) (goal <= 1.5); "
          f"median of rounds wgscope {result['wgscope_ms']} ms, wireguard-go {result['wggo_ms']} ms")
    print(f"ping RTT (median ping) wgscope / wireguard-go: {result['median_ratio']} (per round {result['median_ratios']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
