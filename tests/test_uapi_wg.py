"""The real wg(8) against wgscope's UAPI socket at /var/run/wireguard/NAME.sock.

The node here is the minimum the UAPI needs — a real Device, an asyncio loop in a thread
(the loop that owns the Device and serves the socket), a real UDP socket bound on loopback
for listen-port — so the socket can be checked before the live node exists. Names come from
netns.unique("wgu"): UAPI socket names are global.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import threading
import time

import pytest

from wgscope.events import DEBUG, EventBus, EventRecorder
from wgscope.keytext import encode
from wgscope.protocol.actions import SendDatagram
from wgscope.protocol.crypto import public_key
from wgscope.protocol.device import Device
from wgscope.runtime.uapi_socket import SOCKET_DIRECTORY, UapiSocketError, socket_path, start_uapi_server

from conftest import require_tools
from netns import sh, unique

pytestmark = pytest.mark.root

PRIV = bytes(range(40, 72))
PEERS = [bytes(range(i, i + 32)) for i in (80, 120, 160)]
PUBS = [public_key(k) for k in PEERS]
PSK = bytes([9]) * 32


class LoopNode:
    """name, device, now(), apply(actions), set_listen_port(port): what the UAPI asks of a node."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bus = EventBus(DEBUG)
        self.events = EventRecorder()
        self.bus.subscribe(self.events, DEBUG)
        self.device = Device(PRIV, bus=self.bus, wall_offset=time.time() - time.monotonic(), name=name)
        self.udp: socket.socket | None = None
        self.sent: list[SendDatagram] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = None

    def now(self) -> float:
        return time.monotonic()

    def apply(self, actions: list) -> None:
        for action in actions:
            if type(action) is SendDatagram:
                self.sent.append(action)
                if self.udp is not None and ipaddress.ip_address(action.endpoint[0]).is_loopback:
                    self.udp.sendto(action.data, action.endpoint[:2])  # loopback only: nothing leaves

    def set_listen_port(self, port: int) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            raise
        if self.udp is not None:
            self.udp.close()
        self.udp = sock
        return sock.getsockname()[1]

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> "LoopNode":
        self.device.listen_port = self.set_listen_port(0)
        self.server = self.call(start_uapi_server(self))
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
            self.call(self.server.wait_closed())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if self.udp is not None:
            self.udp.close()


@pytest.fixture
def node():
    require_tools("wg")
    n = LoopNode(unique("wgu")).start()
    try:
        yield n
    finally:
        n.stop()
    assert not os.path.exists(socket_path(n.name)), "the socket file is removed on close"


def wg(*args: str, check: bool = True, input: str | None = None, timeout: float = 60):
    return sh("wg " + " ".join(args), check=check, timeout=timeout, input=input)


