"""Interop with a third implementation: boringtun (Cloudflare's, in Rust), as mitmproxy's
WireGuard mode runs it (mitmproxy_rs, the `test` extra). wgscope is the client, started from a
configuration file as a user would; an HTTP fetch through the tunnel returns bytes whose
sha256 the server sent alongside, over IPv4 and IPv6 outside."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tools
from livenet import Keys, start_wgscope, wg_dump, wgscope_config
from netns import namespaces, unique, veth

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
HERE = Path(__file__).resolve().parent
SERVER = str(HERE / "boringtun_server.py")
A4, B4, A6, B6 = "192.0.2.1", "192.0.2.2", "2001:db8:5::1", "2001:db8:5::2"
PORT_B = 51850
TARGET = "198.18.0.80"  # any address routed into the tunnel ends at the server's own TCP stack
SIZE = 1 << 20

FETCH = r"""
import hashlib, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=20) as r:
    body = r.read()
    print(len(body), hashlib.sha256(body).hexdigest(), r.headers["X-Sha256"], r.headers["X-Destination"])
"""


@pytest.mark.parametrize("outer", ["4", "6"])
def test_http_through_boringtun(tmp_path, outer):
    pytest.importorskip("mitmproxy_rs", reason="the test extra's mitmproxy_rs (pip install -e '.[test]')")
    require_tools("ip")
    with namespaces("BA", "BB") as (a, b):
        va, vb = veth(a, f"{A4}/24", b, f"{B4}/24")
        a.run(f"ip -6 addr add {A6}/64 dev {va} nodad")
        b.run(f"ip -6 addr add {B6}/64 dev {vb} nodad")
        ka, kb = Keys(), Keys()
        host = B6 if outer == "6" else B4
        server = b.popen([sys.executable, SERVER, "::" if outer == "6" else "0.0.0.0", str(PORT_B),
                          kb.private_b64, ka.public_b64], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert server.stdout.readline().startswith("listening"), "boringtun server did not start"
        ifa = unique("wsbt")
        conf = wgscope_config(tmp_path / f"{ifa}.conf", ka, listen_port=None, addresses=["10.0.0.1/32"],
                              peers=[dict(public_key=kb.public_b64, allowed_ips=[f"{TARGET}/32"],
                                          endpoint=f"[{host}]:{PORT_B}" if outer == "6" else f"{host}:{PORT_B}")])
        node = start_wgscope(a, tmp_path, ifa, conf)
        r = a.run(f"{sys.executable} -c '{FETCH}' http://{TARGET}/{SIZE}", check=False, timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr + node.output()
        length, got, sent, dst = r.stdout.split()
        assert int(length) == SIZE and got == sent and dst == TARGET
        peer = wg_dump(a, ifa)[0]
        assert int(peer[4]) > 0 and int(peer[5]) > SIZE  # a handshake with boringtun, the body received
        assert node.terminate() == 0
