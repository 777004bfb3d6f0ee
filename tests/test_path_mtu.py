"""Path MTU: a tunnel MTU of 1420 over an underlay of 1400 or 1280 — the common misfit.

wgscope (A) and wireguard-go (B) joined by one veth whose MTU each test sets. The tunnel's
full-size datagrams (1420 + 32 + 28/48 bytes) no longer fit the path: a GSO batch of them is
refused whole (EMSGSIZE), and wgscope sends its datagrams one by one so the kernel fragments
them, as it does for wireguard-go's. Checked for both directions, IPv4 and IPv6 outside:

- a TCP transfer arrives whole (sha256 both ends);
- the bytes each side counts as sent are the bytes the other side counts as received
  (`wg show dump`), so nothing refused was counted as sent;
- no packet_dropped event and no drop count anywhere (a healthy tunnel is quiet), no routing
  miss at info level — the IPv6 router solicitations the kernel sends on the TUN are
  `local_traffic_ignored` at DEBUG — and the batches refused for their size fell back.

Throughput of each direction is printed (`pytest -s`); speed goals live in `make bench`.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from conftest import require_tools
from livenet import (
    Keys, start_wgscope, start_wireguard_go, tcp_transfer, wg_dump, wg_peer, wgscope_config,
)
from netns import namespaces, unique, veth, wait_for

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]
A4, B4, A6, B6 = "192.0.2.1", "192.0.2.2", "2001:db8:7::1", "2001:db8:7::2"
PORT_A, PORT_B = 51830, 51831
SIZE = 4 << 20
MAX_DATAGRAM = 1420 + 32  # a full tunnel packet, sealed: header 16 + tag 16


def control_snapshot(name: str, timeout: float = 10) -> dict:
    """The node's latest snapshot (Device.snapshot + io counters) from its control socket."""
    from wgscope.sinks.control import control_path

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(control_path(name)))
        reader = s.makefile("r")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(reader.readline())
            if msg.get("type") == "snapshot":
                return msg["data"]
    raise TimeoutError(f"no snapshot from {name}'s control socket")


@pytest.fixture(scope="module")
def misfit(tmp_path_factory):
    require_tools("wireguard-go", "wg", "ping")
    tmp = tmp_path_factory.mktemp("pmtu")
    with namespaces("MA", "MB") as (a, b):
        va, vb = veth(a, f"{A4}/24", b, f"{B4}/24")
        a.run(f"ip -6 addr add {A6}/64 dev {va} nodad")
        b.run(f"ip -6 addr add {B6}/64 dev {vb} nodad")
        ka, kb = Keys(), Keys()
        ifa, ifb = unique("wsm"), unique("wgm")
        start_wireguard_go(b, ifb, kb, tmp, listen_port=PORT_B, address=["10.8.0.2/24", "fd00:8::2/64"])
        wg_peer(b, ifb, ka.public_b64, allowed=["10.8.0.1/32", "fd00:8::1/128"])
        conf = wgscope_config(tmp / f"{ifa}.conf", ka, listen_port=PORT_A, mtu=1420,
                              addresses=["10.8.0.1/24", "fd00:8::1/64"],
                              peers=[dict(public_key=kb.public_b64, allowed_ips=["10.8.0.2/32", "fd00:8::2/128"],
                                          endpoint=f"{B4}:{PORT_B}")])
        events = tmp / "events.jsonl"
        node = start_wgscope(a, tmp, ifa, conf, "--events", str(events), "--events-format", "json")
        yield dict(a=a, b=b, va=va, vb=vb, ifa=ifa, ifb=ifb, ka=ka, kb=kb, node=node, events=events)
        node.terminate()


def _transfer(server_ns, client_ns, server_ip: str) -> float:
    t0 = time.monotonic()
    tcp_transfer(server_ns, client_ns, server_ip, size=SIZE, timeout=60)
    return SIZE * 8 / (time.monotonic() - t0) / 1e6


def _rcvbuf_errors(ns) -> int:
    out = ns.run("nstat -az UdpRcvbufErrors Udp6RcvbufErrors").stdout
    return sum(int(line.split()[1]) for line in out.splitlines() if "RcvbufErrors" in line)


def _sent_as_received(m) -> bool:
    """wgscope counts as sent what wireguard-go received (its rx: transport bytes, as our tx),
    give or take datagrams the receiving kernel dropped for a full socket buffer: with a false
    count (a refused batch counted as sent) wgscope's tx would exceed even that."""
    tx = int(wg_dump(m["a"], m["ifa"])[0][6])
    rx = int(wg_dump(m["b"], m["ifb"])[0][5])
    return rx <= tx <= rx + _rcvbuf_errors(m["b"]) * MAX_DATAGRAM


@pytest.mark.parametrize("outer", ["4", "6"])
@pytest.mark.parametrize("underlay", [1400, 1280])
def test_tunnel_1420_over_a_smaller_underlay(misfit, underlay, outer):
    m = misfit
    m["a"].run(f"ip link set {m['va']} mtu {underlay}")
    m["b"].run(f"ip link set {m['vb']} mtu {underlay}")
    b_host, a_host = (f"[{B6}]", f"[{A6}]") if outer == "6" else (B4, A4)
    m["a"].run(f"wg set {m['ifa']} peer {m['kb'].public_b64} endpoint {b_host}:{PORT_B}")
    m["b"].run(f"wg set {m['ifb']} peer {m['ka'].public_b64} endpoint {a_host}:{PORT_A}")
    up = _transfer(m["b"], m["a"], "10.8.0.2")  # wgscope -> wireguard-go
    down = _transfer(m["a"], m["b"], "fd00:8::1")  # wireguard-go -> wgscope
    print(f"\nunderlay {underlay}, outer IPv{outer}: wgscope->wireguard-go {up:.0f} Mbit/s, "
          f"wireguard-go->wgscope {down:.0f} Mbit/s")
    wait_for(lambda: _sent_as_received(m), 10, what="wgscope's tx to be what wireguard-go received")
    snap = control_snapshot(m["ifa"])
    io = snap["io"]
    assert io["udp_send_errors"] == 0 and io["udp_lost"] == {}, io
    assert io["udp_gso_fallbacks"] > 0 or not io["udp_gso"], io  # full-size batches were refused and split
    assert snap["drops"] == {} and all(p["drops"] == {} for p in snap["peers"]), snap
    events = [json.loads(line) for line in m["events"].read_text().splitlines()]
    assert not [e for e in events if e["event"] in ("packet_dropped", "route_missing")]


def test_router_solicitations_are_no_routing_miss(misfit):
    """The kernel's own IPv6 router solicitations (ff02::2) on the TUN: counted as ignored, not as
    drops, and no info-level event (the events file is at info)."""
    m = misfit
    wait_for(lambda: control_snapshot(m["ifa"])["io"]["local_ignored"] > 0, 10,
             what="the kernel's router solicitation")
    snap = control_snapshot(m["ifa"])
    assert snap["drops"] == {}
    events = [json.loads(line) for line in m["events"].read_text().splitlines()]
    assert not [e for e in events if e["event"] in ("route_missing", "local_traffic_ignored", "packet_dropped")]
