"""The UAPI text protocol without sockets: get/set semantics and errors, against a real Device."""

from __future__ import annotations

import errno

import pytest

from wgscope.events import DEBUG, EventBus, EventRecorder
from wgscope.protocol.actions import SendDatagram
from wgscope.protocol.crypto import public_key
from wgscope.protocol.device import Device
from wgscope.uapi import UapiConnection, handle_get, handle_request, handle_set

PRIV = bytes(range(1, 33))
PEER_A = public_key(bytes(range(2, 34)))
PEER_B = public_key(bytes(range(3, 35)))
PSK = bytes([7]) * 32


class Node:
    """Just what the protocol needs: a real Device, a clock, an adapter that records actions."""

    name = "wguunit"

    def __init__(self) -> None:
        self.bus = EventBus(DEBUG)
        self.events = EventRecorder()
        self.bus.subscribe(self.events, DEBUG)
        self.device = Device(PRIV, bus=self.bus, listen_port=51820, wall_offset=1_700_000_000.0)
        self.clock = 10.0
        self.actions: list = []
        self.taken_ports = {51999}

    def now(self) -> float:
        return self.clock

    def apply(self, actions: list) -> None:
        self.actions += actions

    def set_listen_port(self, port: int) -> int:
        if port in self.taken_ports:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return port or 40404


def set_text(*lines: str) -> str:
    return "set=1\n" + "".join(f"{line}\n" for line in lines) + "\n"


def test_get_of_an_empty_device_lists_key_and_port():
    node = Node()
    assert handle_get(node) == f"private_key={PRIV.hex()}\nlisten_port=51820\nerrno=0\n\n"


def test_set_adds_a_peer_and_get_reports_every_field_in_order():
    node = Node()
    reply = handle_request(node, set_text(
        f"public_key={PEER_A.hex()}", f"preshared_key={PSK.hex()}", "endpoint=[2001:db8::1]:51821",
        "persistent_keepalive_interval=25", "replace_allowed_ips=true", "allowed_ip=10.0.0.7/24",
        "allowed_ip=2001:db8:1::/48", "protocol_version=1"))
    assert reply == "errno=0\n\n"
    peer = node.device.peers[PEER_A]
    peer.last_handshake_wall = 1_700_000_123.25
    peer.tx_bytes, peer.rx_bytes = 1234, 5678
    assert handle_get(node).splitlines() == [
        f"private_key={PRIV.hex()}", "listen_port=51820",
        f"public_key={PEER_A.hex()}", f"preshared_key={PSK.hex()}", "protocol_version=1",
        "endpoint=[2001:db8::1]:51821", "last_handshake_time_sec=1700000123", "last_handshake_time_nsec=250000000",
        "tx_bytes=1234", "rx_bytes=5678", "persistent_keepalive_interval=25",
        "allowed_ip=10.0.0.0/24", "allowed_ip=2001:db8:1::/48", "errno=0", ""]
    # turning keepalive on sends one at once: no session yet, so an initiation goes out
    assert [type(a) for a in node.actions] == [SendDatagram]
    assert node.actions[0].endpoint == ("2001:db8::1", 51821)
    names = node.events.names()
    assert names.index("peer_added") < names.index("uapi_set")


def test_update_only_remove_and_own_key_are_honoured():
    node = Node()
    own = node.device.public_key
    assert handle_set(node, [f"public_key={PEER_A.hex()}", "update_only=true", "allowed_ip=10.1.0.0/16",
                             f"public_key={own.hex()}", "allowed_ip=10.2.0.0/16"]) == 0
    assert node.device.peers == {}
    assert handle_set(node, [f"public_key={PEER_A.hex()}", "allowed_ip=10.1.0.0/16"]) == 0
    assert handle_set(node, [f"public_key={PEER_A.hex()}", "update_only=true", "endpoint=192.0.2.9:7"]) == 0
    assert node.device.peers[PEER_A].endpoint == ("192.0.2.9", 7)
    assert handle_set(node, [f"public_key={PEER_A.hex()}", "remove=true"]) == 0
    assert node.device.peers == {} and node.device.allowed_ips.lookup("10.1.2.3") is None


def test_allowed_ips_move_between_peers_and_replace():
    node = Node()
    handle_set(node, [f"public_key={PEER_A.hex()}", "allowed_ip=10.0.0.0/8", "allowed_ip=192.0.2.1/32"])
    handle_set(node, [f"public_key={PEER_B.hex()}", "allowed_ip=192.0.2.1/32"])
    a, b = node.device.peers[PEER_A], node.device.peers[PEER_B]
    assert node.device.allowed_ips.lookup("192.0.2.1") is b
    assert [str(n) for n in node.device.allowed_ips.networks(a)] == ["10.0.0.0/8"]
    handle_set(node, [f"public_key={PEER_A.hex()}", "replace_allowed_ips=true", "allowed_ip=172.16.0.0/12"])
    assert [str(n) for n in node.device.allowed_ips.networks(a)] == ["172.16.0.0/12"]


