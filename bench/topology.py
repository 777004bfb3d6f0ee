"""Two namespaces joined by a veth pair, with a tunnel between them made of wgscope or wireguard-go.

    ns A  veth 192.0.2.1/24  tunnel 10.88.0.1/24   (impl_a)
    ns B  veth 192.0.2.2/24  tunnel 10.88.0.2/24   (impl_b)

Namespaces, veths, TUNs and processes come from tests/netns.py and tests/livenet.py (the same
helpers the interop tests use), so a benchmark run cleans up exactly as a test does: every
process is killed and every namespace deleted when the `tunnel()` context ends, pass or fail.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from livenet import Keys, start_wgscope, start_wireguard_go, wg_peer, wgscope_config  # noqa: E402
from netns import Namespace, namespaces, sh, unique, veth, wait_for  # noqa: E402

A4, B4 = "192.0.2.1", "192.0.2.2"
TA, TB = "10.88.0.1", "10.88.0.2"
PORT_A, PORT_B = 51820, 51821
MTU = 1420
WGSCOPE, WGGO, VETH = "wgscope", "wireguard-go", "veth"

__all__ = ["Setup", "tunnel", "Namespace", "sh", "unique", "wait_for", "WGSCOPE", "WGGO", "VETH"]


@dataclass
class Setup:
    a: Namespace
    b: Namespace
    a_ip: str  # the address traffic is sent to/from (tunnel or bare veth)
    b_ip: str
    pids: dict[str, int] = field(default_factory=dict)  # side ("a"/"b") -> pid of the node process


def _wgscope(ns: Namespace, tmp: Path, ifname: str, me: Keys, peer: Keys, addr: str, peer_addr: str,
             port: int, peer_endpoint: str, extra: tuple) -> int:
    conf = wgscope_config(tmp / f"{ifname}.conf", me, listen_port=port, addresses=[f"{addr}/24"], mtu=MTU,
                          peers=[dict(public_key=peer.public_b64, allowed_ips=[f"{peer_addr}/32"],
                                      endpoint=peer_endpoint)])
    node = start_wgscope(ns, tmp, ifname, conf, *extra)
    return node.proc.pid


def _wggo(ns: Namespace, tmp: Path, ifname: str, me: Keys, peer: Keys, addr: str, peer_addr: str,
          port: int, peer_endpoint: str) -> int:
    proc = start_wireguard_go(ns, ifname, me, tmp, listen_port=port, address=[f"{addr}/24"])
    ns.run(f"ip link set {ifname} mtu {MTU}")
    wg_peer(ns, ifname, peer.public_b64, allowed=[f"{peer_addr}/32"], endpoint=peer_endpoint)
    return proc.pid


@contextlib.contextmanager
def tunnel(impl_a: str, impl_b: str, tmp: Path, extra_a: tuple = (), extra_b: tuple = ()):
    """Yield a Setup with a working path A -> B (a ping has gone through); everything removed after."""
    tmp.mkdir(parents=True, exist_ok=True)
    with namespaces("bA", "bB") as (a, b):
        veth(a, f"{A4}/24", b, f"{B4}/24")
        if impl_a == VETH:
            yield Setup(a, b, A4, B4)
            return
        ka, kb = Keys(), Keys()
        setup = Setup(a, b, TA, TB)
        for side, ns, impl, me, peer, addr, peer_addr, port, ep, extra in (
                ("a", a, impl_a, ka, kb, TA, TB, PORT_A, f"{B4}:{PORT_B}", extra_a),
                ("b", b, impl_b, kb, ka, TB, TA, PORT_B, f"{A4}:{PORT_A}", extra_b)):
            ifname = unique(f"bn{side}")
            if impl == WGSCOPE:
                setup.pids[side] = _wgscope(ns, tmp, ifname, me, peer, addr, peer_addr, port, ep, extra)
            else:
                setup.pids[side] = _wggo(ns, tmp, ifname, me, peer, addr, peer_addr, port, ep)
        wait_for(lambda: a.run(f"ping -c 1 -W 1 {TB}", check=False).returncode == 0, 20,
                 what=f"{impl_a} -> {impl_b} tunnel")
        yield setup
