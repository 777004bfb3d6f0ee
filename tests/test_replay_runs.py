"""Replay takes runs of one flow at once (driver.run_bounds; observe_runs.py in the observer,
node_runs.py for a re-executed sender, sealmemo.py for its seals). A run gives exactly what its
datagrams give one at a time, events included, and a capture altered inside a run is caught."""

from __future__ import annotations

import os
import struct
from collections import Counter

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from lab_helpers import recording_node_bus

from wgscope.events import TRACE
from wgscope.pcap import PcapngWriter, read_capture, read_capture_secrets
from wgscope.pcap.frames import parse_frame
from wgscope.protocol.crypto import nonce
from wgscope.replay import driver, replay_capture
from wgscope.replay.columns import _generic, read_columns
from wgscope.replay.sealmemo import SealMemo
from wgscope.runtime.lab import LAB_EPOCH, Lab
from wgscope.sinks.capture import CaptureWriter


@pytest.fixture(scope="module")
def bulk(tmp_path_factory):
    """Alpha's own capture of bursts of 40 pings (runs past the first QUEUE_STAGED_SIZE packets of
    the flow), bravo's replies between them."""
    lab = Lab(seed=5, level=TRACE)
    a, b = lab.alpha_bravo(connect=False)
    path = tmp_path_factory.mktemp("runs") / "alpha.pcapng"
    cap = CaptureWriter(path, a.bus, wall_offset=LAB_EPOCH, name="alpha", warn=None)
    lab.connect(a, b, b_knows_endpoint=False)
    a.ping("10.0.0.2", seq=9999)
    lab.run(1)
    for burst in range(12):
        for i in range(40):
            a.ping("10.0.0.2", seq=burst * 100 + i, payload=b"x" * (5 + i))  # most need padding
        lab.run(0.5)
    cap.close()
    return path, a


def _one_at_a_time(cols):
    return [(i, i + 1) for i in range(len(cols))]


def _replay_both_ways(path, monkeypatch, **kw):
    rec, node_bus = recording_node_bus()
    runs = replay_capture(path, node_bus=node_bus, keep_decrypted=True, **kw)
    with monkeypatch.context() as m:
        m.setattr(driver, "run_bounds", _one_at_a_time)
        rec1, node_bus1 = recording_node_bus()
        single = replay_capture(path, node_bus=node_bus1, keep_decrypted=True, **kw)
    return runs, rec, single, rec1


def test_runs_give_what_single_datagrams_give(bulk, monkeypatch):
    path, a = bulk
    assert max(b - s for s, b in driver.run_bounds(read_columns(path))) >= 40
    runs, rec, single, rec1 = _replay_both_ways(path, monkeypatch)
    assert runs.as_dict() == single.as_dict()
    assert runs.decrypted_packets == single.decrypted_packets and runs.decrypted_times == single.decrypted_times
    assert [(e.name, e.time, e.peer, e.fields) for e in rec.events] == \
        [(e.name, e.time, e.peer, e.fields) for e in rec1.events]
    assert Counter(e.name for e in rec.events) == Counter(e.name for e in a.recorder.events)
    (node,) = runs.nodes
    assert node["divergences"] == 0 and node["agreed"]["transport"] >= 480
    assert not runs.findings


def test_columns_equal_the_reader(bulk):
    path, _ = bulk
    fast, slow = read_columns(path), _generic(path, True)
    assert fast.frames == slow.frames and fast.times == slow.times
    assert fast.src == slow.src and fast.dst == slow.dst
    assert [bytes(p) for p in fast.payload] == [bytes(p) for p in slow.payload]
    assert [fast.comment(i) for i in range(len(fast))] == [slow.comment(i) for i in range(len(slow))]
    for name in ("transport", "receiver", "counter"):
        assert (getattr(fast, name) == getattr(slow, name)).all()


def _altered(path, out, frame_no: int, change) -> None:
    """A copy of the capture with one frame's UDP payload changed by `change(payload) -> payload`."""
    secrets = read_capture_secrets(path)
    w = None
    for pkt in read_capture(path):
        if w is None:
            w = PcapngWriter(out, linktype=pkt.linktype)
            for text in secrets:
                w.write_wireguard_secrets(text)
        data = pkt.data
        if pkt.frame_number == frame_no:
            udp = parse_frame(pkt.linktype, data)
            new = change(udp.payload)
            data = data[:len(data) - len(udp.payload)] + new
        w.write_packet(data, pkt.timestamp, pkt.comment)
    w.close()


