"""A live node's life: SIGTERM and SIGINT remove the TUN, the UAPI socket and
the pid file; a restart with the same configuration works; a SIGKILLed node's leftovers do
not stop the next one. Malformed UAPI input (errno answers, the node keeps serving) is tested
in tests/test_uapi.py and tests/test_uapi_wg.py and not repeated here.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from live_faults_helpers import live_pair
from livenet import WGSCOPE, ping, start_wgscope

from wgscope.runtime.uapi_socket import socket_path

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

PID_DIR = Path("/run/wgscope")


def present(p, ifname: str) -> dict:
    return {
        "tun": p.a.run(f"ip link show {ifname}", check=False).returncode == 0,
        "uapi": os.path.exists(socket_path(ifname)),
        "pidfile": (PID_DIR / f"{ifname}.pid").exists(),
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_removes_tun_socket_and_pidfile_and_restart_works(tmp_path, sig):
    with live_pair(tmp_path) as p:
        node = start_wgscope(p.a, tmp_path, p.ifa, p.conf)
        ping(p.a, "10.9.0.2")
        assert present(p, p.ifa) == {"tun": True, "uapi": True, "pidfile": True}
        os.kill(node.proc.pid, sig)  # `ip netns exec` execs: this pid is wgscope itself
        assert node.proc.wait(10) == 0
        node.terminate()
        out = node.output()
        assert f"interface {p.ifa} down" in out and "Traceback" not in out
        assert present(p, p.ifa) == {"tun": False, "uapi": False, "pidfile": False}
        # the same configuration again: a fresh handshake (newer TAI64N) and traffic both ways
        again = start_wgscope(p.a, tmp_path, p.ifa, p.conf)
        ping(p.a, "10.9.0.2")
        ping(p.b, "10.9.0.1")
        assert p.a.run(f"wg show {p.ifa} public-key").stdout.strip() == p.keys_a.public_b64
        assert again.terminate() == 0
        assert present(p, p.ifa) == {"tun": False, "uapi": False, "pidfile": False}


def test_restart_after_sigkill_replaces_the_leftovers(tmp_path):
    with live_pair(tmp_path) as p:
        node = start_wgscope(p.a, tmp_path, p.ifa, p.conf)
        ping(p.a, "10.9.0.2")
        os.kill(node.proc.pid, signal.SIGKILL)
        node.proc.wait(10)
        node.terminate()
        left = present(p, p.ifa)
        assert left["tun"] is False  # the kernel removes a TUN whose last file descriptor closed
        again = start_wgscope(p.a, tmp_path, p.ifa, p.conf)  # stale socket and pid file are no obstacle
        ping(p.a, "10.9.0.2")
        r = p.a.run(f"{WGSCOPE} down {p.ifa}", check=False)
        assert r.returncode == 0, r.stderr
        again.proc.wait(10)
        again.terminate()
        assert present(p, p.ifa) == {"tun": False, "uapi": False, "pidfile": False}
