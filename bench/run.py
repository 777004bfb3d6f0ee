"""`make bench`: wgscope against wireguard-go and the bare veth, in one run, on this machine.

    python -m bench.run [--seconds 10] [--reps 3] [--quick] [--skip handshakes,replay,memory,trace]

Throughput: iperf3 TCP, A -> B, `--seconds` each, `--reps` runs, median; ping RTT A -> B.
    veth                      the bare veth pair (the ceiling)
    wgscope -> wgscope        both ends wgscope up (default event level, info)
    wgscope, TUN offload      the same with --tun-offload (TSO reads cut in userspace) on both
    wgscope -> wireguard-go   wgscope sends, wireguard-go receives
    wireguard-go -> wgscope   and the other way round
    wireguard-go -> wireguard-go
    wgscope trace events      wgscope -> wgscope with --events FILE --events-level trace on both
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import handshakes
from .topology import VETH, WGGO, WGSCOPE, tunnel
from .traffic import iperf_median, ping_rtt

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


def throughput(tmp: Path, seconds: float, reps: int, pairs) -> list[dict]:
    rows = []
    for label, impl_a, impl_b, flags in pairs:
        extra_a = extra_b = ()
        if "trace" in flags:
            extra_a = ("--events", str(tmp / "trace-a.jsonl"), "--events-format", "json", "--events-level", "trace")
            extra_b = ("--events", str(tmp / "trace-b.jsonl"), "--events-format", "json", "--events-level", "trace")
        if "offload" in flags:
            extra_a = extra_b = ("--tun-offload",)
        print(f"  {label} ...", flush=True)
        with tunnel(impl_a, impl_b, tmp / label.replace(" ", "_").replace(">", "").replace(",", ""),
                    extra_a, extra_b) as setup:
            rtt = ping_rtt(setup)
            rss = {side: _rss_kib(pid) for side, pid in setup.pids.items()}  # before the traffic, as the responders'
            tp = iperf_median(setup, seconds, reps)
        row = {"label": label, "a": impl_a, "b": impl_b, "flags": list(flags), **tp, "rtt": rtt, "rss_kib": rss}
        if "trace" in flags:
            row["trace_event_bytes"] = sum(p.stat().st_size for p in tmp.glob("trace-*.jsonl"))
            for p in tmp.glob("trace-*.jsonl"):
                p.unlink()
        rows.append(row)
        print(f"    {tp['median_bps'] / 1e6:8.1f} Mbit/s  rtt {rtt['avg_ms']} ms", flush=True)
    return rows


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
            result["handshakes"] = {"peers": handshakes.PEERS}
            for impl in (WGSCOPE, WGGO):
                h = handshakes.measure(impl, tmp / f"hs-{impl}", rounds=10 if a.quick else handshakes.ROUNDS)
                result["handshakes"][impl] = h
                print(f"  {impl}: {h['handshakes_per_second']:.0f}/s", flush=True)
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
    base = next((r["median_bps"] for r in rows if r["label"] == BASELINE), None)
    ours = next((r["median_bps"] for r in rows if r["label"] == "wgscope -> wgscope"), None)
    if base and ours:
        result["ratio_wgscope_to_wireguard_go"] = round(ours / base, 3)
    print()
    print(table(result))
    if "ratio_wgscope_to_wireguard_go" in result:
        print(f"\nTCP throughput wgscope/wireguard-go: {result['ratio_wgscope_to_wireguard_go']:.2f} (goal >= 1.0)")
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"{socket.gethostname()}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {path} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
