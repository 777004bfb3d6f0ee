"""What wireguard-go's tests/netns.sh checks, with wgscope as the program, in two topologies.

The loopback topology (the script's first): one namespace holds lo and both nodes, started as
wireguard-go is (`wgscope-userspace NAME`); each TUN is then moved into a namespace of its
own, so the tunnel's inner traffic and the nodes' UDP live in different namespaces. Checked
there: configuration with `wg set` (keys, psk, ports, allowed IPs, endpoints), the interface
counters after a flood ping, flood pings and TCP/UDP iperf3 both ways over IPv4 and IPv6
inside, with IPv4 and IPv6 outside, at the original MTU and at 34816 - 1500 + MTU; roaming
over IPv4 when the local address the node used is removed, and over IPv6 after a new listen
port; the crypto-routing (reverse path) filter; deleting a moved interface stops its node.

The veth topology (the script's "sticky but not too sticky"): the nodes in their own
namespaces joined by one veth; the local source follows address changes, and replies leave
from the address the peer wrote to, over IPv4 and IPv6.

Each test sets the state it needs first, so they pass in any order; every loop is bounded.
NAT (persistent keepalive through conntrack): test_live_pair.py; split IPC answers:
test_uapi_wg.py (200k allowed IPs, a missing interface).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import require_tools
from livenet import ROOT, Keys, psk, write_private
from netns import namespaces, sh, unique, wait_for

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]
USERSPACE = str(ROOT / ".venv" / "bin" / "wgscope-userspace")
TOOLS = ("wg", "ping", "iperf3", "ip")
PORT1, PORT2 = 10000, 20000


class Pair:
    """wg1 (192.168.241.1, fd00::1) and wg2 (.2, fd00::2), peers of each other, with a psk."""

    def __init__(self, tmp: Path, ns1, ns2, wgns1, wgns2) -> None:
        self.tmp, self.ns1, self.ns2 = tmp, ns1, ns2
        self.wgns1, self.wgns2 = wgns1, wgns2  # where `wg` reaches each node (its UAPI socket is global)
        self.wg1, self.wg2 = unique("wgs1"), unique("wgs2")
        self.k1, self.k2, self.psk = Keys(), Keys(), psk()

    def configure(self) -> None:
        """The script's configure_peers."""
        (self.tmp / "psk").write_text(self.psk + "\n")
        for ns, me, key, port, other, addr, peer_addr in (
                (self.wgns1, self.wg1, self.k1, PORT1, self.k2, "1", "2"),
                (self.wgns2, self.wg2, self.k2, PORT2, self.k1, "2", "1")):
            path = write_private(self.tmp / f"{me}.key", key)
            ns.run(f"wg set {me} private-key {path} listen-port {port} peer {other.public_b64} "
                   f"preshared-key {self.tmp / 'psk'} allowed-ips 192.168.241.{peer_addr}/32,fd00::{peer_addr}/128")
        for ns, me, addr in ((self.ns1, self.wg1, "1"), (self.ns2, self.wg2, "2")):
            ns.run(f"ip addr add 192.168.241.{addr}/24 dev {me}")
            ns.run(f"ip addr add fd00::{addr}/24 dev {me} nodad")
            ns.run(f"ip link set up dev {me}")

    def endpoints(self, ns, me: str) -> str:
        return ns.run(f"wg show {me} endpoints").stdout.strip()

    def set_endpoints(self, host1: str, host2: str) -> None:
        """wg1's peer at host1:20000, wg2's peer at host2:10000 (hosts as wg writes them)."""
        self.wgns1.run(f"wg set {self.wg1} listen-port {PORT1} peer {self.k2.public_b64} endpoint {host1}:{PORT2}")
        self.wgns2.run(f"wg set {self.wg2} listen-port {PORT2} peer {self.k1.public_b64} endpoint {host2}:{PORT1}")


def start_userspace(ns, name: str) -> None:
    """`wgscope-userspace NAME` as wg-quick or netns.sh run wireguard-go: returns once ready."""
    r = ns.run(f"{USERSPACE} {name}", check=False, timeout=30)
    assert r.returncode == 0, f"wgscope-userspace {name}: {r.stdout}{r.stderr}"


def flood(ns, dst: str, count: int = 10) -> None:
    """The script's `ping -c 10 -f -W 1`; it checks the exit status (some reply came). A flood
    ping stops waiting two round trips after its last request, so one late reply on a loaded
    machine counts as lost: at most one may be."""
    r = ns.run(f"ping -c {count} -f -W 1 {dst}", check=False, timeout=15)
    received = re.search(r"(\d+) received", r.stdout)
    assert r.returncode == 0 and received and int(received.group(1)) >= count - 1, r.stdout + r.stderr


