"""tests/pyshark_util.read_packets reads a capture through pyshark and leaves no SIGCHLD watcher
wired behind it (pyshark's own loop set-up would); many children reaped afterwards stay quiet."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys

from conftest import require_tools
from pyshark_util import read_packets

SAMPLE = pathlib.Path(__file__).resolve().parent.parent / "captures" / "sample-lab.pcapng"


def test_reading_leaves_no_signal_wired_and_children_reap_quietly(monkeypatch):
    require_tools("tshark")
    assert read_packets(SAMPLE)
    assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    for _ in range(300):  # more than a loop's self-pipe holds, were it still wired
        subprocess.run(["true"], check=True)
    assert unraisable == []
