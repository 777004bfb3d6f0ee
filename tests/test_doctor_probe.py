"""`wgscope doctor --probe` against wireguard-go: every failure mode produced for real.

Two namespaces joined by a veth (192.0.2.1 us, 192.0.2.2 the peer). wireguard-go runs in the
peer namespace and each test reconfigures it with `wg setconf`; doctor runs in ours through the
CLI, exactly as a user would, with a short --timeout so each probe takes a second or two.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import require_tools
from netns import namespaces, unique, veth, wait_for
from wgscope.keytext import genkey, pubkey

pytestmark = pytest.mark.root

US, PEER = "192.0.2.1", "192.0.2.2"
PORT = 51820
TIMEOUT = 1.5


class Setup:
    def __init__(self, us, peer, ifname, tmp):
        self.us, self.peer, self.ifname, self.tmp = us, peer, ifname, tmp
        self.our_private, self.peer_private = genkey(), genkey()
        self.psk = genkey()

    def peer_config(self, knows: str | None = None, psk: str | None = None) -> None:
        """Configure wireguard-go: listening on PORT, with one peer (us, unless `knows` says otherwise)."""
        lines = ["[Interface]", f"PrivateKey = {self.peer_private}", f"ListenPort = {PORT}", "",
                 "[Peer]", f"PublicKey = {knows or pubkey(self.our_private)}", "AllowedIPs = 10.9.0.1/32"]
        if psk:
            lines.append(f"PresharedKey = {psk}")
        path = self.tmp / "peer.conf"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        self.peer.run(f"wg setconf {self.ifname} {path}")

    def our_config(self, peer_public: str | None = None, psk: str | None = None, port: int = PORT,
                   mtu: int | None = None) -> str:
        lines = ["[Interface]", f"PrivateKey = {self.our_private}", "Address = 10.9.0.1/24"]
        if mtu:
            lines.append(f"MTU = {mtu}")
        lines += ["", "[Peer]", f"PublicKey = {peer_public or pubkey(self.peer_private)}",
                  "AllowedIPs = 10.9.0.2/32", f"Endpoint = {PEER}:{port}"]
        if psk:
            lines.append(f"PresharedKey = {psk}")
        path = self.tmp / "us.conf"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return str(path)

    def doctor(self, config: str, *extra: str) -> tuple[int, dict, str]:
        argv = [sys.executable, "-m", "wgscope.cli", "doctor", config, "--probe", "--json",
                "--timeout", str(TIMEOUT), *extra]
        p = subprocess.run(["ip", "netns", "exec", self.us.name, *argv], capture_output=True, text=True,
                           timeout=30)
        assert "Traceback" not in p.stderr, p.stderr
        return p.returncode, json.loads(p.stdout), p.stderr


def start_wireguard_go(peer) -> str:
    """wireguard-go in `peer`'s namespace with tunnel address 10.9.0.2/24, not yet configured; its name."""
    ifname = unique("dpwg")
    peer.popen(["wireguard-go", "-f", ifname], env={"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"},
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: peer.run(f"ip link show {ifname}", check=False).returncode == 0, 5, what="wireguard-go")
    peer.run(f"ip addr add 10.9.0.2/24 dev {ifname}")
    peer.run(f"ip link set {ifname} up")
    return ifname


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    require_tools("wg", "wireguard-go", "ip")
    tmp = tmp_path_factory.mktemp("doctor")
    with namespaces("du", "dp") as (us, peer):
        veth(us, f"{US}/24", peer, f"{PEER}/24", mtu=1500)
        yield Setup(us, peer, start_wireguard_go(peer), tmp)


def probe_of(doc: dict) -> dict:
    assert len(doc["probe"]) == 1
    return doc["probe"][0]


def codes(doc: dict) -> set[str]:
    return {f["code"] for f in doc["findings"] if f["severity"] in ("warning", "error")}


def test_healthy(net):
    net.peer_config()
    rc, doc, err = net.doctor(net.our_config())
    assert "replaces the peer's current session" in err  # the warning comes first, on stderr
    probe = probe_of(doc)
    assert probe["outcome"] == "handshake_ok" and probe["rtt"] > 0
    assert rc == 0 and doc["status"] == "healthy" and doc["verdict"].startswith("healthy: handshake")
    assert probe["path_mtu"]["fits"] is True
    # what the MTU check proved, exactly: the first hop by the DF send, the whole path by a full-size ping
    echo = probe["path_mtu"]["echo"]
    assert echo["small"]["reply"] and echo["full"]["reply"] and echo["full"]["size"] == 1420
    assert echo["full"]["outer_size"] == 1480 and echo["full"]["reply_size"] == 1420
    evidence = " ".join(doc["findings"][0]["evidence"])
    assert "the first hop takes it" in evidence and "proves nothing about hops further on" in evidence
    assert "the whole path carries MTU 1420 both ways" in evidence
    # the peer really has a session with us now
    assert "latest handshake" in net.peer.run(f"wg show {net.ifname}").stdout


def test_wrong_peer_public_key_in_our_config(net):
    net.peer_config()
    rc, doc, _ = net.doctor(net.our_config(peer_public=pubkey(genkey())))
    assert probe_of(doc)["outcome"] == "silence" and rc == 3
    f = next(f for f in doc["findings"] if f["code"] == "probe_silence")
    # key mistakes first, then firewall, then endpoint
    why = f["explanation"]
    assert why.index("public key") < why.index("firewall") < why.index("Endpoint is wrong")
    assert pubkey(net.our_private) in why  # tells the user which key the peer must list