def _a_run_member(path) -> int:
    """A frame inside a long run of alpha's transport, past the flow's first packets."""
    cols = read_columns(path)
    start, stop = max(driver.run_bounds(cols)[-6:], key=lambda r: r[1] - r[0])
    return cols.frames[(start + stop) // 2]


def _replay_kept(path, tmp_path, keeping: str):
    """Replay with the inner packets kept in memory, or streamed to a --decrypted file and read back."""
    return replay_capture(path) if keeping == "memory" else replay_capture(path, decrypted=str(tmp_path / "in.pcap"))


@pytest.mark.parametrize("keeping", ["memory", "stream"])
@pytest.mark.parametrize("where", ["ciphertext", "tag", "counter"])
def test_a_bit_flipped_inside_a_run_is_caught(bulk, tmp_path, where, keeping):
    path, _ = bulk
    frame = _a_run_member(path)

    def flip(p: bytes) -> bytes:
        p = bytearray(p)
        p[{"ciphertext": 20, "tag": len(p) - 3, "counter": 9}[where]] ^= 0x10
        return bytes(p)

    out = tmp_path / "altered.pcapng"
    _altered(path, out, frame, flip)
    r = _replay_kept(out, tmp_path, keeping)
    kinds = {(f.kind, tuple(f.frames)) for f in r.findings}
    assert ("decryption_failed", (frame,)) in kinds
    assert ("divergence", (frame,)) in kinds


@pytest.mark.parametrize("keeping", ["memory", "stream"])
def test_a_resealed_message_with_other_padding_is_sealed_for_real(bulk, tmp_path, keeping):
    """The wire's message opens (sealed with alpha's own key) but its padding is not zeros: the
    memo must not stand in for the core's seal, which gives other bytes."""
    path, a = bulk
    frame = _a_run_member(path)
    keypair = next(iter(a.device.peers.values())).keypairs.current
    seals: list = []

    def repad(p: bytes) -> bytes:
        counter = struct.unpack_from("<Q", p, 8)[0]
        plain = bytearray(keypair.send.decrypt(nonce(counter), p[16:], None))
        assert plain[-1] == 0, "the burst's packets need padding"
        plain[-1] = 0xFF
        return p[:16] + keypair.send.encrypt(nonce(counter), bytes(plain), None)

    out = tmp_path / "repadded.pcapng"
    _altered(path, out, frame, repad)
    real = ChaCha20Poly1305.encrypt
    encrypt = SealMemo.encrypt

    def watching(self, n, plain, aad):
        sealed = encrypt(self, n, plain, aad)
        seals.append((n, sealed))
        return sealed

    SealMemo.encrypt = watching
    try:
        r = _replay_kept(out, tmp_path, keeping)
    finally:
        SealMemo.encrypt = encrypt
    assert real is ChaCha20Poly1305.encrypt
    assert not r.findings_of("decryption_failed")  # the message authenticates: only the padding differs
    cols = read_columns(out)
    i = cols.frames.index(frame)
    wire = bytes(cols.payload[i])
    n = nonce(int(cols.counter[i]))
    made = [s for m, s in seals if m == n]
    assert made and all(bytes(s) != wire[16:] for s in made)  # sealed for real: other bytes than the wire's


def test_the_memo_serves_a_key_only_once_a_real_seal_proved_it():
    k1, k2 = ChaCha20Poly1305(os.urandom(32)), ChaCha20Poly1305(os.urandom(32))
    plains = [os.urandom(64) for _ in range(3)]
    wire = [bytes(16) + k1.encrypt(nonce(c), p, None) for c, p in enumerate(plains)]
    wrong = SealMemo(k2)  # the core's key differs from the one that opened the wire
    wrong.expect(range(3), plains, wire)
    assert all(wrong.encrypt(nonce(c), p, None) == k2.encrypt(nonce(c), p, None) for c, p in enumerate(plains))
    assert not wrong.proven
    right = SealMemo(k1)
    right.expect(range(3), plains, wire)
    assert [right.encrypt(nonce(c), p, None) for c, p in enumerate(plains)] == [w[16:] for w in wire]
    assert right.proven
    assert right.encrypt(nonce(1), plains[0], None) == k1.encrypt(nonce(1), plains[0], None)  # other plaintext


def _outcome(path):
    try:
        r = replay_capture(path)
    except driver.ReplayInputError as e:
        return "error", str(e)
    return "replayed", r.as_dict()


def test_hostile_captures_replay_the_same_through_the_reader(tmp_path, monkeypatch):
    """Truncated, bit-flipped, absurd captures: the columns' fast walk gives exactly what the
    ordinary reader gives (it declines what it does not accept, and the reader says why)."""
    from hostile_captures import write_all

    from wgscope.replay import columns

    made = write_all(tmp_path)
    fast = {p.name: _outcome(p) for p in made}
    monkeypatch.setattr(columns, "_walk_file", lambda f, buf: None)
    slow = {p.name: _outcome(p) for p in made}
    assert fast == slow
    assert sum(kind == "replayed" for kind, _ in fast.values()) >= 10


def test_a_runs_inner_headers_are_counted_as_each_packet_counts_them():
    """observe_runs._head_counts (one count when the run is one IPv4 flow, compared in place)
    gives what cutting each packet's header out gives, for one flow, mixed flows and IPv6."""
    from wgscope.replay.observe_runs import _head_counts

    def v4(proto, src, dst):
        return bytes([0x45, 0, 0, 40]) + bytes(5) + bytes([proto]) + b"\0\0" + src + dst + os.urandom(20)

    def v6(src, dst):
        return bytes([0x60, 0, 0, 0, 0, 0, 6, 64]) + src + dst + os.urandom(8)

    a, b, c, d = os.urandom(4), os.urandom(4), os.urandom(16), os.urandom(16)
    kinds = [v4(6, a, b), v4(17, a, b), v4(6, b, a), v4(6, a, a), v6(c, d)]
    runs = [[kinds[0]] * 5] + [[kinds[0]] * 4 + [k] for k in kinds] + [[k] + [kinds[0]] * 3 for k in kinds] \
        + [[kinds[4]] * 3, kinds, kinds[::-1]]
    for run in runs:
        shape = [(len(p), p[0] >> 4, None) for p in run]
        each = Counter(p[9:10] + p[12:20] if v == 4 else p[6:7] + p[8:40] for p, (_n, v, _s) in zip(run, shape))
        assert _head_counts(run, shape) == dict(each)


def test_a_run_read_as_one_ipv4_flow_gives_what_inbound_gives_each_packet():
    """observe_runs._one_ipv4_flow (the run's IPv4 headers read by struct at once) answers only
    when every packet is IPv4 of one flow whose length fits, and then as ip.inbound does for each:
    the packet cut to its length, its inner_head, its source. Anything else is left to inbound."""
    from wgscope.protocol import ip
    from wgscope.replay.observe_runs import _one_ipv4_flow
    from wgscope.replay.observe_transport import inner_head

    def v4(total, size, proto=6, src=b"\x0a\0\0\x01", dst=b"\x0a\0\0\x02", first=0x45):
        return (bytes([first, 0]) + total.to_bytes(2, "big") + bytes(5) + bytes([proto]) + b"\0\0" + src + dst
                + os.urandom(max(0, size - 20)))[:size]

    one_flow = [[v4(1420, 1420)] * 3, [v4(40, 48), v4(1420, 1420), v4(52, 64)], [v4(20, 20)]]
    for run in one_flow:
        inners, head, source = _one_ipv4_flow(run)
        shape = [ip.inbound(p) for p in run]
        assert inners == [p[:n] for p, (n, _v, _s) in zip(run, shape)]
        assert {head} == {inner_head(p, 4) for p in inners} and {source} == {s for _n, _v, s in shape}
    v6 = bytes([0x60, 0, 0, 8]) + bytes(36) + bytes(8)
    others = [[v4(1420, 1420), v4(1420, 1420, proto=17)], [v4(1420, 1420), v4(1420, 1420, src=b"\x0a\0\0\x09")],
              [v4(1420, 1420), v4(60, 60, first=0x46)], [v4(1420, 1420), v6], [v6], [v4(40, 19)],
              [v4(1420, 1420), v4(19, 40)], [v4(1420, 1420), v4(80, 64)], [v4(1420, 1420, first=0x65)]]
    for run in others:
        assert _one_ipv4_flow(run) is None


def test_decrypted_written_as_replay_goes_gives_what_memory_gives(bulk, monkeypatch, tmp_path):
    """--decrypted streamed (decrypted.py: written a chunk at a time as the observer goes, a side's
    own sends read back from the file for its pass) gives the Replay, the side's events and the
    file that keeping every inner packet in memory and writing them at the end gives; a chunk of
    7 packets makes many writes, padded pings included. A file that is no regular file (here
    /dev/null) is written the old way."""
    from wgscope.replay import decrypted
    from wgscope.replay.outputs import write_decrypted

    path, _ = bulk
    rec, node_bus = recording_node_bus()
    kept = replay_capture(path, node_bus=node_bus, keep_decrypted=True)
    write_decrypted(tmp_path / "memory.pcap", kept)
    monkeypatch.setattr(decrypted, "CHUNK", 7)
    rec1, node_bus1 = recording_node_bus()
    streamed = replay_capture(path, node_bus=node_bus1, decrypted=str(tmp_path / "stream.pcap"))
    assert streamed.as_dict() == kept.as_dict()
    assert [(e.name, e.time, e.peer, e.fields) for e in rec1.events] == \
        [(e.name, e.time, e.peer, e.fields) for e in rec.events]
    assert streamed.decrypted_written == len(kept.decrypted_packets) >= 480 and not streamed.decrypted_packets
    assert (tmp_path / "stream.pcap").read_bytes() == (tmp_path / "memory.pcap").read_bytes()
    assert streamed.nodes[0]["agreed"]["transport"] >= 480 and streamed.nodes[0]["divergences"] == 0
    assert replay_capture(path, decrypted=os.devnull).decrypted_written == len(kept.decrypted_packets)
