"""The protocol core's share of a ping round trip, cold, and against another build's core.

    python -m bench.cold_trip [--against DIR] [--gap 0.02] [--repeat 60]

A ping through the tunnel runs four core calls: A's send of the echo request (send_packets),
B's receive of it (receive_datagrams), B's send of the reply, A's receive of the reply. This
makes a lab pair (events at the live node's default level, the live node's unseeded Entropy),
completes a handshake, and times each of the four calls on one ping-sized packet after `gap`
seconds of sleep, the way bench.cold times one step (at ping rates every step runs cold).

`--against DIR`: DIR holds another build's `wgscope/` package (e.g. main's:
`mkdir DIR && git -C /work/main archive REV wgscope | tar -x -C DIR`). It is imported under
another name (`wgscope_against`; the package's own imports are relative) and its round trips
are timed interleaved with this tree's, one after the other, so both see the same load: the
in-process before/after of a change to the core (bench/README.md section 16). Prints the
median microseconds of each call and their sum per build.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

STEPS = ("A send", "B receive", "B send", "A receive")
AGAINST = "wgscope_against"


def round_trip(package: str) -> list:
    """The four core calls of one ping, as callables, on a fresh lab pair of `package`'s code."""
    events = importlib.import_module(package + ".events")
    actions = importlib.import_module(package + ".protocol.actions")
    entropy = importlib.import_module(package + ".protocol.entropy")
    packets = importlib.import_module(package + ".runtime.packets")
    lab = importlib.import_module(package + ".runtime.lab").Lab(level=events.INFO)
    alpha, bravo = lab.alpha_bravo()
    alpha.ping("10.0.0.2")
    lab.run(1.0)  # the handshake: a current keypair on both sides
    a, b = alpha.device, bravo.device
    a.entropy, b.entropy = entropy.Entropy(), entropy.Entropy()  # as the live node draws jitter
    request = packets.echo("10.0.0.1", "10.0.0.2", 1, payload=bytes(56))
    reply = packets.echo("10.0.0.2", "10.0.0.1", 1, payload=bytes(56))
    send_type, write_type = actions.SendDatagram, actions.WritePacket
    clock = [lab.now]

    def sender(device, packet):
        def step(_):
            clock[0] += 0.0001
            return [x.data for x in device.send_packets([packet], clock[0]) if type(x) is send_type]
        return step

    def receiver(device, source):
        def step(sealed):
            clock[0] += 0.0001
            out = device.receive_datagrams(sealed, source, clock[0])
            if not out or type(out[0]) is not write_type:
                raise SystemExit(f"{package}: the ping was not delivered ({out!r})")
            return out
        return step

    return [sender(a, request), receiver(b, alpha.endpoint), sender(b, reply), receiver(a, bravo.endpoint)]


def measure(builds: dict, gap: float, repeat: int) -> dict:
    times = {name: [[] for _ in STEPS] for name in builds}
    for _ in range(repeat):
        for name, steps in builds.items():
            carried = None
            for k, step in enumerate(steps):
                time.sleep(gap)
                t0 = time.perf_counter_ns()
                carried = step(carried)
                times[name][k].append((time.perf_counter_ns() - t0) / 1e3)
    return {name: [round(statistics.median(v[3:]), 1) for v in per_step] for name, per_step in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--against", metavar="DIR", help="a directory holding another build's wgscope/ package")
    p.add_argument("--gap", type=float, default=0.02, help="seconds of sleep before each call")
    p.add_argument("--repeat", type=int, default=60)
    a = p.parse_args(argv)
    builds = {"this tree": round_trip("wgscope")}
    with tempfile.TemporaryDirectory(prefix="wgscope-cold-trip-") as tmp:
        if a.against:
            source = Path(a.against) / "wgscope"
            if not (source / "protocol" / "device.py").is_file():
                print(f"bench.cold_trip: {source} is not a wgscope package", file=sys.stderr)
                return 2
            shutil.copytree(source, Path(tmp) / AGAINST)
            sys.path.insert(0, tmp)
            builds[a.against] = round_trip(AGAINST)
        result = measure(builds, a.gap, a.repeat)
    width = max(len(n) for n in result)
    print(f"median us after {a.gap * 1e3:g} ms".ljust(width + 2) + "".join(f"{s:>12}" for s in STEPS) + f"{'sum':>10}")
    for name, row in result.items():
        print(name.ljust(width + 2) + "".join(f"{x:>12}" for x in row) + f"{sum(row):>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
