"""The per-datagram pieces of a re-executed side's pass (node_runs.py, sealmemo.py, verdicts.py,
decrypted.py's read-back), each against the plain way it stands in for."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wgscope.protocol.crypto import nonce
from wgscope.replay.sealmemo import SealMemo


def test_a_batch_compared_without_copies_says_what_bytes_of_each_says():
    """node_runs.same_bytes (removeprefix over the wire's views) is True exactly when every datagram
    equals the wire's byte for byte: a bit flipped anywhere, one byte more or less, an empty
    datagram or one that is not bytes are each a difference, or compared the plain way."""
    from wgscope.replay.node_runs import same_bytes

    wire_bytes = [os.urandom(n) for n in (32, 148, 1440, 1)]
    buf = memoryview(b"".join(wire_bytes))
    wire, at = [], 0
    for w in wire_bytes:
        wire.append(buf[at: at + len(w)])
        at += len(w)
    made = [bytes(w) for w in wire_bytes]
    assert same_bytes(made, wire)
    for i, w in enumerate(wire_bytes):
        for bit in (0, len(w) * 8 // 2, len(w) * 8 - 1):
            flipped = bytearray(w)
            flipped[bit // 8] ^= 1 << (bit % 8)
            assert not same_bytes(made[:i] + [bytes(flipped)] + made[i + 1:], wire)
        for other in (w + b"\0", w[:-1], b"", bytearray(w)):
            expected = bytes(other) == w
            assert same_bytes(made[:i] + [other] + made[i + 1:], wire) is expected
    assert same_bytes([b""], [memoryview(b"")]) and not same_bytes([b""], [memoryview(b"x")])


def test_a_batch_ends_where_the_send_by_send_walk_ends_it():
    """RunSender._batch_end by bisection (a run's times never decreasing) ends each batch where
    walking send by send ends it: BATCH_MAX sends, BATCH_SPAN seconds, before the core's next
    deadline (none, before the batch, inside it, past it, on a send's time exactly)."""
    import random
    from types import SimpleNamespace

    from wgscope.replay.node import BATCH_MAX, BATCH_SPAN
    from wgscope.replay.node_runs import RunSender

    rng = random.Random(13)
    for _ in range(300):
        times, t = [], rng.uniform(0, 100)
        for _ in range(rng.randrange(1, 200)):
            t += rng.choice((0.0, 0.0001, 0.001, 0.004, 0.01, 0.02))
            times.append(t)
        start = rng.randrange(len(times))
        for when in (None, times[start] - 1, times[start], rng.choice(times), times[-1] + 1,
                     times[start] + rng.uniform(0, 2 * BATCH_SPAN)):
            node = SimpleNamespace(device=SimpleNamespace(next_deadline=lambda when=when: when),
                                   BATCH_MAX=BATCH_MAX, BATCH_SPAN=BATCH_SPAN)
            assert RunSender._batch_end(node, times, start, True) == RunSender._batch_end(node, times, start, False)


def test_the_memo_serves_the_packet_it_was_given_or_an_equal_one_and_nothing_else():
    """SealMemo.encrypt's usual case (proven, the very object expected, no aad, the counter in
    range) and each way out of it: an equal copy of the plaintext is still served (compared byte for
    byte), another plaintext, another counter, an aad, counters past the batch are sealed for real."""
    key = ChaCha20Poly1305(os.urandom(32))
    plains = [os.urandom(80) for _ in range(4)]
    wire = [memoryview(bytes(16) + key.encrypt(nonce(c), p, None))  # views, as the capture gives them
            for c, p in enumerate(plains, 10)]
    memo = SealMemo(key)
    memo.expect(range(10, 14), plains, wire)
    assert memo.encrypt(nonce(10), plains[0], None) == wire[0][16:] and memo.proven  # the real seal that proves
    assert type(memo.encrypt(nonce(11), plains[1], None)) is memoryview  # served: the wire's own bytes
    assert type(memo.encrypt(nonce(12), bytes(bytearray(plains[2])), None)) is memoryview  # an equal copy
    other = plains[3][:-1] + bytes([plains[3][-1] ^ 1])
    for n, p, aad in ((nonce(13), other, None), (nonce(12), plains[3], None), (nonce(13), plains[3], b"x"),
                      (nonce(14), plains[3], None), (nonce(9), plains[0], None)):
        assert memo.encrypt(n, p, aad) == key.encrypt(n, p, aad)
    assert type(memo.encrypt(nonce(13), plains[3], None)) is memoryview
    memo.expect([], [], [])
    assert type(memo.encrypt(nonce(13), plains[3], None)) is bytes


def _judge_afresh(judge, direction, src, dst, data):
    """VerdictJudge.tap as it was before it remembered: judged from the core call's events."""
    if judge._fresh:
        judge._batch, judge._fresh = judge._fresh, []
    elif direction == "in":
        judge._batch = []
    return judge._comment(direction, data, src if direction == "in" else dst)


def test_remembered_verdicts_are_the_verdicts_judged_afresh():
    """verdicts.VerdictJudge remembers a comment while no event comes (`_said`): each datagram gets
    the comment judging it afresh gives, whatever of what _classify reads differs (direction, length,
    type, reserved bytes, index, remote endpoint), and an event (one that names a peer for an index,
    one that is the verdict) is heeded at once."""
    from wgscope.events import INFO, KEYPAIR_CREATED, PACKET_DROPPED, EventBus
    from wgscope.replay.verdicts import VerdictJudge

    def transport(index: int, size: int = 96, head: bytes = b"\x04\0\0\0") -> memoryview:
        return memoryview(head + index.to_bytes(4, "little") + os.urandom(size - 8))

    r1, r2, me = ("10.0.0.1", 51820), ("10.0.0.9", 51820), ("10.0.0.2", 51821)
    datagrams = [("in", r1, transport(7)), ("in", r1, transport(7, 32)), ("in", r1, transport(8)),
                 ("in", r2, transport(7)), ("in", r1, transport(7, head=b"\x04\0\1\0")),
                 ("in", r1, transport(7, head=b"\x09\0\0\0")), ("in", r1, transport(7, 20)),
                 ("out", r1, transport(7)), ("out", r2, transport(8, 32)), ("in", r1, transport(7, 500))]
    buses, judges = (EventBus(INFO), EventBus(INFO)), []
    for bus in buses:
        judges.append(VerdictJudge(bus))
    remembering, afresh = judges

    def both(direction, remote, data):
        src, dst = (remote, me) if direction == "in" else (me, remote)
        return remembering.tap(direction, src, dst, data, 1.0), _judge_afresh(afresh, direction, src, dst, data)

    said = [both(*d) for d in datagrams * 3]
    assert all(a == b for a, b in said) and len({a for a, _ in said}) >= 8
    assert len(remembering._said) == len(datagrams)
    for bus in buses:
        bus.emit(KEYPAIR_CREATED, 2.0, "peerAAAAxyz", local_index=1, remote_index=7, role="initiator", slot="current")
    after = both("out", r1, datagrams[7][2])
    assert after[0] == after[1] and "peer=peerAAAA" in after[0] and after[0] != said[7][0]
    for bus in buses:
        bus.emit(PACKET_DROPPED, 3.0, None, reason="decryption_failed", kind="transport", endpoint=None,
                 receiver_index=7)
    dropped = both("in", r1, datagrams[0][2])
    assert dropped[0] == dropped[1] and "verdict=dropped" in dropped[0]
    again = both("in", r1, datagrams[0][2])  # no event since: accepted, the peer named
    assert again[0] == again[1] and "verdict=accepted" in again[0] and "peer=peerAAAA" in again[0]


def test_the_memo_serves_each_counter_its_own_whatever_the_order_of_seals():
    """Seals out of order, repeated, skipping or past the batch, one packet object at two counters:
    each counter gets its own wire bytes or a real seal, never a neighbour's."""
    key = ChaCha20Poly1305(os.urandom(32))
    plains = [os.urandom(48) for _ in range(6)]
    plains[2] = plains[1]  # one packet object at two counters: only the nonce tells them apart
    wire = [memoryview(bytes(16) + key.encrypt(nonce(c), p, None)) for c, p in enumerate(plains, 100)]
    memo = SealMemo(key)
    memo.expect(range(100, 106), plains, wire)
    for k in (0, 2, 1, 3, 2, 5, 4, 0, 5):
        assert memo.encrypt(nonce(100 + k), plains[k], None) == wire[k][16:]
    assert memo.proven
    for k, p in ((1, plains[2]), (6, plains[5]), (-1, plains[0])):  # another packet at k; past either end
        assert memo.encrypt(nonce(100 + k), p, None) == key.encrypt(nonce(100 + k), p, None)


def test_the_decrypted_file_reads_back_every_packet_as_written(tmp_path, monkeypatch):
    """decrypted.DecryptedStream: the offsets summed by numpy when the file is mapped give back each
    packet, alone (`packet`) or a run at once (`read`), empty ones and one past the snap length
    (kept in memory, the file holding it cut) included; a file with no packet maps too."""
    import random

    from wgscope.replay import decrypted

    monkeypatch.setattr(decrypted, "CHUNK", 7)
    rng = random.Random(7)
    packets = [os.urandom(rng.choice((0, 1, 40, 100, 1420))) for _ in range(60)]
    packets[33] = os.urandom(70_000)
    stream = decrypted.DecryptedStream(tmp_path / "d.pcap")
    for i, p in enumerate(packets):
        stream.packets.append(p)
        stream.times.append(float(i))
        stream.pending()
    assert stream.finish() == len(packets)
    assert [bytes(stream.packet(k)) for k in range(len(packets))] == packets
    assert [bytes(p) for p in stream.read(list(range(2, 30)))] == packets[2:30]
    assert [bytes(p) for p in stream.read(list(range(30, 40)))] == packets[30:40]
    assert [bytes(p) for p in stream.read([40, 3, 59])] == [packets[40], packets[3], packets[59]]
    assert decrypted.DecryptedStream(tmp_path / "none.pcap").finish() == 0