def test_our_key_unknown_to_peer(net):
    net.peer_config(knows=pubkey(genkey()))
    rc, doc, _ = net.doctor(net.our_config())
    assert probe_of(doc)["outcome"] == "silence" and codes(doc) == {"probe_silence"} and rc == 3


def test_psk_mismatch(net):
    net.peer_config(psk=net.psk)
    rc, doc, _ = net.doctor(net.our_config())  # we have none
    assert probe_of(doc)["outcome"] == "psk_mismatch" and codes(doc) == {"probe_psk_mismatch"} and rc == 3
    assert any(e["event"] == "handshake_response_rejected" and e["reason"] == "decryption_failed"
               for e in probe_of(doc)["events"])
    rc, doc, _ = net.doctor(net.our_config(psk=genkey()))  # both have one, different
    assert probe_of(doc)["outcome"] == "psk_mismatch"
    rc, doc, _ = net.doctor(net.our_config(psk=net.psk))  # the same: healthy
    assert probe_of(doc)["outcome"] == "handshake_ok" and rc == 0


def test_udp_dropped_by_firewall(net):
    require_tools("iptables")
    net.peer_config()
    rule = f"INPUT -p udp --dport {PORT} -j DROP"
    net.peer.run(f"iptables -A {rule}")
    try:
        rc, doc, _ = net.doctor(net.our_config())
    finally:
        net.peer.run(f"iptables -D {rule}")
    probe = probe_of(doc)
    assert probe["outcome"] == "silence" and probe["initiations"] >= 2 and rc == 3
    assert "iptables" in next(f for f in doc["findings"] if f["code"] == "probe_silence")["explanation"]


def test_nothing_listening(net):
    net.peer_config()
    rc, doc, _ = net.doctor(net.our_config(port=PORT + 9))
    assert probe_of(doc)["outcome"] == "port_unreachable" and codes(doc) == {"probe_port_unreachable"}
    assert doc["verdict"] == f"problem: nothing listens on {PEER}:{PORT + 9}"


RESPONDER = textwrap.dedent("""
    import socket, sys, time
    from wgscope.keytext import decode
    from wgscope.protocol.actions import SendDatagram
    from wgscope.protocol.device import Device
    private, initiator, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = time.monotonic()
    now = lambda: time.monotonic() - t0
    device = Device(decode(private), listen_port=port)
    device.add_peer(decode(initiator), allowed_ips=[])
    device.set_forced_load(True, now())
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    print("ready", flush=True)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            data, src = s.recvfrom(65535)
        except socket.timeout:
            continue
        for action in device.receive_datagram(data, src, now()):
            if isinstance(action, SendDatagram):
                s.sendto(action.data, action.endpoint)
        print("cookies_sent", device.cookies_sent, flush=True)
""")


def test_peer_under_load(net):
    """A wgscope responder forced into cookie mode: the probe gets a cookie, retries with mac2, completes."""
    port = PORT + 1
    responder = net.peer.popen([sys.executable, "-c", RESPONDER, net.peer_private, pubkey(net.our_private),
                                str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert responder.stdout.readline().strip() == "ready"
        rc, doc, _ = net.doctor(net.our_config(port=port))
    finally:
        responder.kill()
    probe = probe_of(doc)
    assert probe["outcome"] == "under_load_ok" and probe["cookie_replies"] == 1 and probe["initiations"] == 2
    names = [e["event"] for e in probe["events"]]
    assert names.index("cookie_reply_received") < names.index("cookie_used") < names.index("handshake_completed")
    assert rc == 0 and doc["status"] == "warning" and "under load" in doc["verdict"]


def test_mtu_too_large(net):
    """Underlay MTU 1400, tunnel MTU 1420: static check and a full-size packet with DF both say so."""
    net.peer_config()
    dev = net.us.run("ip -o link show type veth").stdout.split(":")[1].strip().split("@")[0]
    net.us.run(f"ip link set {dev} mtu 1400")
    try:
        rc, doc, _ = net.doctor(net.our_config(mtu=1420))
    finally:
        net.us.run(f"ip link set {dev} mtu 1500")
    probe = probe_of(doc)
    assert probe["outcome"] == "handshake_ok"
    assert probe["path_mtu"]["fits"] is False and probe["path_mtu"]["outer_size"] == 1480
    assert codes(doc) == {"mtu_too_large", "probe_mtu_too_large"} and rc == 3
    assert "at most 1340" in doc["verdict"]


def test_no_route_to_the_endpoint_is_a_finding(tmp_path):
    """A namespace with no route to the endpoint: connect() fails with ENETUNREACH before any
    initiation leaves, and that is the host_unreachable finding, not an OSError for the whole run."""
    with namespaces("dn") as (us,):
        setup = Setup(us, None, None, tmp_path)
        rc, doc, _ = setup.doctor(setup.our_config())
    probe = probe_of(doc)
    assert probe["outcome"] == "host_unreachable" and probe["initiations"] == 0
    assert "ENETUNREACH" in " ".join(probe["evidence"])
    assert codes(doc) == {"probe_host_unreachable"} and rc == 3