def ping1(ns, dst: str) -> None:
    """The script's `ping -W 1 -c 1`, with one retry for a handshake under a loaded machine."""
    for _ in range(2):
        if ns.run(f"ping -W 1 -c 1 {dst}", check=False, timeout=5).returncode == 0:
            return
    raise AssertionError(f"ping {dst} from {ns.name} failed")


def iperf(server_ns, client_ns, bind: str, udp: bool = False) -> None:
    """iperf3 one transfer (TCP 8 MB, or UDP 2 MB unpaced), bounded in bytes and time."""
    server = server_ns.popen(["iperf3", "-s", "-1", "-B", bind], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = re.compile(r":5201\b")
    wait_for(lambda: port.search(server_ns.run("ss -tln").stdout), 10, what="iperf3 to listen")
    extra = "-n 2M -b 0 -u" if udp else "-n 8M"
    r = client_ns.run(f"timeout 30 iperf3 -Z {extra} -c {bind}", check=False, timeout=40)
    server.wait(15)
    assert r.returncode == 0, r.stdout + r.stderr


def traffic(p: Pair) -> None:
    """The script's tests(): flood pings and iperf3 both ways, IPv4 and IPv6 inside."""
    flood(p.ns2, "192.168.241.1")
    flood(p.ns1, "192.168.241.2")
    flood(p.ns2, "fd00::1")
    flood(p.ns1, "fd00::2")
    iperf(p.ns2, p.ns1, "192.168.241.2")
    iperf(p.ns1, p.ns2, "fd00::1")
    iperf(p.ns1, p.ns2, "192.168.241.1", udp=True)
    iperf(p.ns2, p.ns1, "fd00::2", udp=True)


def link_bytes(ns, dev: str) -> tuple[int, int]:
    """rx and tx bytes from `ip -stats link show`, read as the script reads them."""
    lines = ns.run(f"ip -stats link show dev {dev}").stdout.splitlines()
    return int(lines[3].split()[0]), int(lines[5].split()[0])


def mtu_of(ns, dev: str) -> int:
    return int(re.search(r"mtu (\d+)", ns.run(f"ip link show dev {dev}").stdout).group(1))


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """ns0 with lo and both nodes; wg1's TUN in ns1, wg2's in ns2."""
    require_tools(*TOOLS)
    tmp = tmp_path_factory.mktemp("netns-lo")
    with namespaces("L0", "L1", "L2") as (n0, n1, n2):
        pair = Pair(tmp, n1, n2, n0, n0)
        for name, ns in ((pair.wg1, n1), (pair.wg2, n2)):
            start_userspace(n0, name)
            n0.run(f"ip link set {name} netns {ns.name}")
        pair.configure()
        pair.n0 = n0
        pair.orig_mtu = mtu_of(n1, pair.wg1)
        yield pair


def _mtu(p: Pair, mtu: int) -> None:
    p.ns1.run(f"ip link set {p.wg1} mtu {mtu}")
    p.ns2.run(f"ip link set {p.wg2} mtu {mtu}")


def test_counters_after_a_flood_ping(loopback):
    p = loopback
    p.set_endpoints("127.0.0.1", "127.0.0.1")
    flood(p.ns2, "192.168.241.1")  # the handshake, then counted traffic
    rx0, tx0 = link_bytes(p.ns2, p.wg2)
    flood(p.ns2, "192.168.241.1")
    rx, tx = link_bytes(p.ns2, p.wg2)
    # the script's bounds, for 10 echo replies in and 10 requests out of 84 bytes each
    assert 840 <= rx - rx0 < 2500 and tx - tx0 >= 880 - 40, (rx - rx0, tx - tx0)


@pytest.mark.parametrize("outer", ["4", "6"])
@pytest.mark.parametrize("big", [False, True], ids=["mtu", "big_mtu"])
def test_pings_and_iperf_both_ways(loopback, outer, big):
    """The script's tests() with IPv4 and IPv6 outside, at the MTU and at 34816 - 1500 + MTU."""
    p = loopback
    host = "127.0.0.1" if outer == "4" else "[::1]"
    p.set_endpoints(host, host)
    _mtu(p, 34816 - 1500 + p.orig_mtu if big else p.orig_mtu)
    try:
        traffic(p)
    finally:
        _mtu(p, p.orig_mtu)
    assert p.endpoints(p.n0, p.wg2) == f"{p.k1.public_b64}\t{host}:{PORT1}"


def test_roaming_ipv4_after_the_local_address_is_removed(loopback):
    """127.0.0.1 goes, 127.212.121.99 comes, wg1 moves to port 9999: wg2 learns the new
    source address and port from wg1's next packet (no source stays pinned to a gone address)."""
    p = loopback
    p.set_endpoints("127.0.0.1", "127.0.0.1")
    ping1(p.ns1, "fd00::2")  # wg2's reply pins wg1's source for 127.0.0.1:20000 to 127.0.0.1
    p.n0.run("ip -4 addr del 127.0.0.1/8 dev lo")
    try:
        p.n0.run("ip -4 addr add 127.212.121.99/8 dev lo")
        p.n0.run(f"wg set {p.wg1} listen-port 9999")
        p.n0.run(f"wg set {p.wg1} peer {p.k2.public_b64} endpoint 127.0.0.1:{PORT2}")
        ping1(p.ns1, "fd00::2")
        assert p.endpoints(p.n0, p.wg2) == f"{p.k1.public_b64}\t127.212.121.99:9999"
    finally:
        p.n0.run("ip -4 addr del 127.212.121.99/8 dev lo", check=False)
        p.n0.run("ip -4 addr add 127.0.0.1/8 dev lo", check=False)


def test_roaming_ipv6_after_a_new_listen_port(loopback):
    p = loopback
    p.set_endpoints("127.0.0.1", "127.0.0.1")
    ping1(p.ns1, "192.168.241.2")
    p.n0.run(f"wg set {p.wg1} listen-port 9998")
    p.n0.run(f"wg set {p.wg1} peer {p.k2.public_b64} endpoint [::1]:{PORT2}")
    ping1(p.ns1, "192.168.241.2")
    assert p.endpoints(p.n0, p.wg2) == f"{p.k1.public_b64}\t[::1]:9998"


def _udp_arrives(p: Pair) -> bool:
    """One UDP datagram from ns2 to 192.168.241.1:1111; does the listener in ns1 get it in 1 s?"""
    listener = p.ns1.popen(["timeout", "3", "python3", "-c", (
        "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('192.168.241.1',1111));"
        "print('ready',flush=True); s.settimeout(1)\ntry: print(s.recv(9).decode(),flush=True)\n"
        "except OSError: print('none',flush=True)")], stdout=subprocess.PIPE, text=True)
    assert listener.stdout.readline().strip() == "ready"
    p.ns2.run("python3 -c \"import socket; socket.socket(socket.AF_INET,socket.SOCK_DGRAM)"
              ".sendto(b'X',('192.168.241.1',1111))\"")
    out, _ = listener.communicate(timeout=5)
    return out.strip() == "X"


def test_crypto_routing_reverse_path_filter(loopback):
    """wg1 widens wg2's allowed IPs to 192.168.241.0/24: a datagram from .2 arrives. A more
    specific peer for .2/32 on wg1 then owns that source: wg2's datagrams from .2 are dropped.
    wg2 moved to port 9997 meanwhile, and wg1 learned it (the packet authenticated)."""
    p = loopback
    p.set_endpoints("[::1]", "[::1]")
    p.n0.run(f"wg set {p.wg1} peer {p.k2.public_b64} allowed-ips 192.168.241.0/24")
    other = Keys()
    try:
        ping1(p.ns2, "192.168.241.1")
        assert _udp_arrives(p)
        p.n0.run(f"wg set {p.wg1} peer {other.public_b64} allowed-ips 192.168.241.2/32")
        p.n0.run(f"wg set {p.wg2} listen-port 9997")
        assert not _udp_arrives(p)
        p.n0.run(f"wg set {p.wg1} peer {other.public_b64} remove")
        assert p.endpoints(p.n0, p.wg1) == f"{p.k2.public_b64}\t[::1]:9997"
    finally:
        p.n0.run(f"wg set {p.wg1} peer {other.public_b64} remove", check=False)
        p.n0.run(f"wg set {p.wg1} peer {p.k2.public_b64} allowed-ips 192.168.241.2/32,fd00::2/128")


def test_deleting_a_moved_interface_stops_its_node(loopback):
    """`ip link del` in the namespace the TUN was moved to: the node, in another, exits and its
    UAPI socket goes (the script's teardown, and its cleanup's `ip link del`)."""
    p = loopback
    name = unique("wgs3")
    start_userspace(p.n0, name)
    p.n0.run(f"ip link set {name} netns {p.ns1.name}")
    sock = Path(f"/var/run/wireguard/{name}.sock")
    assert sock.exists()
    p.ns1.run(f"ip link del {name}")
    wait_for(lambda: not sock.exists(), 10, what=f"{name}'s node to stop")
    assert name not in p.n0.run("ip -o link").stdout + p.ns1.run("ip -o link").stdout


@pytest.fixture(scope="module")
def veth_pair(tmp_path_factory):
    """The nodes in ns1 and ns2, joined by veth1 (ns1) - veth2 (ns2)."""
    require_tools(*TOOLS)
    tmp = tmp_path_factory.mktemp("netns-veth")
    with namespaces("S1", "S2") as (n1, n2):
        pair = Pair(tmp, n1, n2, n1, n2)
        start_userspace(n1, pair.wg1)
        start_userspace(n2, pair.wg2)
        pair.configure()
        pair.v1, pair.v2 = unique("vs1"), unique("vs2")
        sh(f"ip link add {pair.v1} netns {n1.name} type veth peer name {pair.v2} netns {n2.name}")
        n1.run(f"sysctl -qw net.ipv6.conf.{pair.v1}.accept_dad=0 net.ipv4.conf.{pair.v1}.promote_secondaries=1")
        n2.run(f"sysctl -qw net.ipv6.conf.{pair.v2}.accept_dad=0")
        yield pair


def _addresses(p: Pair, mine: list[str], theirs: list[str]) -> None:
    for ns, dev, addrs in ((p.ns1, p.v1, mine), (p.ns2, p.v2, theirs)):
        ns.run(f"ip link set {dev} down")
        ns.run(f"ip addr flush dev {dev}")
        for addr in addrs:
            ns.run(f"ip addr add {addr} dev {dev}")
        ns.run(f"ip link set {dev} up")
    for ns, dev in ((p.ns1, p.v1), (p.ns2, p.v2)):
        wait_for(lambda: "state UP" in ns.run(f"ip link show {dev}").stdout, 5, what=f"{dev} up")


def test_source_is_sticky_but_not_too_sticky(veth_pair):
    """wg1 keeps sending after its source address is replaced, over IPv4 and IPv6."""
    p = veth_pair
    _addresses(p, ["10.0.0.1/24", "fd00:aa::1/96"], ["10.0.0.2/24", "fd00:aa::2/96"])
    p.ns1.run(f"wg set {p.wg1} peer {p.k2.public_b64} endpoint 10.0.0.2:{PORT2}")
    ping1(p.ns1, "192.168.241.2")
    p.ns1.run(f"ip addr add 10.0.0.10/24 dev {p.v1}")
    p.ns1.run(f"ip addr del 10.0.0.1/24 dev {p.v1}")
    ping1(p.ns1, "192.168.241.2")
    p.ns1.run(f"wg set {p.wg1} peer {p.k2.public_b64} endpoint [fd00:aa::2]:{PORT2}")
    ping1(p.ns1, "192.168.241.2")
    p.ns1.run(f"ip addr add fd00:aa::10/96 dev {p.v1}")
    p.ns1.run(f"ip addr del fd00:aa::1/96 dev {p.v1}")
    ping1(p.ns1, "192.168.241.2")


@pytest.mark.parametrize("target", ["10.0.0.1", "[fd00:aa::1]", "10.0.0.2", "[fd00:aa::2]"])
def test_replies_leave_from_the_address_written_to(veth_pair, target):
    """wg1 has two addresses of each family; whichever wg2 writes to, wg1's reply comes from it,
    so wg2's endpoint stays what it set."""
    p = veth_pair
    if "state UP" not in p.ns1.run(f"ip link show {p.v1}").stdout or \
            "10.0.0.2/24" not in p.ns1.run(f"ip addr show {p.v1}").stdout:
        _addresses(p, ["10.0.0.1/24", "10.0.0.2/24", "fd00:aa::1/96", "fd00:aa::2/96"],
                   ["10.0.0.3/24", "fd00:aa::3/96"])
    p.ns2.run(f"wg set {p.wg2} peer {p.k1.public_b64} endpoint {target}:{PORT1}")
    ping1(p.ns2, "192.168.241.1")
    assert p.endpoints(p.ns2, p.wg2) == f"{p.k1.public_b64}\t{target}:{PORT1}"