def test_resending_the_same_configuration_changes_nothing():
    """wg syncconf resends every peer in full; a peer whose settings are the same is left alone."""
    node = Node()
    block = [f"public_key={PEER_A.hex()}", f"preshared_key={PSK.hex()}", "endpoint=192.0.2.2:51820",
             "persistent_keepalive_interval=0", "replace_allowed_ips=true", "allowed_ip=10.0.0.2/32"]
    handle_set(node, [f"private_key={PRIV.hex()}", "listen_port=51820", *block])
    node.events.clear()
    assert handle_set(node, [f"private_key={PRIV.hex()}", "listen_port=51820", *block]) == 0
    assert node.events.names() == ["uapi_set"]


def test_replace_peers_removes_the_others():
    node = Node()
    handle_set(node, [f"public_key={PEER_A.hex()}", f"public_key={PEER_B.hex()}"])
    handle_set(node, ["replace_peers=true", f"public_key={PEER_B.hex()}"])
    assert list(node.device.peers) == [PEER_B]
    assert "peer_removed" in node.events.names()


def test_listen_port_in_use_is_eaddrinuse_and_zero_binds_anywhere():
    node = Node()
    assert handle_set(node, ["listen_port=51999"]) == errno.EADDRINUSE
    assert node.device.listen_port == 51820
    assert handle_set(node, ["listen_port=0"]) == 0
    assert node.device.listen_port == 40404
    assert handle_set(node, ["fwmark=4660"]) == 0 and node.device.fwmark == 4660
    assert "fwmark=4660" in handle_get(node)


@pytest.mark.parametrize("line, code", [
    ("listen_port=65536", errno.EINVAL), ("listen_port=-1", errno.EINVAL), ("listen_port=+1", errno.EINVAL),
    ("fwmark=4294967296", errno.EINVAL), ("private_key=abc", errno.EINVAL), ("replace_peers=false", errno.EINVAL),
    ("no_such_key=1", errno.EINVAL), ("just words", errno.EPROTO), ("allowed_ip=10.0.0.0/8", errno.EINVAL),
    (f"public_key={'g' * 64}", errno.EINVAL),
])
def test_malformed_device_lines(line, code):
    node = Node()
    assert handle_request(node, set_text(line)) == f"errno=-{code}\n\n"
    ev = node.events.of("uapi_set")[-1]
    assert ev.fields["errno"] == code and ev.fields["reason"]


@pytest.mark.parametrize("line", [
    "endpoint=2001:db8::1:51820", "endpoint=[192.0.2.1]:5", "endpoint=host.example:51820", "endpoint=192.0.2.1",
    "endpoint=192.0.2.1:70000", "allowed_ip=10.0.0.0", "allowed_ip=10.0.0.0/33", "allowed_ip=10.0.0.0/255.0.0.0",
    "allowed_ip=fe80::1%eth0/64", "allowed_ip=2001:db8::/129", "persistent_keepalive_interval=65536",
    "protocol_version=2", "remove=1", "update_only=yes", "replace_allowed_ips=false", "private_key=" + "0" * 64,
    f"preshared_key={'0' * 63}",
])
def test_malformed_peer_lines_keep_what_came_before(line):
    node = Node()
    reply = handle_request(node, set_text(f"public_key={PEER_A.hex()}", "allowed_ip=10.9.0.0/16", line,
                                          "allowed_ip=10.8.0.0/16"))
    assert reply == f"errno=-{errno.EINVAL}\n\n"
    # as wireguard-go: the block being parsed is completed with what came before the error
    assert [str(n) for n in node.device.allowed_ips.networks(node.device.peers[PEER_A])] == ["10.9.0.0/16"]


def test_requests_split_anywhere_and_several_per_connection():
    node = Node()
    text = (set_text(f"public_key={PEER_A.hex()}", "allowed_ip=10.0.0.1/32") + "get=1\n\n" +
            "get=1\nnope\n\n" + "bogus=1\nmore\n\n" + "get=1\n\n").encode()
    whole = UapiConnection(Node()).feed(text)
    conn = UapiConnection(node)
    pieces = b"".join(conn.feed(text[i:i + 1]) for i in range(len(text)))
    assert pieces == whole
    replies = pieces.decode().split("\n\n")
    assert replies[0] == "errno=0"
    assert replies[1].endswith("allowed_ip=10.0.0.1/32\nerrno=0")
    assert replies[2] == f"errno={errno.EINVAL}"  # get errors: positive, as wg reads them
    assert replies[3] == f"errno=-{errno.EINVAL}"
    assert replies[4] == replies[1]
    assert not conn.closed and not conn.in_request


def test_a_line_over_the_limit_is_answered_and_closes_the_connection():
    node = Node()
    conn = UapiConnection(node, max_line=100)
    assert conn.feed(b"set=1\nallowed_ip=" + b"1" * 200) == f"errno=-{errno.EMSGSIZE}\n\n".encode()
    assert conn.closed and conn.feed(b"get=1\n\n") == b""


def test_a_client_gone_mid_set_keeps_what_was_sent():
    node = Node()
    conn = UapiConnection(node)
    conn.feed(f"set=1\npublic_key={PEER_A.hex()}\nallowed_ip=10.0.0.0/8\n".encode())
    assert conn.in_request
    conn.eof()
    assert PEER_A in node.device.peers


def test_v4_mapped_endpoints_show_as_ipv4():
    node = Node()
    node.device.add_peer(PEER_A, endpoint=("::ffff:192.0.2.5", 51820))
    assert "endpoint=192.0.2.5:51820" in handle_get(node)