def raw(name: str, data: bytes, replies: int = 1, timeout: float = 10) -> bytes:
    """Write `data` to the socket; read until `replies` answers (each ends in a blank line) or EOF."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(socket_path(name))
    s.sendall(data)
    got = b""
    while got.count(b"\n\n") < replies:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    return got


def write_key(tmp_path, name: str, key: bytes) -> str:
    path = tmp_path / name
    path.write_text(encode(key) + "\n")
    path.chmod(0o600)
    return str(path)


def test_socket_file_directory_and_permissions(node):
    st = os.stat(socket_path(node.name))
    assert oct(st.st_mode & 0o777) == "0o600"
    assert oct(os.stat(SOCKET_DIRECTORY).st_mode & 0o777) == "0o755"
    assert node.name in wg("show", "interfaces").stdout.split()


def test_wg_set_show_showconf_and_dump(node, tmp_path):
    port = node.device.listen_port
    wg("set", node.name, "private-key", write_key(tmp_path, "priv", PRIV),
       "peer", encode(PUBS[0]), "preshared-key", write_key(tmp_path, "psk", PSK), "endpoint", "127.0.0.1:9",
       "allowed-ips", "10.0.0.2/32,fd00::2/128",
       "peer", encode(PUBS[1]), "endpoint", "[2001:db8::7]:51820", "allowed-ips", "10.0.1.0/24",
       "persistent-keepalive", "0")
    assert set(node.device.peers) == {PUBS[0], PUBS[1]}
    me = encode(public_key(PRIV))
    assert wg("show", node.name).stdout.splitlines() == [
        f"interface: {node.name}", f"  public key: {me}", "  private key: (hidden)", f"  listening port: {port}",
        "", f"peer: {encode(PUBS[0])}", "  preshared key: (hidden)", "  endpoint: 127.0.0.1:9",
        "  allowed ips: 10.0.0.2/32, fd00::2/128",
        "", f"peer: {encode(PUBS[1])}", "  endpoint: [2001:db8::7]:51820", "  allowed ips: 10.0.1.0/24"]
    assert wg("showconf", node.name).stdout.splitlines() == [
        "[Interface]", f"ListenPort = {port}", f"PrivateKey = {encode(PRIV)}",
        "", "[Peer]", f"PublicKey = {encode(PUBS[0])}", f"PresharedKey = {encode(PSK)}",
        "AllowedIPs = 10.0.0.2/32, fd00::2/128", "Endpoint = 127.0.0.1:9",
        "", "[Peer]", f"PublicKey = {encode(PUBS[1])}", "AllowedIPs = 10.0.1.0/24", "Endpoint = [2001:db8::7]:51820"]
    # counters and the last handshake as the data path would leave them
    peer = node.device.peers[PUBS[0]]
    peer.rx_bytes, peer.tx_bytes = 1000, 2000
    peer.last_handshake_wall = 1_700_000_000.5
    assert wg("show", node.name, "dump").stdout.splitlines() == [
        f"{encode(PRIV)}\t{me}\t{port}\toff",
        f"{encode(PUBS[0])}\t{encode(PSK)}\t127.0.0.1:9\t10.0.0.2/32,fd00::2/128\t1700000000\t1000\t2000\toff",
        f"{encode(PUBS[1])}\t(none)\t[2001:db8::7]:51820\t10.0.1.0/24\t0\t0\t0\toff"]
    assert wg("show", node.name, "latest-handshakes").stdout.splitlines()[0] == f"{encode(PUBS[0])}\t1700000000"
    # events for every change
    names = node.events.names()
    assert names.count("peer_added") == 2 and names[-1] == "uapi_get"
    assert node.events.of("uapi_set")[-1].fields["errno"] == 0

    # change things live: keepalive on (a packet at once), listen port, fwmark, allowed-ips, remove
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    target = receiver.getsockname()[1]
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free.bind(("127.0.0.1", 0))
    new_port = free.getsockname()[1]
    free.close()
    wg("set", node.name, "listen-port", str(new_port), "fwmark", "0x1234",
       "peer", encode(PUBS[0]), "endpoint", f"127.0.0.1:{target}", "persistent-keepalive", "25",
       "allowed-ips", "10.0.0.3/32", "peer", encode(PUBS[1]), "remove")
    data, source = receiver.recvfrom(2048)
    receiver.close()
    assert data[0] == 1 and len(data) == 148 and source[1] == new_port  # a handshake initiation, from the new port
    # transfer counts that initiation (148 bytes) as wireguard-go's txBytes would (peer.SendBuffers)
    assert wg("show", node.name, "dump").stdout.splitlines() == [
        f"{encode(PRIV)}\t{me}\t{new_port}\t0x1234",
        f"{encode(PUBS[0])}\t{encode(PSK)}\t127.0.0.1:{target}\t10.0.0.3/32\t1700000000\t1000\t{2000 + 148}\t25"]
    assert node.device.allowed_ips.lookup("10.0.0.2") is None
    assert node.device.allowed_ips.lookup("10.0.0.3") is node.device.peers[PUBS[0]]
    settings = [e.fields["setting"] for e in node.events.of("config_changed")]
    assert {"listen_port", "fwmark", "persistent_keepalive", "allowed_ips"} <= set(settings)
    assert "peer_removed" in node.events.names() and "endpoint_changed" in node.events.names()


def test_wg_setconf_and_syncconf(node, tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text(f"""[Interface]
PrivateKey = {encode(PRIV)}

[Peer]
PublicKey = {encode(PUBS[0])}
AllowedIPs = 10.1.0.0/16
Endpoint = 127.0.0.1:1

[Peer]
PublicKey = {encode(PUBS[1])}
AllowedIPs = 10.2.0.0/16
""")
    wg("setconf", node.name, str(conf))
    assert set(node.device.peers) == {PUBS[0], PUBS[1]}
    kept = node.device.peers[PUBS[0]]
    conf.write_text(f"""[Interface]
PrivateKey = {encode(PRIV)}

[Peer]
PublicKey = {encode(PUBS[0])}
AllowedIPs = 10.1.0.0/16
Endpoint = 127.0.0.1:1

