"""Replay throughput, beside tshark reading the same capture.

    python -m bench.replay_bench [--packets 100000] [--json OUT.json]      lab capture (no root)
    python -m bench.replay_bench --iperf SECONDS [--rounds 3] [--json OUT.json]   live capture (root)
    python -m bench.replay_bench --capture FILE [--rounds 3]              the same on a capture at hand
    ... [--before DIR]          also time the wgscope package in DIR (another build) in each round
    python -m bench.replay_bench --capture FILE --instructions [--packets 40000] [--before DIR]
                                instructions (callgrind) instead of time, on the first packets

`measure`: the in-process lab makes a capture (one session of pings and replies, a DSB and a
separate key log); `replay_capture` (observer and both sides re-executed) against tshark
decrypting it with the key log.

`measure_iperf`: the issue-13 figure. Two `wgscope up` nodes in namespaces (bench/topology.py)
carry an iperf3 TCP run while node A writes its own `--capture` (self-decrypting, DSB); then
`wgscope replay CAPTURE --decrypted OUT` and `tshark -r CAPTURE -Y tcp` run on the same file, each
as a process, alternately, `rounds` times; wall time and the CPU time of the process (the machine
is shared: CPU time is the steadier figure) of each run, each round's ratio and the medians.
Both packages are byte-compiled first, as an installed wgscope is (compile_package).
`make bench` runs both; the test suite only a tiny smoke test of `measure`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
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


def _timed(argv: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    """Run a command to completion; its wall time and its own CPU time (user + system)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=1800, env=env,
                          cwd=cwd)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "returncode": proc.returncode,
            "stderr": proc.stderr[-300:]}


