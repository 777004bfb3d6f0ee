"""wgscope <-> wgscope as real processes: two namespaces; TUNs moved away from the processes
(the topology of the kernel's netns.sh); and through a NAT kept open by persistent keepalive."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import pytest

from conftest import require_tools
from livenet import Keys, ping, psk, start_wgscope, tcp_transfer, wg_dump, wgscope_config, write_private
from netns import namespaces, sh, unique, veth, wait_for

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def test_two_namespaces_ping_tcp_ipv6_and_unreachable(tmp_path):
    """Same checks as against wireguard-go, both ends wgscope; a destination no peer covers is
    answered on the TUN with ICMP host unreachable."""
    require_tools("ping")
    with namespaces("A", "B") as (a, b):
        va, vb = veth(a, "192.0.2.1/24", b, "192.0.2.2/24")
        a.run(f"ip -6 addr add 2001:db8:1::1/64 dev {va} nodad")
        b.run(f"ip -6 addr add 2001:db8:1::2/64 dev {vb} nodad")
        ka, kb, shared = Keys(), Keys(), psk()
        ifa, ifb = unique("wsa"), unique("wsb")
        ca = wgscope_config(tmp_path / "a.conf", ka, listen_port=51820, addresses=["10.8.0.1/24", "fd00:8::1/64"],
                            peers=[dict(public_key=kb.public_b64, allowed_ips=["10.8.0.2/32", "fd00:8::2/128"],
                                        endpoint="[2001:db8:1::2]:51821", psk=shared)])
        cb = wgscope_config(tmp_path / "b.conf", kb, listen_port=51821, addresses=["10.8.0.2/24", "fd00:8::2/64"],
                            peers=[dict(public_key=ka.public_b64, allowed_ips=["10.8.0.1/32", "fd00:8::1/128"],
                                        psk=shared)])
        na = start_wgscope(a, tmp_path, ifa, ca, "--metrics", "127.0.0.1:9586", "--tun-offload")
        nb = start_wgscope(b, tmp_path, ifb, cb, "--metrics", "127.0.0.1:9586", "--tun-offload")
        ping(a, "10.8.0.2")
        ping(b, "10.8.0.1")
        ping(b, "fd00:8::1")
        tcp_transfer(a, b, "10.8.0.1", size=4 << 20)
        tcp_transfer(b, a, "fd00:8::2", size=1 << 20, port=5202)
        for ns in (a, b):  # each end sent one flow and received the other: TSO reads (--tun-offload), GRO writes
            m = scrape(ns, 9586)
            assert m['wgscope_tun_offload{interface="%s",offload="tso6"}' % (ifa if ns is a else ifb)] == 1
            assert sum(v for k, v in m.items() if k.startswith("wgscope_tun_reads_total") and 'kind="gso"' in k) > 0
            assert sum(v for k, v in m.items() if k.startswith("wgscope_tun_gso_writes_total")) > 0
            assert all(v == 0 for k, v in m.items() if k.startswith("wgscope_tun_offload_drops_total"))
        r = a.run("ping -c 1 -W 2 10.8.0.77", check=False)  # inside 10.8.0.0/24, but no peer's
        assert r.returncode != 0 and "Destination Host Unreachable" in r.stdout, r.stdout
        assert "endpoint [2001:db8:1::2]:51821" in na.output()
        for n in (na, nb):
            assert n.terminate() == 0
        assert a.run(f"ip link show {ifa}", check=False).returncode != 0


def scrape(ns, port: int) -> dict[str, float]:
    """The node's Prometheus metrics, read from inside its namespace."""
    code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"
    out = ns.run(f"{sys.executable} -c \"{code}\"").stdout
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in out.splitlines()
            if line and not line.startswith("#")}