[Peer]
PublicKey = {encode(PUBS[2])}
AllowedIPs = 10.3.0.0/16, 2001:db8:3::/48
PersistentKeepalive = 0
""")
    node.events.clear()
    wg("syncconf", node.name, str(conf))
    assert set(node.device.peers) == {PUBS[0], PUBS[2]}
    assert node.device.peers[PUBS[0]] is kept  # syncconf leaves an unchanged peer (and its session) alone
    assert not [e for e in node.events.events if e.peer == kept.name]
    assert [e.name for e in node.events.events if e.name.startswith("peer_")] == ["peer_removed", "peer_added"]
    lines = wg("showconf", node.name).stdout.splitlines()
    assert lines[lines.index(f"PublicKey = {encode(PUBS[2])}") + 1] == "AllowedIPs = 10.3.0.0/16, 2001:db8:3::/48"
    # setconf replaces everything: the peer with the same key is a new one
    wg("setconf", node.name, str(conf))
    assert node.device.peers[PUBS[0]] is not kept


def test_wg_show_of_a_missing_interface_fails_cleanly(node):
    missing = unique("wgunone")
    r = wg("show", missing, check=False)
    assert r.returncode != 0 and r.stdout == ""
    # wg falls through to the kernel's netlink family: ENODEV, or EPROTONOSUPPORT without the module
    assert r.stderr.strip() in ("Unable to access interface: No such device",
                                "Unable to access interface: Protocol not supported")
    assert not os.path.exists(socket_path(missing))
    assert "Traceback" not in r.stderr
    assert wg("show", node.name).returncode == 0


def test_wg_errors_are_reported_and_the_node_keeps_running(node):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    try:
        r = wg("set", node.name, "listen-port", str(blocker.getsockname()[1]), check=False)
    finally:
        blocker.close()
    assert r.returncode == 1 and r.stderr.strip() == "Unable to modify interface: Address already in use"
    ev = node.events.of("uapi_set")[-1]
    assert ev.fields["errno"] == errno.EADDRINUSE and "listen_port" in ev.fields["reason"]
    assert wg("show", node.name, "listen-port").stdout.strip() == str(node.device.listen_port)


def test_malformed_raw_input_is_answered_with_an_errno(node):
    replies = raw(node.name, b"set=1\nlisten_port=banana\n\n"
                             b"set=1\npublic_key=" + PUBS[0].hex().encode() + b"\nendpoint=nowhere\n\n"
                             b"set=1\nno equals sign\n\n"
                             b"get=1\ntrailing\n\n"
                             b"launch=1\n\n"
                             b"set=1\n\xff\xfe=1\n\n"
                             b"get=1\n\n", replies=7)
    answers = replies.split(b"\n\n")
    assert answers[:6] == [f"errno=-{errno.EINVAL}".encode(), f"errno=-{errno.EINVAL}".encode(),
                           f"errno=-{errno.EPROTO}".encode(), f"errno={errno.EINVAL}".encode(),
                           f"errno=-{errno.EINVAL}".encode(), f"errno=-{errno.EINVAL}".encode()]
    assert answers[6].endswith(b"errno=0")  # the same connection still answers
    # a line too long closes that connection after the answer; the server carries on
    assert raw(node.name, b"set=1\nallowed_ip=" + b"9" * 100_000) == f"errno=-{errno.EMSGSIZE}\n\n".encode()
    # connect-and-close, as wg probes sockets, and a half request then hang-up
    s = socket.socket(socket.AF_UNIX)
    s.connect(socket_path(node.name))
    s.close()
    s = socket.socket(socket.AF_UNIX)
    s.connect(socket_path(node.name))
    s.sendall(b"set=1\npublic_key=" + PUBS[2].hex().encode() + b"\nallowed_ip=10.7.0.0/16\n")
    s.close()
    assert wg("show", node.name, "allowed-ips").returncode == 0
    assert PUBS[2] in node.device.peers  # what a vanished client sent stays applied (as wireguard-go)
    assert "Traceback" not in repr(node.events.events)


def test_a_second_node_with_the_same_name_is_refused_and_a_stale_socket_is_replaced(node):
    with pytest.raises(UapiSocketError, match="in use"):
        node.call(start_uapi_server(LoopNodeName(node)))
    stale_name = unique("wgustale")
    path = socket_path(stale_name)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)  # bound, never listened, closed: what a killed process leaves
    dead.close()
    other = LoopNode(stale_name).start()
    try:
        assert wg("show", stale_name, "public-key").stdout.strip() == encode(public_key(PRIV))
    finally:
        other.stop()
    assert not os.path.exists(path)


class LoopNodeName:
    """Another node object claiming `node`'s name (its device is never touched)."""

    def __init__(self, node: LoopNode) -> None:
        self.name, self.device, self.now = node.name, node.device, node.now


