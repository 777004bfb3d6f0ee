"""`doctor --probe` proves the whole path at full size: a path MTU black hole two hops away.

Three namespaces: us (192.0.2.1) — router — peer (198.51.100.2, wireguard-go). The router's link
to the peer has MTU 1400 and the router's "fragmentation needed" answers are dropped (a firewall
that eats ICMP), so a full-size datagram leaves us without error and dies silently beyond the
first hop: the case in which the DF send alone said "healthy ... path MTU 1500".
"""

from __future__ import annotations

import pytest

from conftest import require_tools
from netns import namespaces, veth
from test_doctor_probe import Setup, codes, probe_of, start_wireguard_go
from wgscope.keytext import pubkey

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]


def test_black_hole_beyond_the_first_hop(tmp_path):
    require_tools("wg", "wireguard-go", "ip", "iptables")
    with namespaces("pu", "pr", "pp") as (us, router, peer):
        veth(us, "192.0.2.1/24", router, "192.0.2.254/24", mtu=1500)
        veth(router, "198.51.100.254/24", peer, "198.51.100.2/24", mtu=1400)
        us.run("ip route add 198.51.100.0/24 via 192.0.2.254")
        peer.run("ip route add 192.0.2.0/24 via 198.51.100.254")
        router.run("sysctl -qw net.ipv4.ip_forward=1")
        router.run("iptables -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP")
        net = Setup(us, peer, start_wireguard_go(peer), tmp_path)
        net.peer_config()
        config = tmp_path / "far.conf"
        config.write_text(f"[Interface]\nPrivateKey = {net.our_private}\nAddress = 10.9.0.1/24\nMTU = 1420\n\n"
                          f"[Peer]\nPublicKey = {pubkey(net.peer_private)}\nAllowedIPs = 10.9.0.2/32\n"
                          f"Endpoint = 198.51.100.2:51820\n")
        config.chmod(0o600)
        rc, doc, _ = net.doctor(str(config))
    probe = probe_of(doc)
    assert probe["outcome"] == "handshake_ok"
    assert probe["path_mtu"]["fits"] is True and probe["path_mtu"]["path_mtu"] == 1500  # the first hop said yes
    echo = probe["path_mtu"]["echo"]
    assert echo["small"]["reply"] and not echo["full"]["reply"]
    assert codes(doc) == {"probe_mtu_black_hole"} and rc == 3
    assert doc["verdict"].startswith("problem: full-size packets do not cross the path")
