"""Make captures/sample-lab.pcapng: a small lab capture that decrypts itself (DSB).

Two nodes, pings, a passive keepalive, a rekey after REKEY_AFTER_TIME and one lost packet,
so the notebook and `wgscope replay` have something to show.  `python -m wgscope.replay.sample`
"""

from __future__ import annotations

import sys

from ..runtime.lab import Faults, Lab
from .labcapture import LabCapture

SAMPLE = "captures/sample-lab.pcapng"


def make_sample(path: str = SAMPLE, seed: int = 6) -> None:
    lab = Lab(seed=seed, faults=Faults())
    a = lab.add_node("alpha", "192.0.2.1", 51820, tunnel="10.0.0.1/24")
    b = lab.add_node("bravo", "192.0.2.2", 51820, tunnel="10.0.0.2/24")
    lab.connect(a, b)
    with LabCapture(lab, path, undelivered=False):
        for i in range(5):
            lab.network.faults.loss = 1.0 if i == 2 else 0.0  # one echo request lost on the wire
            a.ping("10.0.0.2", seq=i)
            lab.network.faults.loss = 0.0
            lab.run(1.0)
        lab.run(15)
        for i in range(16):
            a.ping("10.0.0.2", seq=100 + i)
            lab.run(10)
        lab.run(12)


def make_bench_capture(path: str, packets: int, seed: int = 9, keylog_path=None) -> int:
    """A larger capture for the benchmark: one session carrying `packets` pings and replies."""
    lab = Lab(seed=seed)
    a = lab.add_node("alpha", "192.0.2.1", 51820, tunnel="10.0.0.1/24")
    b = lab.add_node("bravo", "192.0.2.2", 51820, tunnel="10.0.0.2/24")
    lab.connect(a, b)
    with LabCapture(lab, path, keylog_path=keylog_path) as cap:
        seq = 0
        while cap.packets < packets:
            for _ in range(50):
                a.ping("10.0.0.2", seq=seq & 0xFFFF, payload=b"wgscope-bench" * 4)
                seq += 1
            lab.run(0.05)
        return cap.packets


if __name__ == "__main__":
    make_sample(sys.argv[1] if len(sys.argv) > 1 else SAMPLE)
