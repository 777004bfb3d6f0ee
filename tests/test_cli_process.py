"""What every wgscope process is, whatever its command: here, no thread pool nobody uses."""

import os
import subprocess
import sys

import pytest

CHILD = """
import os, sys
from wgscope import cli
assert "numpy" not in sys.modules
cli.main(["genkey"])  # any command: the setting is made before one runs (each imports numpy when it runs)
import numpy  # as the live node's GSO split, its trace writer and replay's columns do
print(os.environ["OPENBLAS_NUM_THREADS"], len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts no extra thread on one core")
def test_a_wgscope_process_starts_no_openblas_threads():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    setting, threads = r.stdout.split()[-2:]
    assert (setting, threads) == ("1", "1")


def test_the_users_openblas_setting_is_kept():
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2] == "2"
