"""`make bench`: wgscope against wireguard-go and the bare veth, in one run, on this machine.

    python -m bench.run [--seconds 10] [--reps 3] [--quick] [--skip handshakes,replay,memory,trace]

Throughput: iperf3 TCP, A -> B, `--seconds` each, `--reps` runs, median; ping RTT A -> B.
    veth                      the bare veth pair (the ceiling)
    wgscope -> wgscope        both ends wgscope up (default event level, info)
    wgscope, TUN offload      the same with --tun-offload (TSO reads cut in userspace) on both
    wgscope -> wireguard-go   wgscope sends, wireguard-go receives
    wireguard-go -> wgscope   and the other way round
    wireguard-go -> wireguard-go
    wgscope trace events      wgscope -> wgscope with --events FILE.wgtrace --events-level trace on both
The rows are measured round-robin (each round brings every pair up once and runs iperf3 once),
so each ratio is of runs taken alternately; the per-round ratios show the spread.
Then: handshake responses per second (bench/handshakes.py), replay packets/s beside tshark
(bench/replay_bench.py), memory per configured peer (bench/memory_per_peer.py, and the RSS of
the handshake responders). Prints a table; writes bench/results/<host>-<time>.json.
Every namespace and process is removed when a measurement ends, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import handshakes
from .topology import VETH, WGGO, WGSCOPE, tunnel
from .traffic import iperf, ping_rtt

RESULTS = Path(__file__).resolve().parent / "results"
PAIRS = [
    ("veth", VETH, VETH, ()),
    ("wgscope -> wgscope", WGSCOPE, WGSCOPE, ()),
    ("wgscope -> wgscope, TUN offload", WGSCOPE, WGSCOPE, ("offload",)),
    ("wgscope -> wireguard-go", WGSCOPE, WGGO, ()),
    ("wireguard-go -> wgscope", WGGO, WGSCOPE, ()),
    ("wireguard-go -> wireguard-go", WGGO, WGGO, ()),
    ("wgscope -> wgscope, trace events", WGSCOPE, WGSCOPE, ("trace",)),
]
BASELINE = "wireguard-go -> wireguard-go"
TRACE_ROW = "wgscope -> wgscope, trace events"
GOALS = {"wgscope -> wgscope": "(goal >= 1.5)", TRACE_ROW: "(goal >= 0.6, 0.8 hoped)"}


def _rss_kib(pid: int) -> int | None:
    return handshakes._rss_kib(pid)


def _machine() -> dict:
    def version(cmd: list[str]) -> str | None:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return None

    model = None
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), None)
    except OSError:
        pass
    return {"host": socket.gethostname(), "kernel": platform.release(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "cpu_model": model, "wireguard_go": version(["wireguard-go", "--version"]),
            "iperf3": version(["iperf3", "--version"]), "tshark": version(["tshark", "--version"])}


def _extra(flags: tuple, tmp: Path) -> tuple[tuple, tuple]:
    if "trace" in flags:  # every event of every level, on both ends, as a binary trace
        return (("--events", str(tmp / "trace-a.wgtrace"), "--events-level", "trace"),
                ("--events", str(tmp / "trace-b.wgtrace"), "--events-level", "trace"))
    if "offload" in flags:
        return ("--tun-offload",), ("--tun-offload",)
    return (), ()


def throughput(tmp: Path, seconds: float, reps: int, pairs) -> list[dict]:
    """Round-robin: each repetition brings every pair up once and runs one iperf3 on it, so the
    ratios between rows are measured alternately, under the same drift of the shared machine."""
    rows = {label: {"label": label, "a": a, "b": b, "flags": list(flags), "runs_bps": [], "rtts": [],
                    "rss_kib": None} for label, a, b, flags in pairs}
    for rep in range(reps):
        print(f"  round {rep + 1} of {reps}", flush=True)
        for label, impl_a, impl_b, flags in pairs:
            extra_a, extra_b = _extra(flags, tmp)
            row = rows[label]
            with tunnel(impl_a, impl_b, tmp / label.replace(" ", "_").replace(">", "").replace(",", ""),
                        extra_a, extra_b) as setup:
                rtt = ping_rtt(setup)
                if row["rss_kib"] is None:  # before the traffic, as the responders'
                    row["rss_kib"] = {side: _rss_kib(pid) for side, pid in setup.pids.items()}
                bps = iperf(setup, seconds)
            row["runs_bps"].append(bps)
            row["rtts"].append(rtt)
            if "trace" in flags:
                files = list(tmp.glob("trace-*.wgtrace"))
                row.setdefault("trace_event_bytes", []).append(sum(p.stat().st_size for p in files))
                row.setdefault("trace_events_lost", []).append(_events_lost(files))
                for p in files:
                    p.unlink()
            print(f"    {label:34} {bps / 1e6:8.1f} Mbit/s  rtt {rtt['avg_ms']} ms", flush=True)
    out = []
    for row in rows.values():
        row["median_bps"] = statistics.median(row["runs_bps"])
        avgs = [r["avg_ms"] for r in row.pop("rtts") if r.get("avg_ms") is not None]
        row["rtt"] = {"avg_ms": round(statistics.median(avgs), 3) if avgs else None, "runs_ms": avgs}
        out.append(row)
    return out


def _events_lost(files: list[Path]) -> int:
    """events_lost reported inside the trace files (0 when the writers kept up): only the generic
    events of each block are looked at, the per-packet records are not decoded."""
    from wgscope.trace.reader import read_blocks, read_header

    lost = 0
    for p in files:
        with open(p, "rb") as f:
            read_header(f)
            totals = [g[2]["total"] for _rows, side in read_blocks(f) for g in side["generic"]
                      if g[0] == "events_lost"]
        lost += totals[-1] if totals else 0
    return lost


def paired_ratios(rows: list[dict], label: str, base_label: str) -> dict | None:
    """The ratio of two rows per round (they ran one after the other), and of their medians."""
    row = next((r for r in rows if r["label"] == label), None)
    base = next((r for r in rows if r["label"] == base_label), None)
    if not row or not base:
        return None
    per_round = [round(x / y, 3) for x, y in zip(row["runs_bps"], base["runs_bps"]) if y]
    return {"of": label, "to": base_label, "median_ratio": round(row["median_bps"] / base["median_bps"], 3),
            "per_round": per_round}


def handshakes_alternating(tmp: Path, reps: int, rounds: int, baseline: str | None = None) -> dict:
    """wgscope and wireguard-go as responders, one after the other, `reps` times: the median run
    of each is reported (with all runs), and the ratio per round shows the spread. `baseline`: a
    wgscope executable of another build, run in each round too (bench.handshakes --baseline). The
    order is reversed every other round."""
    impls = (WGSCOPE, WGGO) + ((handshakes.BASELINE,) if baseline else ())
    runs: dict[str, list[dict]] = {impl: [] for impl in impls}
    for rep in range(reps):
        # The order turns round every other round, so no implementation always goes first: in one run
        # the first of a round read ~20% below the last, in the next not (bench/README.md section 15).
        for impl in impls if rep % 2 == 0 else impls[::-1]:
            exe = baseline if impl == handshakes.BASELINE else None
            h = handshakes.measure(WGSCOPE if exe else impl, tmp / f"hs-{impl.split()[0]}{'-b' if exe else ''}-{rep}",
                                   rounds=rounds, executable=exe)
            runs[impl].append(h)
            print(f"  round {rep + 1}: {impl}: {h['handshakes_per_second']:.0f}/s, {h['responses']} answers, "
                  f"{h['cookie_replies']} cookie replies, CPU {h['cpu_us_per_handshake']} us"
                  + (f" (loop thread {h['loop_cpu_us_per_handshake']})" if h.get("loop_cpu_us_per_handshake") else "")
                  + f", kernel {h.get('kernel_udp')}", flush=True)
    out: dict = {"peers": handshakes.PEERS}
    for impl, hs in runs.items():
        rates = [h["handshakes_per_second"] for h in hs]
        median = sorted(hs, key=lambda h: h["handshakes_per_second"])[len(hs) // 2]
        out[impl] = {**median, "runs_per_second": [round(r) for r in rates]}
        if hs and hs[0].get("loop_cpu_us_per_handshake") is not None:
            out[impl]["loop_cpu_us_per_handshake"] = statistics.median(
                h["loop_cpu_us_per_handshake"] or float("inf") for h in hs)

    def per_round(x: str, y: str) -> list:
        return [round(a["handshakes_per_second"] / b["handshakes_per_second"], 3) for a, b in zip(runs[x], runs[y])]
    out["per_round"] = per_round(WGSCOPE, WGGO)
    if baseline:
        out["baseline_per_round"] = per_round(handshakes.BASELINE, WGGO)
        out["per_round_to_baseline"] = per_round(WGSCOPE, handshakes.BASELINE)
    cpu = {impl: statistics.median(h["cpu_us_per_handshake"] or float("inf") for h in hs) for impl, hs in runs.items()}
    out["cpu_us_per_handshake"] = cpu
    out["cpu_ratio_wggo_to_wgscope"] = round(cpu[WGGO] / cpu[WGSCOPE], 3)
    return out


def table(result: dict) -> str:
    rows = result["throughput"]
    base = next((r["median_bps"] for r in rows if r["label"] == BASELINE), None)
    base_rtt = next((r["rtt"]["avg_ms"] for r in rows if r["label"] == BASELINE), None)
    lines = [f"{'TCP, iperf3 ' + str(result['settings']['seconds']) + ' s x ' + str(result['settings']['reps']):34}"
             f"{'median Mbit/s':>14}{'x wg-go':>9}{'ping ms':>9}{'x wg-go':>9}",
             "-" * 75]
    for r in rows:
        mbps = r["median_bps"] / 1e6
        ratio = f"{r['median_bps'] / base:.2f}" if base else "-"
        avg = r["rtt"]["avg_ms"]
        rratio = f"{avg / base_rtt:.2f}" if base_rtt and avg else "-"
        lines.append(f"{r['label']:34}{mbps:14.1f}{ratio:>9}{avg if avg is not None else '-':>9}{rratio:>9}")
    hs = result.get("handshakes")
    if hs:
        lines.append("")
        lines.append(f"{'handshakes answered per second':34}{'per s':>14}{'x wg-go':>9}   (offered, {hs.get('peers')} peers)")
        lines.append("-" * 75)
        base_hs = hs.get(WGGO, {}).get("handshakes_per_second")
        for impl in (WGSCOPE, WGGO):
            h = hs.get(impl)
            if h:
                ratio = f"{h['handshakes_per_second'] / base_hs:.2f}" if base_hs else "-"
                lines.append(f"{impl:34}{h['handshakes_per_second']:14.0f}{ratio:>9}   ({h['offered_per_second']:.0f}/s, "
                             f"{h['cookie_replies']} cookie replies)")
    rp = result.get("replay")
    if rp:
        lines.append("")
        lines.append(f"{'replay, packets per second':34}{'per s':>14}{'x tshark':>9}   ({rp['packets']} packets)")
        lines.append("-" * 75)
        ts = rp.get("tshark") or {}
        ratio = rp.get("ratio_wgscope_to_tshark")
        lines.append(f"{'wgscope replay':34}{rp['wgscope']['packets_per_second']:14}{ratio if ratio else '-':>9}")
        if ts:
            lines.append(f"{'tshark (decrypting)':34}{ts['packets_per_second']:14}{1.0:>9.2f}")
    if result.get("replay_iperf"):
        from .replay_bench import iperf_line

        lines.append(iperf_line(result["replay_iperf"]))
    mem = result.get("memory")
    if mem:
        lines.append("")
        lines.append("memory per configured peer")
        lines.append("-" * 75)
        m = mem.get("tracemalloc") or {}
        if m:
            lines.append(f"{'wgscope core, configured (heap)':34}{m['configured_bytes_per_peer']:14} bytes")
            lines.append(f"{'wgscope core, + a session (heap)':34}{m['session_bytes_per_peer']:14} bytes")
        for impl in (WGSCOPE, WGGO):
            v = mem.get("rss_bytes_per_peer", {}).get(impl)
            if v is not None:
                lines.append(f"{impl + ' process RSS':34}{v:14.0f} bytes")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="wgscope throughput and cost against wireguard-go")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="3 s x 1 run, small handshake and replay runs")
    p.add_argument("--skip", default="", help="comma list of: throughput, trace, offload, handshakes, replay, memory")
    p.add_argument("--only", help="comma list of throughput row labels to run (substring match)")
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON result")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces, TUN devices)", file=sys.stderr)
        return 2
    missing = [t for t in ("wireguard-go", "wg", "iperf3", "ping", "ip") if shutil.which(t) is None]
    if missing:
        print(f"bench: missing tools: {', '.join(missing)} (make bench installs them)", file=sys.stderr)
        return 2
    skip = set(filter(None, a.skip.split(",")))
    seconds, reps = (3, 1) if a.quick else (a.seconds, a.reps)
    pairs = [pr for pr in PAIRS if not skip & set(pr[3])]
    if a.only:
        pairs = [pr for pr in pairs if any(o in pr[0] for o in a.only.split(","))]
    started = time.time()
    result: dict = {"machine": _machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "settings": {"seconds": seconds, "reps": reps, "mtu": 1420}}
    with tempfile.TemporaryDirectory(prefix="wgscope-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if "throughput" not in skip:
            print("throughput (iperf3 TCP) and ping RTT:", flush=True)
            result["throughput"] = throughput(tmp, seconds, reps, pairs)
        else:
            result["throughput"] = []
        if "handshakes" not in skip:
            print("handshakes per second (responder):", flush=True)
            result["handshakes"] = handshakes_alternating(tmp, reps, rounds=10 if a.quick else handshakes.ROUNDS)
        if "replay" not in skip:
            print("replay vs tshark:", flush=True)
            from . import replay_bench

            result["replay"] = replay_bench.measure(packets=20_000 if a.quick else 100_000)
            result["replay_iperf"] = replay_bench.measure_iperf(3.0 if a.quick else 8.0, str(tmp / "replay-iperf"))
            print("  " + replay_bench.iperf_line(result["replay_iperf"]), flush=True)
        if "memory" not in skip:
            print("memory per peer:", flush=True)
            from . import memory_per_peer

            mem: dict = {"tracemalloc": memory_per_peer.measure(peers=1000 if a.quick else 5000)}
            rss = {}
            hs = result.get("handshakes") or {}
            for impl in (WGSCOPE, WGGO):
                one = next((r["rss_kib"].get("b") for r in result["throughput"] if r["b"] == impl and r["a"] == impl
                            and not r.get("flags")), None)
                many = (hs.get(impl) or {}).get("responder_rss_kib")
                if one and many:
                    rss[impl] = (many - one) * 1024 / (handshakes.PEERS - 1)
            mem["rss_bytes_per_peer"] = rss
            result["memory"] = mem
    result["seconds"] = round(time.time() - started, 1)
    rows = result["throughput"]
    result["ratios"] = [r for r in (paired_ratios(rows, "wgscope -> wgscope", BASELINE),
                                    paired_ratios(rows, TRACE_ROW, "wgscope -> wgscope")) if r]
    if result["ratios"] and result["ratios"][0]["to"] == BASELINE:
        result["ratio_wgscope_to_wireguard_go"] = result["ratios"][0]["median_ratio"]
    print()
    print(table(result))
    print()
    for r in result["ratios"]:
        goal = GOALS.get(r["of"], "")
        print(f"TCP {r['of']} / {r['to']}: {r['median_ratio']:.2f} (per round {r['per_round']}) {goal}")
    hs = result.get("handshakes") or {}
    if hs.get(WGSCOPE) and hs.get(WGGO):
        print(f"handshakes/s wgscope / wireguard-go: "
              f"{hs[WGSCOPE]['handshakes_per_second'] / hs[WGGO]['handshakes_per_second']:.2f} "
              f"(per round {hs['per_round']}) (goal >= 1.0)")
        print(f"responder CPU per handshake: wgscope {hs['cpu_us_per_handshake'][WGSCOPE]:.0f} us, wireguard-go "
              f"{hs['cpu_us_per_handshake'][WGGO]:.0f} us (wireguard-go / wgscope {hs['cpu_ratio_wggo_to_wgscope']:.2f})")
    rtt = next((r["rtt"]["avg_ms"] for r in rows if r["label"] == "wgscope -> wgscope"), None)
    base_rtt = next((r["rtt"]["avg_ms"] for r in rows if r["label"] == BASELINE), None)
    if rtt and base_rtt:
        print(f"ping RTT wgscope / wireguard-go: {rtt / base_rtt:.2f} (goal <= 1.5)")
    trace = next((r for r in rows if r["label"] == TRACE_ROW), None)
    if trace:
        print(f"trace files per run: {[round(b / 1e6) for b in trace['trace_event_bytes']]} MB, "
              f"events lost {trace['trace_events_lost']}")
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"{socket.gethostname()}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {path} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
