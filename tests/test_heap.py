"""The live node's huge-page heap (runtime/heap.py): when `wgscope up` re-executes itself with it,
that the re-executed process has it, and that a user's choice wins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wgscope.runtime import heap

PROBE = ("import os; from wgscope.runtime.heap import reexec_with_huge_heap; reexec_with_huge_heap(); "
         "print(os.getpid(), os.environ.get('PYTHONMALLOC'), os.environ.get('GLIBC_TUNABLES'), "
         "[l.split()[1] for l in open('/proc/self/smaps_rollup') if l.startswith('AnonHugePages')][0])")


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "GLIBC_TUNABLES", "WGSCOPE_HUGE_HEAP")}
    env.update(extra)
    return env


def test_a_users_allocator_or_opt_out_is_kept():
    assert not heap.wanted({"PYTHONMALLOC": "pymalloc"})
    assert not heap.wanted({"WGSCOPE_HUGE_HEAP": "0"})


def test_the_tunable_joins_the_users_other_tunables_once():
    env = heap.huge_heap_environ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=0", "X": "1"})
    assert env["PYTHONMALLOC"] == "malloc" and env["X"] == "1"
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert heap.huge_heap_environ({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"


@pytest.mark.skipif(not heap.wanted(_clean_env()), reason="THP is never, or glibc < 2.35: nothing to apply here")
def test_the_process_re_executes_itself_once_with_a_huge_page_heap():
    out = subprocess.run([sys.executable, "-c", PROBE], env=_clean_env(), capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    pid, malloc, tunables, huge_kb = out
    assert (malloc, tunables) == ("malloc", "glibc.malloc.hugetlb=1")
    # the interpreter's start-up objects alone fill more than one 2 MiB page of glibc's heap
    assert int(huge_kb) >= 2048


def test_opted_out_the_process_runs_as_started():
    out = subprocess.run([sys.executable, "-c", PROBE], env=_clean_env(WGSCOPE_HUGE_HEAP="0"), capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out[1:3] == ["None", "None"]
