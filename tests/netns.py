"""Network namespaces for tests: created with `ip netns add`, joined by veth, always removed.

Only documentation ranges are used for the underlay (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32), inside namespaces the test made.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time

_counter = itertools.count()


def sh(cmd: str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True, timeout=timeout, **kw)


def unique(prefix: str) -> str:
    """A short unique name (interfaces are limited to 15 characters; UAPI sockets are global)."""
    return f"{prefix}{os.getpid() % 10000}{next(_counter)}"[:15]


class Namespace:
    def __init__(self, name: str) -> None:
        self.name = name
        self.procs: list[subprocess.Popen] = []

    def run(self, cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return sh(f"ip netns exec {self.name} {cmd}", check=check, timeout=timeout)

    def popen(self, argv: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], env={**os.environ, **(env or {})},
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        self.kill_daemons()
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.time() + 5
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


    def kill_daemons(self, wait: float = 5) -> None:
        """Processes that live in the namespace without being ours to wait for (a `--daemon`
        node, wgscope-userspace): SIGTERM, then SIGKILL after `wait` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [int(p) for p in sh(f"ip netns pids {self.name}", check=False).stdout.split()]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.time() + wait
            while time.time() < deadline and any(_alive(pid) for pid in pids):
                time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that is not ours to reap it."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def namespaces(*labels: str):
    """Yield Namespace objects with loopback up; kill their processes and delete them after."""
    made: list[Namespace] = []
    try:
        for label in labels:
            ns = Namespace(unique(f"wgs{label}"))
            sh(f"ip netns add {ns.name}")
            made.append(ns)
            ns.run("ip link set lo up")
        yield made
    finally:
        for ns in made:
            ns.stop_all()
            sh(f"ip netns del {ns.name}", check=False)


def veth(a: Namespace, a_addr: str, b: Namespace, b_addr: str, mtu: int | None = None) -> tuple[str, str]:
    """Join a and b with a veth pair; addresses are 'ip/prefix' (v4 or v6). Returns the names."""
    na, nb = unique("va"), unique("vb")
    sh(f"ip link add {na} netns {a.name} type veth peer name {nb} netns {b.name}")
    for ns, dev, addr in ((a, na, a_addr), (b, nb, b_addr)):
        if mtu:
            ns.run(f"ip link set {dev} mtu {mtu}")
        ns.run(f"ip addr add {addr} dev {dev}" + (" nodad" if ":" in addr else ""))
        ns.run(f"ip link set {dev} up")
    return na, nb


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
