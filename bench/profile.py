"""Where a wgscope node's time goes: py-spy on both ends of a tunnel under load (root, py-spy).

    python -m bench.profile [--seconds 8] [--trace] [--ping] [--top 25]

Brings up wgscope -> wgscope (bench/topology.py), records both node processes with
`py-spy record --format raw` (collapsed stacks, idle samples included) while iperf3 runs A -> B
(or, with --ping, while 1000 pings go A -> B at 5 ms intervals), then prints per node the
functions with the most samples on their own (self) and in total (inclusive), as percentages
of the main thread's samples (epoll idle included: it is the headroom). --trace starts both nodes with `--events FILE.wgtrace --events-level trace`.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .topology import WGSCOPE, tunnel
from .traffic import iperf


def summarize(raw: Path, top: int) -> str:
    own: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        if stack.endswith(("(threading.py)", "(queue.py)")) or "_write_loop" in stack:
            continue  # a helper thread (the trace writer) waiting or writing without the GIL
        samples += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  for f in stack.split(";")[1:]]  # the first frame is the process/thread
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    if not samples:
        return "  (no samples)"
    lines = [f"  {samples} samples; self:"]
    lines += [f"    {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("  inclusive:")
    lines += [f"    {100 * n / samples:5.1f}%  {f}" for f, n in total.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--trace", action="store_true", help="both nodes write every event to a .wgtrace")
    p.add_argument("--ping", action="store_true", help="profile 1000 pings instead of iperf3")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if os.geteuid() != 0 or not os.path.exists(spy):
        print("bench.profile: needs root and py-spy (.venv/bin/pip install -e '.[bench]')", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wgscope-profile-") as tmpdir:
        tmp = Path(tmpdir)
        extra = {side: ("--events", str(tmp / f"{side}.wgtrace"), "--events-level", "trace") if a.trace else ()
                 for side in "ab"}
        with tunnel(WGSCOPE, WGSCOPE, tmp / "t", extra["a"], extra["b"]) as setup:
            spies = {side: subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                                             "--idle", "--output", str(tmp / f"{side}.txt")],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for side, pid in setup.pids.items()}
            time.sleep(1)
            if a.ping:
                setup.a.run(f"ping -q -c 1000 -i 0.005 {setup.b_ip}", check=False, timeout=60)
                what = "1000 pings"
            else:
                what = f"{iperf(setup, a.seconds) / 1e6:.0f} Mbit/s"
            for s in spies.values():
                s.send_signal(signal.SIGINT)
            for s in spies.values():
                s.wait(30)
        print(f"wgscope -> wgscope{' with trace events' if a.trace else ''}: {what}")
        for side, label in (("a", "A (sender)"), ("b", "B (receiver)")):
            print(f"node {label}:")
            print(summarize(tmp / f"{side}.txt", a.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
