"""iperf3 TCP throughput and ping RTT between the two namespaces of a Setup."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time

from .topology import Setup

IPERF_PORT = 5201


def iperf(setup: Setup, seconds: float, reverse: bool = False) -> float:
    """One iperf3 TCP run, client in A sending to the server in B (B -> A with reverse); bits/s."""
    server = setup.b.popen(["iperf3", "-s", "-1", "-B", setup.b_ip, "-p", str(IPERF_PORT)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):  # the server needs a moment to listen
            r = setup.a.run(f"iperf3 -c {setup.b_ip} -p {IPERF_PORT} -t {seconds} -J" + (" -R" if reverse else ""),
                            check=False, timeout=seconds + 30)
            try:
                report = json.loads(r.stdout)
            except ValueError:
                report = {"error": (r.stdout + r.stderr)[-400:]}
            error = report.get("error")
            if error and "refused" in error:
                time.sleep(0.1)
                continue
            if error or "sum_received" not in report.get("end", {}):
                raise RuntimeError(f"iperf3: {error or 'no result'}")
            return float(report["end"]["sum_received"]["bits_per_second"])
        raise RuntimeError("iperf3 server did not come up")
    finally:
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def iperf_median(setup: Setup, seconds: float, reps: int) -> dict:
    runs = [iperf(setup, seconds) for _ in range(reps)]
    return {"median_bps": statistics.median(runs), "runs_bps": runs}


def ping_rtt(setup: Setup, count: int = 20, interval: float = 0.05) -> dict:
    """Mean/min/max RTT in ms of `count` pings A -> B, `interval` seconds apart."""
    r = setup.a.run(f"ping -c {count} -i {interval} -W 2 {setup.b_ip}", check=False,
                    timeout=count * interval + 15)
    m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", r.stdout)
    if not m:
        return {"avg_ms": None, "min_ms": None, "max_ms": None, "error": r.stdout[-200:]}
    mn, avg, mx, _mdev = map(float, m.groups())
    each = [float(t) for t in re.findall(r"time=([\d.]+) ms", r.stdout)]
    return {"avg_ms": avg, "min_ms": mn, "max_ms": mx, "median_ms": statistics.median(each) if each else None}