def compile_package(package_dir: str) -> None:
    """Byte-compile a wgscope package in place (its __pycache__), as `pip install` does for an
    installed package. A checkout installed editable, run with PYTHONDONTWRITEBYTECODE=1 (this
    machine's sessions set it), otherwise compiles its ~60 modules from source on every start:
    ~0.15 s of CPU that an installed wgscope never spends. Stale files are recompiled by Python."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", package_dir], check=True,
                   stdout=subprocess.DEVNULL)


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


def measure_iperf(seconds: float = 8.0, workdir: str | None = None, rounds: int = 3,
                  capture: str | None = None, before: str | None = None, compiled: bool = True) -> dict:
    """`rounds` alternate runs of replay --decrypted and tshark -Y tcp on one capture (made here, or
    `capture`); the ratio of each round (tshark's time / replay's) shows the spread on a shared machine.
    `before`: a directory holding another build's `wgscope` package (e.g. `git archive main wgscope`),
    timed in each round too, first (its replay under this interpreter, PYTHONPATH=before).
    `compiled`: both packages byte-compiled first (compile_package), as installed."""
    import wgscope as package
    from wgscope.pcap import read_capture

    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="wgscope-replay-iperf-")
    try:
        bits = None
        if capture is None:
            capture, bits = make_iperf_capture(workdir, seconds)
        packets = sum(1 for _ in read_capture(capture, comments=False))
        wgscope = os.path.join(os.path.dirname(sys.executable), "wgscope")
        capture = os.path.abspath(capture)
        replay_argv = [wgscope, "replay", capture, "--decrypted", os.path.join(workdir, "inner.pcap")]
        out = {"packets": packets, "capture_bytes": os.path.getsize(capture), "rounds": [],
               "iperf_bits_per_second": round(bits) if bits is not None else None}
        tshark = shutil.which("tshark")
        before_argv = [sys.executable, "-m", "wgscope.cli"] + replay_argv[1:]
        out["bytecode"] = "compiled" if compiled else "from source (as the environment leaves it)"
        if compiled:
            compile_package(os.path.dirname(package.__file__))
            if before:
                compile_package(os.path.join(before, "wgscope"))
        for _ in range(rounds):
            one = {}
            if before:
                one["before_replay_decrypted"] = _timed(before_argv, env={**os.environ, "PYTHONPATH": before},
                                                        cwd=before)  # not this checkout's package from the cwd
            one["wgscope_replay_decrypted"] = _timed(replay_argv)
            if tshark:
                one["tshark_tcp"] = _timed([tshark, "-r", capture, "-Y", "tcp"])
                one["x_wall"] = round(one["tshark_tcp"]["wall_seconds"] / one["wgscope_replay_decrypted"]["wall_seconds"], 3)
                one["x_cpu"] = round(one["tshark_tcp"]["cpu_seconds"]
                                     / max(one["wgscope_replay_decrypted"]["cpu_seconds"], 1e-9), 3)
            out["rounds"].append(one)
        out["wgscope_replay_decrypted"] = _median_run([r["wgscope_replay_decrypted"] for r in out["rounds"]])
        if before:
            out["before_replay_decrypted"] = _median_run([r["before_replay_decrypted"] for r in out["rounds"]])
        out["tshark_tcp"] = _median_run([r["tshark_tcp"] for r in out["rounds"]]) if tshark else None
        if tshark:
            out["speed_x_tshark_cpu"] = round(statistics.median(r["x_cpu"] for r in out["rounds"]), 3)
            out["speed_x_tshark_wall"] = round(statistics.median(r["x_wall"] for r in out["rounds"]), 3)
        return out
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def _instructions(argv: list[str], workdir: str, label: str, env: dict | None = None, cwd: str | None = None) -> int:
    """User-space instructions one run of `argv` executes, counted by valgrind's callgrind (the
    same on a busy machine as on a quiet one, to a few parts in 10,000)."""
    out = os.path.join(workdir, f"callgrind.{label}")
    proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=3600, env=env, cwd=cwd)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode or not found:
        raise RuntimeError(f"{label} under callgrind: exit {proc.returncode}: {proc.stderr[-300:]}")
    return int(found.group(1))


def measure_instructions(capture: str, packets: int = 40_000, before: str | None = None,
                         workdir: str | None = None) -> dict:
    """The first `packets` packets of `capture` (editcap keeps the Decryption Secrets Block), then
    `replay --decrypted` and `tshark -Y tcp` on them, each once under callgrind: the ratio of
    user-space instructions. CPU seconds on this shared 2-vCPU machine swing by half between
    rounds; instruction counts do not. What they leave out: the kernel's work (system time: writing
    --decrypted, page faults) and how fast each instruction runs. About a minute per replay and
    three for tshark at 40,000 packets."""
    import wgscope as package
    from wgscope.pcap import read_capture

    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="wgscope-replay-instr-")
    try:
        cut = os.path.join(workdir, "cut.pcapng")
        subprocess.run(["editcap", "-r", capture, cut, f"1-{packets}"], check=True, capture_output=True)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        compile_package(os.path.dirname(package.__file__))
        replay = [sys.executable, "-m", "wgscope.cli", "replay", cut, "--decrypted", os.path.join(workdir, "inner.pcap")]
        out = {"packets": sum(1 for _ in read_capture(cut, comments=False)), "capture": capture}
        if before:
            compile_package(os.path.join(before, "wgscope"))
            out["before_replay_instructions"] = _instructions(replay, workdir, "before", {**env, "PYTHONPATH": before},
                                                              cwd=before)
        out["replay_instructions"] = _instructions(replay, workdir, "replay", env, cwd=workdir)
        out["tshark_instructions"] = _instructions(["tshark", "-r", cut, "-Y", "tcp"], workdir, "tshark", env)
        out["x_tshark_instructions"] = round(out["tshark_instructions"] / out["replay_instructions"], 3)
        return out
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def _median_run(runs: list[dict]) -> dict:
    return {"wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
            "returncode": max(r["returncode"] for r in runs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packets", type=int, help="lab capture: packets (default 100,000); --instructions: the first "
                   "packets of --capture counted (default 40,000)")
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON")
    p.add_argument("--no-tshark", action="store_true")
    p.add_argument("--iperf", type=float, metavar="SECONDS", help="measure on a live wgscope<->wgscope iperf3 "
                   "capture instead (root)")
    p.add_argument("--capture", metavar="FILE", help="with --iperf: measure on this capture instead of making one")
    p.add_argument("--rounds", type=int, default=3, help="with --iperf: alternate runs of each (default 3)")
    p.add_argument("--before", metavar="DIR", help="with --iperf/--capture: also time the wgscope package in DIR "
                   "(another build, e.g. main's) in each round")
    p.add_argument("--no-compile", action="store_true", help="with --iperf/--capture: do not byte-compile the "
                   "packages first (compile_package); with PYTHONDONTWRITEBYTECODE set they compile on each run")
    p.add_argument("--instructions", action="store_true", help="with --capture: count user-space instructions "
                   "under valgrind (callgrind) on the first --packets packets instead of timing (steady on a busy "
                   "machine; leaves out the kernel's work)")
    args = p.parse_args(argv)
    if args.instructions:
        missing = [tool for tool in ("valgrind", "editcap", "tshark") if not shutil.which(tool)]
        if not args.capture or missing:
            p.error("--instructions needs --capture FILE" if not args.capture else f"--instructions needs "
                    f"{', '.join(missing)} (Debian: valgrind, wireshark-common, tshark)")
        try:
            res = measure_instructions(args.capture, args.packets or 40_000, before=args.before)
        except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
            print(f"replay_bench --instructions: {e}", file=sys.stderr)
            return 1
        b = res.get("before_replay_instructions")
        print(f"instructions on the first {res['packets']} packets: "
              + (f"before {b:,}, " if b else "")
              + f"replay {res['replay_instructions']:,}, tshark -Y tcp {res['tshark_instructions']:,}: "
              f"{res['x_tshark_instructions']} x tshark")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
        return 0
    if args.iperf or args.capture:
        res = measure_iperf(args.iperf or 8.0, rounds=args.rounds, capture=args.capture, before=args.before,
                            compiled=not args.no_compile)
        print(iperf_line(res))
        for i, r in enumerate(res["rounds"], 1):
            b = r.get("before_replay_decrypted")
            print(f"  round {i}: " + (f"before {b['cpu_seconds']} / {b['wall_seconds']} s, " if b else "")
                  + f"replay {r['wgscope_replay_decrypted']['cpu_seconds']} / {r['wgscope_replay_decrypted']['wall_seconds']} s"
                  + (f", tshark {r['tshark_tcp']['cpu_seconds']} / {r['tshark_tcp']['wall_seconds']} s (CPU / wall)"
                     if r.get("tshark_tcp") else ""))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(res, f, indent=1)
        return 0
    res = measure(args.packets or 100_000, tshark=not args.no_tshark)
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
    line = (f"replay --decrypted on a {res['packets']}-packet iperf3 capture (bytecode {res['bytecode']}), "
            f"median of {len(res['rounds'])}: "
            f"{r['wall_seconds']} s wall, {r['cpu_seconds']} s CPU")
    if t:
        per = ", ".join(f"{x['x_cpu']}" for x in res["rounds"])
        line += (f"; tshark -Y tcp {t['wall_seconds']} s wall, {t['cpu_seconds']} s CPU; "
                 f"{res['speed_x_tshark_cpu']} x tshark by CPU (rounds {per}), {res['speed_x_tshark_wall']} by wall")
    return line


if __name__ == "__main__":
    sys.exit(main())
