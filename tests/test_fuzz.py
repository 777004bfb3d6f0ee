"""Property tests: the parsers and the whole receive and send paths under random and mutated input.

Only MessageError may leave the parsers; nothing at all may leave Device.receive_datagram,
send_packet or tick; every garbage datagram leaves the protocol state exactly as it was,
the index table agrees with the keypairs, counters stay sane, and the tunnel still carries
pings both ways afterwards. Longer runs: fuzz/atheris_receive.py (fuzz/README.md).
"""

import struct

from fuzz_session import (
    ATTACKER, ATTACKER6, OPS, Session, consistency_problems, fingerprint, header, mutate, remac,
)
from hypothesis import HealthCheck, given, settings, strategies as st

from wgscope.protocol import messages
from wgscope.protocol.constants import COOKIE_REPLY_SIZE, INITIATION_SIZE, RESPONSE_SIZE
from wgscope.protocol.messages import MessageError
from wgscope.runtime import packets

SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REASONS = {"truncated", "oversized", "unknown_type", "reserved_nonzero"}


# ---------------------------------------------------------------- the parsers
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_parse_raises_only_message_error(data):
    try:
        messages.parse(data)
    except MessageError as e:
        assert e.reason in REASONS
    messages.kind_name(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 2, 3, 4]), st.integers(0, 2 ** 24 - 1), st.integers(0, 200),
       st.binary(min_size=200, max_size=200))
def test_typed_header_with_any_body(kind, reserved, length, body):
    data = struct.pack("<I", kind | reserved << 8) + body[:length]
    exact = {1: INITIATION_SIZE, 2: RESPONSE_SIZE, 3: COOKIE_REPLY_SIZE}
    try:
        parsed = messages.parse(data)
    except MessageError as e:
        assert e.reason in REASONS
        assert reserved or (len(data) != exact[kind] if kind in exact else len(data) < 32)
        return
    assert reserved == 0
    if kind == 4:
        head, payload = parsed
        assert messages.pack_transport_header(*head) + payload == data
    else:
        pack = {1: messages.pack_initiation, 2: messages.pack_response, 3: messages.pack_cookie_reply}[kind]
        assert pack(parsed) == data  # parse and pack are inverse


u32 = st.integers(0, 2 ** 32 - 1)


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.builds(messages.Initiation, u32, st.binary(min_size=32, max_size=32), st.binary(min_size=48, max_size=48),
              st.binary(min_size=28, max_size=28), st.binary(min_size=16, max_size=16),
              st.binary(min_size=16, max_size=16)),
    st.builds(messages.Response, u32, u32, st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=16),
              st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16)),
    st.builds(messages.CookieReply, u32, st.binary(min_size=24, max_size=24), st.binary(min_size=32, max_size=32)),
))
def test_pack_then_parse_roundtrip(msg):
    pack = {messages.Initiation: messages.pack_initiation, messages.Response: messages.pack_response,
            messages.CookieReply: messages.pack_cookie_reply}[type(msg)]
    assert messages.parse(pack(msg)) == msg


# ---------------------------------------------------------------- the receive path
mutation = st.tuples(
    st.integers(0, 10 ** 6),                   # which captured packet
    st.sampled_from(OPS),
    st.integers(0, 10 ** 6), st.integers(0, 10 ** 6),
    st.integers(0, 10 ** 6),                   # which packet to splice from
    st.binary(min_size=1, max_size=40),
    st.sampled_from(["origin", "attacker", "attacker6"]),
    st.booleans(),                             # recompute mac1 so the body reaches the Noise code
)


def _deliver_all(s: Session, muts, under_load: bool) -> None:
    """Under load the cookie replies the node sends are not carried back (a's cookie would change)."""
    wires = s.wires
    s.b.device.set_forced_load(under_load or None, s.lab.now)
    before = {n.name: fingerprint(n.device) for n in s.nodes}
    for pick, op, x, y, other, extra, source, fix_mac in muts:
        wire = wires[pick % len(wires)]
        target = s.node_at(wire.dst)
        data = mutate(wire.data, op, x, y, wires[other % len(wires)].data, extra)
        if fix_mac:
            data = remac(data, target.public_key)
        src = {"origin": wire.src, "attacker": ATTACKER, "attacker6": ATTACKER6}[source]
        actions = target.device.receive_datagram(data, src, s.lab.now)
        if not under_load:
            target.apply(actions)
    for node in s.nodes:
        assert fingerprint(node.device) == before[node.name], f"{node.name}'s protocol state changed"
        assert consistency_problems(node.device, s.lab.now) == []


