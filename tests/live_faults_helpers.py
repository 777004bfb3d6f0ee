"""A live wgscope node (namespace A) and wireguard-go (namespace B) whose lifetimes the test controls.

Unlike test_interop_wggo.wggo_pair, the wgscope process is started and stopped by the test
(signals, restarts, odd umasks), and wgscope's endpoint for wireguard-go can be pointed at a
relay. Addresses: underlay 192.0.2.1 (A) / 192.0.2.2 (B), tunnel 10.9.0.1 / 10.9.0.2.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from conftest import require_tools
from livenet import Keys, start_wireguard_go, wg_peer, wgscope_config
from netns import Namespace, namespaces, unique, veth

A4, B4 = "192.0.2.1", "192.0.2.2"
PORT_A, PORT_B = 51820, 51821


@dataclass
class LivePair:
    a: Namespace
    b: Namespace
    ifa: str
    ifb: str
    conf: Path
    keys_a: Keys
    keys_b: Keys
    veth_a: str
    veth_b: str


@contextlib.contextmanager
def live_pair(tmp: Path, *, b_endpoint: str | None = f"{B4}:{PORT_B}", prefix: str = "wsf"):
    require_tools("wireguard-go", "wg", "ping")
    with namespaces("A", "B") as (a, b):
        va, vb = veth(a, f"{A4}/24", b, f"{B4}/24")
        ka, kb = Keys(), Keys()
        ifa, ifb = unique(prefix), unique("wgf")
        conf = wgscope_config(tmp / f"{ifa}.conf", ka, listen_port=PORT_A, addresses=["10.9.0.1/24"],
                              peers=[dict(public_key=kb.public_b64, allowed_ips=["10.9.0.2/32"],
                                          endpoint=b_endpoint)])
        start_wireguard_go(b, ifb, kb, tmp, listen_port=PORT_B, address=["10.9.0.2/24"])
        wg_peer(b, ifb, ka.public_b64, allowed=["10.9.0.1/32"])
        yield LivePair(a, b, ifa, ifb, conf, ka, kb, va, vb)
