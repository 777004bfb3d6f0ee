"""wg-quick drives wgscope as its userspace implementation, with no wrapper:
WG_QUICK_USERSPACE_IMPLEMENTATION=wgscope-userspace (no kernel module, so wg-quick falls back
to it), against wireguard-go on the other side.

- full tunnel `AllowedIPs = 0.0.0.0/0, ::/0`: wg-quick's fwmark 51820 policy routing sends
  everything but the tunnel's own datagrams through wgscope; an address that exists only
  behind the peer answers, over IPv4 and IPv6; PostUp ran with %i; `wg-quick down` runs
  PreDown, removes its rules and the interface, and the node exits;
- `Table = off`: no route for AllowedIPs, the interface's own subnet still works;
- `DNS`: set through resolvconf (openresolv, in the Makefile's DEBS) inside the client's
  namespace only, and removed again by `wg-quick down`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import require_tools
from livenet import ROOT, Keys, ping, start_wireguard_go, wg_peer
from netns import namespaces, unique, veth, wait_for

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
USERSPACE = str(ROOT / ".venv" / "bin" / "wgscope-userspace")
C4, S4 = "192.0.2.1", "192.0.2.2"
BEYOND4, BEYOND6 = "203.0.113.9", "2001:db8:99::9"  # only on the server's lo: reachable through the tunnel
PORT_S = 51840


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """wireguard-go in S, joined to C by veth; its peer list is set per test."""
    require_tools("wg-quick", "wg", "wireguard-go", "iptables-restore", "ping")
    tmp = tmp_path_factory.mktemp("wgquick")
    with namespaces("C", "S") as (c, s):
        veth(c, f"{C4}/24", s, f"{S4}/24")
        s.run(f"ip addr add {BEYOND4}/32 dev lo")
        s.run(f"ip addr add {BEYOND6}/128 dev lo")
        ks = Keys()
        ifs = unique("wgqs")
        start_wireguard_go(s, ifs, ks, tmp, listen_port=PORT_S, address=["10.6.0.2/24", "fd00:6::2/64"])
        yield dict(c=c, s=s, ks=ks, ifs=ifs, tmp=tmp)


def _client(server, extra: list[str], allowed: str) -> tuple[str, Path, Keys]:
    """A wg-quick file for C (its name is the interface's); the server gets C as its peer."""
    kc, name = Keys(), unique("wgq")
    conf = server["tmp"] / f"{name}.conf"
    conf.write_text("\n".join(["[Interface]", f"PrivateKey = {kc.private_b64}", "Address = 10.6.0.1/24, fd00:6::1/64",
                               *extra, "", "[Peer]", f"PublicKey = {server['ks'].public_b64}",
                               f"AllowedIPs = {allowed}", f"Endpoint = {S4}:{PORT_S}", ""]))
    conf.chmod(0o600)
    wg_peer(server["s"], server["ifs"], kc.public_b64, allowed=["10.6.0.1/32", "fd00:6::1/128"])
    return name, conf, kc


def wg_quick(ns, verb: str, conf: Path):
    r = ns.run(f"env WG_QUICK_USERSPACE_IMPLEMENTATION={USERSPACE} wg-quick {verb} {conf}", check=False, timeout=60)
    assert r.returncode == 0, f"wg-quick {verb}:\n{r.stdout}{r.stderr}"
    return r


def _gone(ns, name: str) -> None:
    wait_for(lambda: not Path(f"/var/run/wireguard/{name}.sock").exists(), 10, what=f"{name}'s node to exit")
    assert name not in ns.run("ip -o link").stdout


def test_full_tunnel_with_hooks(server):
    c, s, tmp = server["c"], server["s"], server["tmp"]
    marks = tmp / "hooks"
    name, conf, kc = _client(server, [f"PostUp = echo up %i >> {marks}", f"PreDown = echo down %i >> {marks}"],
                             "0.0.0.0/0, ::/0")
    r = wg_quick(c, "up", conf)
    try:
        assert "Falling back to slow userspace implementation" in r.stderr
        assert marks.read_text() == f"up {name}\n"
        assert "51820" in c.run("ip -4 rule show").stdout and "51820" in c.run("ip -6 rule show").stdout
        ping(c, BEYOND4, count=2)  # no route to it but the tunnel's default
        ping(c, BEYOND6, count=2)
        dump = c.run(f"wg show {name} dump").stdout.splitlines()
        assert dump[0].split("\t")[3] == "0xca6c"  # wg-quick set fwmark 51820 on our sockets, over the UAPI
        assert f"{C4}:" in [line for line in s.run(f"wg show {server['ifs']} dump").stdout.splitlines()
                            if line.startswith(kc.public_b64)][0]
    finally:
        wg_quick(c, "down", conf)
    assert marks.read_text() == f"up {name}\ndown {name}\n"
    assert "51820" not in c.run("ip -4 rule show").stdout + c.run("ip -6 rule show").stdout
    _gone(c, name)


def test_table_off(server):
    c = server["c"]
    name, conf, _ = _client(server, ["Table = off"], "10.6.0.0/24, 10.66.0.0/16")
    wg_quick(c, "up", conf)
    try:
        routes = c.run("ip route show table all").stdout
        assert "10.66.0.0/16" not in routes
        ping(c, "10.6.0.2", count=2)  # the interface's own subnet, no AllowedIPs route needed
    finally:
        wg_quick(c, "down", conf)
    _gone(c, name)


def test_dns_set_and_removed(server):
    """`ip netns exec` gives the namespace /etc/netns/NAME/resolv.conf as /etc/resolv.conf, so
    resolvconf writes there and the machine's own resolv.conf is never touched."""
    require_tools("resolvconf")
    c = server["c"]
    machine = Path("/etc/resolv.conf").read_bytes()
    private = Path("/etc/netns") / c.name
    private.mkdir(parents=True, exist_ok=True)
    (private / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    try:
        name, conf, _ = _client(server, ["DNS = 10.6.0.53"], "10.6.0.0/24")
        wg_quick(c, "up", conf)
        try:
            assert "10.6.0.53" in c.run("cat /etc/resolv.conf").stdout
        finally:
            wg_quick(c, "down", conf)
        _gone(c, name)
        assert "10.6.0.53" not in c.run("cat /etc/resolv.conf").stdout
        assert Path("/etc/resolv.conf").read_bytes() == machine
    finally:
        shutil.rmtree(private, ignore_errors=True)
