"""Ping RTT through the tunnel, wgscope <-> wgscope against wireguard-go <-> wireguard-go, alternately.

    python -m bench.rtt [--rounds 5] [--count 100] [--interval 0.02] [--baseline EXE]

Each round brings up one tunnel of each kind in turn (bench/topology.py) and sends `count`
pings A -> B through it, so every ratio is of runs taken one after the other under the same
load of the shared machine. Besides the RTT it reads each node process's CPU time (the
scheduler's run time of all its threads, /proc/PID/task/*/schedstat, in ns) before and after
the pings: CPU per ping per node, which moves less with the other load than the RTT does. Prints the per-round ratios of the mean RTT
(what ping and `make bench` report) and of the median ping (less moved by the other load's stalls).
`--baseline EXE` adds, in each round, a tunnel whose two nodes run another build's `wgscope`
executable (e.g. main's, to measure a change before and after in the same rounds).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

from .topology import WGGO, WGSCOPE, tunnel
from .traffic import ping_rtt

import livenet  # noqa: E402 - tests/ is on the path once bench.topology is imported

BASELINE = "wgscope (baseline)"

def cpu_seconds(pid: int) -> float:
    """Run time of all the process's threads: schedstat's first field, ns (utime+stime in
    /proc/PID/stat count 10 ms ticks, too coarse for the ~0.5 ms of CPU a ping costs a node)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            pass  # a thread that ended between the listing and the read
    return total / 1e9


@contextlib.contextmanager
def _executable(path: str | None):
    """Nodes started inside run `path` instead of this tree's wgscope."""
    saved = livenet.WGSCOPE
    livenet.WGSCOPE = path or saved
    try:
        yield
    finally:
        livenet.WGSCOPE = saved


def one(impl: str, tmp: Path, count: int, interval: float, baseline: str | None = None) -> dict:
    kind = WGSCOPE if impl == BASELINE else impl
    with _executable(baseline if impl == BASELINE else None), tunnel(kind, kind, tmp) as setup:
        before = {side: cpu_seconds(pid) for side, pid in setup.pids.items()}
        rtt = ping_rtt(setup, count, interval)
        cpu = {side: round((cpu_seconds(pid) - before[side]) / count * 1e6) for side, pid in setup.pids.items()}
    return {"rtt_ms": rtt["avg_ms"], "median_ms": rtt["median_ms"], "min_ms": rtt["min_ms"], "cpu_us_per_ping": cpu}


def alternating(tmp: Path, rounds: int, count: int, interval: float, baseline: str | None = None) -> dict:
    impls = (WGSCOPE, WGGO) + ((BASELINE,) if baseline else ())
    runs: dict[str, list] = {impl: [] for impl in impls}
    for r in range(rounds):
        for impl in impls:
            res = one(impl, tmp / f"{impl.split()[0]}-{len(runs[impl])}-{r}", count, interval, baseline)
            runs[impl].append(res)
            print(f"  round {r + 1}: {impl:18} rtt {res['rtt_ms']} ms (median {res['median_ms']}, min {res['min_ms']}), "
                  f"CPU/ping us {res['cpu_us_per_ping']}", flush=True)
    ratios = [round(s["rtt_ms"] / g["rtt_ms"], 2) for s, g in zip(runs[WGSCOPE], runs[WGGO])
              if s["rtt_ms"] and g["rtt_ms"]]
    median_ratios = [round(s["median_ms"] / g["median_ms"], 2) for s, g in zip(runs[WGSCOPE], runs[WGGO])
                     if s["median_ms"] and g["median_ms"]]
    result = {"runs": runs, "ratios": ratios, "ratio": statistics.median(ratios) if ratios else None,
            "median_ratios": median_ratios,
            "median_ratio": statistics.median(median_ratios) if median_ratios else None,
            "wgscope_ms": statistics.median(s["rtt_ms"] for s in runs[WGSCOPE] if s["rtt_ms"]),
            "wggo_ms": statistics.median(g["rtt_ms"] for g in runs[WGGO] if g["rtt_ms"])}
    if baseline:
        result["baseline_ratios"] = [round(s["rtt_ms"] / g["rtt_ms"], 2) for s, g in zip(runs[BASELINE], runs[WGGO])
                                     if s["rtt_ms"] and g["rtt_ms"]]
        result["baseline_ratio"] = statistics.median(result["baseline_ratios"]) if result["baseline_ratios"] else None
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.02, help="seconds between pings")
    p.add_argument("--baseline", metavar="EXE", help="also, in each round, a tunnel of this wgscope executable")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.rtt: needs root (network namespaces)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wgscope-rtt-") as tmpdir:
        result = alternating(Path(tmpdir), a.rounds, a.count, a.interval, a.baseline)
    print(f"ping RTT (mean) wgscope / wireguard-go: {result['ratio']} (per round {result['ratios']}) (goal <= 1.5); "
          f"median of rounds wgscope {result['wgscope_ms']} ms, wireguard-go {result['wggo_ms']} ms")
    print(f"ping RTT (median ping) wgscope / wireguard-go: {result['median_ratio']} (per round {result['median_ratios']})")
    if a.baseline:
        print(f"ping RTT (mean) baseline {a.baseline} / wireguard-go: {result['baseline_ratio']} "
              f"(per round {result['baseline_ratios']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