@contextlib.contextmanager
def wgscope_pair(tmp_path: Path, *, a_knows: str | None = None, b_knows: str | None = None, events: bool = False):
    """wgscope in A (192.0.2.1 and .11, 2001:db8:1::1) and B (192.0.2.2, 2001:db8:1::2); tunnel 10.8.0.0/24."""
    with namespaces("A", "B") as (a, b):
        va, vb = veth(a, "192.0.2.1/24", b, "192.0.2.2/24")
        a.run(f"ip addr add 192.0.2.11/24 dev {va}")
        a.run(f"sysctl -qw net.ipv4.conf.{va}.promote_secondaries=1")
        a.run(f"ip -6 addr add 2001:db8:1::1/64 dev {va} nodad")
        b.run(f"ip -6 addr add 2001:db8:1::2/64 dev {vb} nodad")
        ka, kb = Keys(), Keys()
        ifa, ifb = unique("wsa"), unique("wsb")
        ca = wgscope_config(tmp_path / "a.conf", ka, listen_port=51820, addresses=["10.8.0.1/24"],
                            peers=[dict(public_key=kb.public_b64, allowed_ips=["10.8.0.2/32"], endpoint=a_knows)])
        cb = wgscope_config(tmp_path / "b.conf", kb, listen_port=51821, addresses=["10.8.0.2/24"],
                            peers=[dict(public_key=ka.public_b64, allowed_ips=["10.8.0.1/32"], endpoint=b_knows)])
        def extra(ifname: str) -> tuple:
            return ("--events", str(tmp_path / f"{ifname}.events.jsonl"), "--events-format", "json") if events else ()

        nodes = start_wgscope(a, tmp_path, ifa, ca, *extra(ifa)), start_wgscope(b, tmp_path, ifb, cb, *extra(ifb))
        yield a, b, va, ifa, ifb, ka, kb
        for n in nodes:
            assert n.terminate() == 0, n.output()


def test_replies_leave_from_the_address_the_peer_sent_to(tmp_path):
    """B sends to A's secondary 192.0.2.11: A answers from .11 (else B would roam A to .1). When .11
    disappears, A's next datagram falls over to a source the kernel picks, and B follows."""
    with wgscope_pair(tmp_path, b_knows="192.0.2.11:51820") as (a, b, va, ifa, ifb, ka, kb):
        ping(b, "10.8.0.1")
        ping(a, "10.8.0.2")
        assert wg_dump(b, ifb)[0][2] == "192.0.2.11:51820"
        a.run(f"ip addr del 192.0.2.11/24 dev {va}")
        ping(a, "10.8.0.2")
        assert wg_dump(b, ifb)[0][2] == "192.0.2.1:51820"


def test_outer_family_switched_at_run_time(tmp_path):
    """`wg set ... endpoint` moves the outer transport from IPv4 to IPv6 and back."""
    with wgscope_pair(tmp_path, a_knows="192.0.2.2:51821") as (a, b, va, ifa, ifb, ka, kb):
        ping(a, "10.8.0.2")
        assert wg_dump(b, ifb)[0][2].startswith("192.0.2.")
        a.run(f"wg set {ifa} peer {kb.public_b64} endpoint [2001:db8:1::2]:51821")
        ping(a, "10.8.0.2")
        assert wg_dump(b, ifb)[0][2] == "[2001:db8:1::1]:51820"
        a.run(f"wg set {ifa} peer {kb.public_b64} endpoint 192.0.2.2:51821")
        ping(a, "10.8.0.2")
        assert wg_dump(b, ifb)[0][2].startswith("192.0.2.")


def test_mtu_raised_at_run_time_carries_34k_packets(tmp_path):
    with wgscope_pair(tmp_path, a_knows="192.0.2.2:51821", events=True) as (a, b, va, ifa, ifb, ka, kb):
        a.run(f"ip link set {ifa} mtu 34000")
        b.run(f"ip link set {ifb} mtu 34000")
        r = a.run("ping -c 2 -i 0.3 -W 3 -M do -s 33900 10.8.0.2", check=False)
        assert r.returncode == 0 and "33908 bytes from 10.8.0.2" in r.stdout, r.stdout + r.stderr
    # both nodes saw the change (rtnetlink), so their padding follows the new MTU as wireguard-go's does
    for log in (tmp_path / f"{ifa}.events.jsonl", tmp_path / f"{ifb}.events.jsonl"):
        changes = [json.loads(line) for line in log.read_text().splitlines() if '"config_changed"' in line]
        assert any(c["setting"] == "mtu" and c["value"] == "34000" for c in changes), changes