@SLOW
@given(st.lists(mutation, min_size=1, max_size=12), st.booleans())
def test_mutated_captured_packets_change_nothing(muts, under_load):
    s = Session()
    _deliver_all(s, muts, under_load)
    assert s.tunnel_works()
    for node in s.nodes:
        assert consistency_problems(node.device, s.lab.now) == []


@SLOW
@given(st.lists(st.one_of(
    st.binary(max_size=200),
    st.tuples(st.sampled_from([1, 2, 3, 4]), st.binary(max_size=200)).map(lambda t: header(t[0]) + t[1]),
    st.sampled_from([1, 2, 3]).flatmap(lambda k: st.binary(
        min_size={1: 144, 2: 88, 3: 60}[k], max_size={1: 144, 2: 88, 3: 60}[k]).map(lambda b, k=k: header(k) + b)),
), min_size=1, max_size=20), st.booleans())
def test_random_datagrams_change_nothing(datagrams, fix_mac):
    s = Session()
    before = {n.name: fingerprint(n.device) for n in s.nodes}
    for i, data in enumerate(datagrams):
        node = s.nodes[i % 2]
        if fix_mac:
            data = remac(data, node.public_key)
        node.apply(node.device.receive_datagram(data, ATTACKER if i % 3 else ATTACKER6, s.lab.now))
    for node in s.nodes:
        assert fingerprint(node.device) == before[node.name]
    assert s.tunnel_works()


@SLOW
@given(st.lists(st.tuples(st.integers(0, 10 ** 6), st.floats(0, 400)), min_size=1, max_size=6))
def test_replays_at_later_times_never_authenticate_twice(replays):
    """Captured datagrams replayed as time passes (timers fire between them) are all refused."""
    s = Session()
    delivered = {n.name: len(n.tun_received) for n in s.nodes}
    completed = {n.name: len(n.recorder.of("handshake_completed")) for n in s.nodes}
    for pick, wait in replays:
        s.lab.run(wait)
        wire = s.wires[pick % len(s.wires)]
        target = s.node_at(wire.dst)
        target.apply(target.device.receive_datagram(wire.data, wire.src, s.lab.now))
        for node in s.nodes:
            assert consistency_problems(node.device, s.lab.now) == []
    for node in s.nodes:
        assert len(node.tun_received) == delivered[node.name]  # nothing replayed reached a TUN
        assert len(node.recorder.of("handshake_completed")) == completed[node.name]
    assert s.tunnel_works()


# ---------------------------------------------------------------- the send path
def _inner(version, dst_pick, body, proto):
    if version == 4:
        dst = ["10.0.0.2", "10.0.0.1", "10.0.0.99", "192.0.2.2", "255.255.255.255"][dst_pick % 5]
        return packets.udp("10.0.0.1", 1, dst, 2, body) if proto == 17 else packets.echo("10.0.0.1", dst, 1, payload=body)
    dst = ["2001:db8::2", "::", "ff02::1"][dst_pick % 3]
    return packets.echo("2001:db8::1", dst, 1, payload=body) if proto == 1 else packets.udp("2001:db8::1", 1, dst, 2, body)


inner_packet = st.one_of(
    st.binary(max_size=1600),
    st.builds(_inner, st.sampled_from([4, 6]), st.integers(0, 10), st.binary(max_size=1500), st.sampled_from([1, 17])),
    st.tuples(st.sampled_from([0x45, 0x46, 0x4F, 0x60, 0x40]), st.binary(min_size=15, max_size=100),
              st.sampled_from([b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x63"])).map(
        lambda t: bytes([t[0]]) + t[1][:15] + t[2] + t[1][15:]),
)


@SLOW
@given(st.lists(st.tuples(inner_packet, st.booleans()), min_size=1, max_size=30))
def test_send_packet_with_random_inner_packets(items):
    s = Session()
    for packet, from_a in items:
        node = s.a if from_a else s.b
        node.apply(node.device.send_packet(packet, s.lab.now))
    s.lab.run(1)  # whatever went out is received, decrypted, checked against allowed IPs
    for node in s.nodes:
        assert consistency_problems(node.device, s.lab.now) == []
        for out in node.tun_received:
            assert out and out[0] >> 4 in (4, 6)  # only whole IP packets reach a TUN
    assert s.tunnel_works()
