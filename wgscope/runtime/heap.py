"""The live node's heap in transparent huge pages: a node setting, applied by `wgscope up` to itself.

At ping rates every hop of a packet runs cold: on the 2-vCPU VM of bench/README.md (sections 12
and 14) the caches and TLB are emptied between two packets 1-50 ms apart, and a hop touches a few
hundred objects spread over CPython's 1 MiB pymalloc arenas and 4 KiB pages. With every Python
object allocated by glibc's malloc (`PYTHONMALLOC=malloc`) and glibc told to back its heap with
transparent huge pages (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, glibc >= 2.35; it madvises the
heap MADV_HUGEPAGE, which the kernel honours in THP's `madvise` and `always` modes), those objects
sit in a few 2 MiB pages, so a cold hop takes far fewer page walks. Both settings are read when the
interpreter starts, so `wgscope up` re-executes itself once with them, before it creates anything
(same pid, same arguments).

Not applied when the user chose an allocator (PYTHONMALLOC set), when WGSCOPE_HUGE_HEAP=0, when
THP is `never`, or when glibc is older than 2.35 (the tunable would be ignored).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")
TUNABLE = "glibc.malloc.hugetlb=1"  # glibc 2.35 NEWS: "glibc.malloc.hugetlb=1 ... madvise(MADV_HUGEPAGE)"


def _glibc_at_least(major: int, minor: int) -> bool:
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        have = tuple(int(part) for part in version.split(".")[:2])
    except (ValueError, OSError, AttributeError):
        return False  # not glibc (musl), or unknown: the tunable may mean nothing
    return name == "glibc" and have >= (major, minor)


def _thp_mode() -> str | None:
    try:
        text = THP_ENABLED.read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


def wanted(environ=os.environ) -> bool:
    """Whether this process should re-execute itself with the huge-page heap."""
    if environ.get("PYTHONMALLOC") is not None or environ.get("WGSCOPE_HUGE_HEAP", "1") == "0":
        return False
    return _thp_mode() in ("always", "madvise") and _glibc_at_least(2, 35)


def huge_heap_environ(environ=os.environ) -> dict:
    env = dict(environ)
    env["PYTHONMALLOC"] = "malloc"
    tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t and not t.startswith("glibc.malloc.hugetlb=")]
    env["GLIBC_TUNABLES"] = ":".join(tunables + [TUNABLE])
    return env


def reexec_with_huge_heap() -> None:
    """Replace this process by the same command with the huge-page heap, when `wanted()`; the new
    image has PYTHONMALLOC set, so it runs on and does not come back here."""
    if not wanted():
        return
    argv = list(sys.orig_argv)
    if not argv or not sys.executable:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], huge_heap_environ())