@contextlib.contextmanager
def moved_tuns(tmp_path: Path):
    """netns.sh: processes and UDP in ns0; wg1 moved to ns1, wg2 to ns2; configured with `wg`."""
    require_tools("wg", "ping")
    with namespaces("P", "X", "Y") as (ns0, ns1, ns2):
        if1, if2 = unique("wsx"), unique("wsy")
        n1 = start_wgscope(ns0, tmp_path, if1, None)
        n2 = start_wgscope(ns0, tmp_path, if2, None)
        assert "no addresses (bare interface)" in n1.output()
        sh(f"ip -n {ns0.name} link set {if1} netns {ns1.name}")
        sh(f"ip -n {ns0.name} link set {if2} netns {ns2.name}")
        for ns, ifn, me in ((ns1, if1, "1"), (ns2, if2, "2")):
            ns.run(f"ip addr add 192.168.241.{me}/24 dev {ifn}")
            ns.run(f"ip addr add fd00::{me}/24 dev {ifn} nodad")
            ns.run(f"ip link set {ifn} up")
        k1, k2 = Keys(), Keys()
        yield ns0, ns1, ns2, if1, if2, k1, k2, (n1, n2)
        for n in (n1, n2):
            assert n.terminate() == 0, n.output()


@pytest.mark.parametrize("outer", ["127.0.0.1", "[::1]"], ids=["outer-ipv4", "outer-ipv6"])
def test_tun_moved_to_another_namespace(tmp_path, outer):
    with moved_tuns(tmp_path) as (ns0, ns1, ns2, if1, if2, k1, k2, _nodes):
        f1, f2 = write_private(tmp_path / "k1", k1), write_private(tmp_path / "k2", k2)
        ns0.run(f"wg set {if1} private-key {f1} listen-port 1 "
                f"peer {k2.public_b64} allowed-ips 192.168.241.2/32,fd00::2/128 endpoint {outer}:2")
        ns0.run(f"wg set {if2} private-key {f2} listen-port 2 "
                f"peer {k1.public_b64} allowed-ips 192.168.241.1/32,fd00::1/128 endpoint {outer}:1")
        ping(ns1, "192.168.241.2")
        ping(ns2, "fd00::1")
        tcp_transfer(ns2, ns1, "192.168.241.2", size=2 << 20)
        dump = wg_dump(ns0, if1)[0]
        assert dump[2] == f"{outer}:2" and int(dump[4]) > 0 and int(dump[6]) > 2 << 20  # tx: the upload


def test_through_nat_kept_open_by_persistent_keepalive(tmp_path):
    """A (198.51.100.2) behind a masquerading router reaches B (203.0.113.2). Conntrack forgets a UDP
    flow after 2 s here, so B can still reach A after 3 s idle only because A's keepalive (1 s) keeps
    the mapping; with keepalive turned off the same wait closes it."""
    require_tools("iptables", "ping", "wg")
    with namespaces("C", "R", "S") as (c, r, s):
        veth(c, "198.51.100.2/24", r, "198.51.100.1/24")
        _rs, _sr = veth(r, "203.0.113.1/24", s, "203.0.113.2/24")
        c.run("ip route add default via 198.51.100.1")
        r.run("sysctl -qw net.ipv4.ip_forward=1")
        r.run(f"iptables -t nat -A POSTROUTING -o {_rs} -j MASQUERADE")
        r.run("sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2")
        r.run("sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream=2")
        kc, ks = Keys(), Keys()
        ifc, ifs = unique("wsc"), unique("wss")
        cc = wgscope_config(tmp_path / "c.conf", kc, listen_port=51820, addresses=["10.7.0.1/24"],
                            peers=[dict(public_key=ks.public_b64, allowed_ips=["10.7.0.2/32"],
                                        endpoint="203.0.113.2:51821", keepalive=1)])
        cs = wgscope_config(tmp_path / "s.conf", ks, listen_port=51821, addresses=["10.7.0.2/24"],
                            peers=[dict(public_key=kc.public_b64, allowed_ips=["10.7.0.1/32"])])
        start_wgscope(s, tmp_path, ifs, cs)
        start_wgscope(c, tmp_path, ifc, cc)  # its first keepalive makes the handshake and the mapping
        wait_for(lambda: wg_dump(s, ifs)[0][2] != "(none)", 5, what="the server to learn the client")
        endpoint = wg_dump(s, ifs)[0][2]
        assert endpoint.startswith("203.0.113.1:"), endpoint  # the server sees the NAT's address
        time.sleep(3)
        ping(s, "10.7.0.1", count=1, timeout=3)  # server -> client through the kept mapping

        c.run(f"wg set {ifc} peer {ks.public_b64} persistent-keepalive 0")
        time.sleep(3)  # nothing from the client for longer than conntrack remembers
        lost = s.run("ping -c 2 -W 1 10.7.0.1", check=False)
        assert lost.returncode != 0, "the mapping should have expired without keepalive"