def test_non_root_clients_are_refused(node):
    require_tools("setpriv")
    nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups "
    # the file mode alone keeps others out ...
    r = sh(nobody + f"wg show {node.name}", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "Unable to access interface: Permission denied"
    # ... and past a loosened mode, the peer credentials still do, as netlink answers EPERM
    os.chmod(socket_path(node.name), 0o666)
    r = sh(nobody + f"wg show {node.name}", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "Unable to access interface: Operation not permitted"
    r = sh(nobody + f"wg set {node.name} listen-port 1", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "Unable to modify interface: Operation not permitted"
    refused = node.events.of("uapi_connection_refused")
    assert len(refused) == 4 and {e.fields["uid"] for e in refused} == {65534}  # wg probes, then asks
    assert node.device.listen_port != 1


def test_setconf_with_200k_allowed_ips_over_many_peers(node, tmp_path):
    """wireguard-tools' netns.sh checks a huge configuration; the get answer is ~8 MB."""
    peers, per_peer = 100, 2000
    keys = [public_key(i.to_bytes(2, "big") * 16) for i in range(1, peers + 1)]
    expected = {}
    parts = [f"[Interface]\nPrivateKey = {encode(PRIV)}\n"]
    for p, key in enumerate(keys):
        nets = [f"10.{p}.{i >> 4 & 255}.{(i & 15) << 4}/28" for i in range(per_peer // 2)]
        nets += [str(ipaddress.ip_network(f"2001:db8:{p:x}:{i:x}::/64")) for i in range(per_peer // 2)]
        expected[encode(key)] = nets
        parts.append(f"[Peer]\nPublicKey = {encode(key)}\nAllowedIPs = {', '.join(nets)}\n")
    conf = tmp_path / "big.conf"
    conf.write_text("\n".join(parts))
    t0 = time.monotonic()
    wg("setconf", node.name, str(conf), timeout=120)
    t_set = time.monotonic() - t0
    t0 = time.monotonic()
    dump = wg("show", node.name, "dump", timeout=120).stdout.splitlines()
    t_get = time.monotonic() - t0
    print(f"setconf of {peers * per_peer} allowed IPs: {t_set:.2f} s; dump: {t_get:.2f} s")
    assert len(dump) == 1 + peers
    got = {line.split("\t")[0]: line.split("\t")[3].split(",") for line in dump[1:]}
    assert got == expected
    assert len(node.device.allowed_ips) == peers * per_peer
    assert node.device.allowed_ips.lookup("10.42.3.37") is node.device.peers[keys[42]]
    assert node.events.of("uapi_set")[-1].fields == {"errno": 0, "reason": None,
                                                    "lines": 4 + peers * (1 + 1 + per_peer)}


def test_a_set_in_progress_holds_off_other_requests(node):
    """One request at a time, as wireguard-go's ipcMutex: a get waits for a streaming set to end."""
    writer = socket.socket(socket.AF_UNIX)
    writer.connect(socket_path(node.name))
    writer.sendall(b"set=1\npublic_key=" + PUBS[0].hex().encode() + b"\nallowed_ip=10.5.0.0/16\n")
    reader = socket.socket(socket.AF_UNIX)
    reader.settimeout(0.5)
    reader.connect(socket_path(node.name))
    reader.sendall(b"get=1\n\n")
    with pytest.raises(socket.timeout):
        reader.recv(65536)
    writer.sendall(b"allowed_ip=10.6.0.0/16\n\n")
    writer.settimeout(5)
    assert writer.recv(100) == b"errno=0\n\n"
    reader.settimeout(5)
    answer = b""
    while not answer.endswith(b"\n\n"):
        answer += reader.recv(65536)
    assert b"allowed_ip=10.5.0.0/16\nallowed_ip=10.6.0.0/16\nerrno=0\n\n" in answer
    writer.close()
    reader.close()


def test_deleting_the_socket_file_tells_the_node(tmp_path):
    require_tools("wg")
    n = LoopNode(unique("wgu"))
    n.device.listen_port = n.set_listen_port(0)
    gone = threading.Event()
    n.server = n.call(start_uapi_server(n, on_removed=gone.set))
    try:
        os.unlink(socket_path(n.name))
        assert gone.wait(5)
    finally:
        n.stop()
