"""A reproducible lab session to fuzz against, mutations of its packets, and the state checks.

Shared by tests/test_fuzz.py (hypothesis) and fuzz/atheris_receive.py (atheris): both feed
mutated copies of packets captured from a real lab session into Device.receive_datagram and
then ask `consistency_problems` whether the node's protocol state still hangs together.

The session is deterministic (fixed static keys, PSK and ephemerals, a seeded lab), so a
failing example replays exactly. Its capture holds every message kind: an initiation that
drew a cookie reply (the responder was under load), the retry with mac2, the response,
transport data both ways and keepalives.
"""

from __future__ import annotations

import hashlib
import json
import struct

from lab_helpers import pair

from wgscope.protocol.constants import (
    LABEL_MAC1, MAC_SIZE, MESSAGE_INITIATION, MESSAGE_RESPONSE, REJECT_AFTER_MESSAGES, REKEY_TIMEOUT,
)
from wgscope.protocol.crypto import HASH, MAC
from wgscope.protocol.keypair import Keypair
from wgscope.protocol.noise import HandshakeState
from wgscope.runtime import packets

ATTACKER = ("203.0.113.66", 40066)
ATTACKER6 = ("2001:db8::66", 40066)


def _key(label: str) -> bytes:
    return hashlib.sha256(b"wgscope-fuzz-" + label.encode()).digest()


class Session:
    """Two lab nodes with an established tunnel and the datagrams that built it."""

    def __init__(self, seed: int = 7) -> None:
        lab, self.a, self.b = pair(seed=seed, psk=_key("psk"), keys=(_key("alpha"), _key("bravo")))
        self.lab = lab
        self.wires = []
        lab.network.taps.append(self.wires.append)
        self.b.device.set_forced_load(True, lab.now)  # first initiation draws a cookie reply
        self.a.ping("10.0.0.2", 1)
        lab.run(REKEY_TIMEOUT + 1)
        self.b.device.set_forced_load(None, lab.now)
        self.b.ping("10.0.0.1", 2)
        self.a.send_packet(packets.udp("10.0.0.1", 5000, "10.0.0.2", 6000, b"numbered 0"))
        lab.run(12)  # passive keepalives follow the data
        self.pings = 2
        kinds = {w.data[0] for w in self.wires}
        assert kinds == {1, 2, 3, 4}, kinds
        assert self.a.echo_replies() == [1] and self.b.echo_replies() == [2]

    @property
    def nodes(self):
        return (self.a, self.b)

    def node_at(self, endpoint):
        return self.a if tuple(endpoint) == self.a.endpoint else self.b

    def tunnel_works(self) -> bool:
        """A fresh ping each way gets its echo reply (the lab's clock moves, timers fire)."""
        self.pings += 2
        ok_a, ok_b = self.pings - 1, self.pings
        self.a.ping("10.0.0.2", ok_a)
        self.lab.run(REKEY_TIMEOUT * 2)  # long enough for a handshake retry if one is due
        self.b.ping("10.0.0.1", ok_b)
        self.lab.run(REKEY_TIMEOUT * 2)
        return ok_a in self.a.echo_replies() and ok_b in self.b.echo_replies()


# ---------------------------------------------------------------- mutations
def remac(data: bytes, receiver_public: bytes) -> bytes:
    """Recompute mac1 (and zero mac2) so a mutated handshake body reaches the Noise code."""
    if len(data) < 2 * MAC_SIZE or data[0] not in (MESSAGE_INITIATION, MESSAGE_RESPONSE):
        return data
    end = len(data) - 2 * MAC_SIZE
    return data[:end] + MAC(HASH(LABEL_MAC1 + receiver_public), data[:end]) + bytes(MAC_SIZE)


# Field boundaries of each message (WP §5.4.2-5.4.6), for splicing one packet's field into another.
FIELDS = {
    1: [(4, 8), (8, 40), (40, 88), (88, 116), (116, 132), (132, 148)],
    2: [(4, 8), (8, 12), (12, 44), (44, 60), (60, 76), (76, 92)],
    3: [(4, 8), (8, 32), (32, 64)],
    4: [(4, 8), (8, 16), (16, None)],
}


def mutate(data: bytes, op: str, x: int, y: int, other: bytes, extra: bytes) -> bytes:
    """One mutation of a captured datagram; x, y and `extra` are the fuzzer's choices."""
    n = len(data)
    if op == "replay":
        return data
    if op == "flip":
        b = bytearray(data)
        b[x % n] ^= 1 << (y % 8)
        return bytes(b)
    if op == "truncate":
        return data[:x % n]
    if op == "extend":
        return data + extra
    if op == "type":
        return bytes([x % 256]) + data[1:]
    if op == "reserved":
        b = bytearray(data)
        b[1 + x % 3] = 1 + y % 255
        return bytes(b)
    if op == "splice":  # a whole field taken from another captured packet, at the same place
        fields = FIELDS.get(data[0], [(4, 8)])
        start, end = fields[x % len(fields)]
        end = n if end is None else end
        piece = other[start:end]
        return data[:start] + piece + data[start + len(piece):]
    if op == "overwrite":  # arbitrary bytes at an arbitrary place
        at = x % n
        return data[:at] + extra + data[at + len(extra):]
    raise ValueError(op)


OPS = ("replay", "flip", "truncate", "extend", "type", "reserved", "splice", "overwrite")


# ---------------------------------------------------------------- the state checks
def consistency_problems(device, now: float) -> list[str]:
    """Ways the device's protocol state does not hang together (empty list: consistent)."""
    bad = []
    peers = {id(p): p for p in device.peers.values()}
    for index, entry in device.index_table.items():
        peer, obj = entry
        if id(peer) not in peers:
            bad.append(f"index {index:#x} names a removed peer")
        elif isinstance(obj, HandshakeState):
            if obj is not peer.handshake or obj.local_index != index:
                bad.append(f"index {index:#x} names a handshake that does not own it")
        elif isinstance(obj, Keypair):
            if obj not in peer.keypairs.all() or obj.local_index != index or obj.recv is None:
                bad.append(f"index {index:#x} names a keypair outside the peer's slots")
        else:
            bad.append(f"index {index:#x} names {type(obj).__name__}")
        if not 0 < index < 1 << 32:
            bad.append(f"index {index} out of range")
    for peer in device.peers.values():
        kps = peer.keypairs.all()
        if len({id(k) for k in kps}) != len(kps) or len({k.local_index for k in kps}) != len(kps):
            bad.append(f"{peer.name}: a keypair or index fills two slots")
        for k in kps:
            if device.index_table.get(k.local_index, (None, None))[1] is not k:
                bad.append(f"{peer.name}: keypair {k.local_index:#x} missing from the index table")
            if k.send is None or k.recv is None:
                bad.append(f"{peer.name}: zeroed keypair {k.local_index:#x} still in a slot")
            if not (0 <= k.send_counter < REJECT_AFTER_MESSAGES and 0 <= k.replay.last < REJECT_AFTER_MESSAGES):
                bad.append(f"{peer.name}: counters out of range")
            if k.created > now:
                bad.append(f"{peer.name}: keypair from the future")
        hs = peer.handshake
        if hs.local_index and device.index_table.get(hs.local_index, (None, None))[1] is not hs:
            bad.append(f"{peer.name}: handshake index {hs.local_index:#x} missing from the index table")
        for name in ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets", "handshakes_completed",
                     "keepalives_sent", "keepalives_received"):
            value = getattr(peer, name)
            if not isinstance(value, int) or value < 0:
                bad.append(f"{peer.name}: {name}={value!r}")
        if peer.rx_packets < sum(k.rx_packets for k in kps) or peer.tx_packets < sum(k.tx_packets for k in kps):
            bad.append(f"{peer.name}: per-keypair packet counts exceed the peer's")
        if len(peer.staged) > peer.staged_limit:
            bad.append(f"{peer.name}: {len(peer.staged)} staged over the limit {peer.staged_limit}")
        if any(v <= 0 for v in peer.drops.values()):
            bad.append(f"{peer.name}: drop counters {dict(peer.drops)}")
    if any(v <= 0 for v in device.drops.values()):
        bad.append(f"device drop counters {dict(device.drops)}")
    if len(device.wheel) > 4 * len(device.peers) * 5 + 16:
        bad.append(f"timer heap holds {len(device.wheel)} entries for {len(device.peers)} peers")
    try:
        json.dumps(device.snapshot(now))
    except (TypeError, ValueError) as e:
        bad.append(f"snapshot not JSON-safe: {e}")
    return bad


def fingerprint(device) -> dict:
    """Protocol state a dropped datagram must leave exactly as it was."""
    peers = {}
    for key, p in device.peers.items():
        hs = p.handshake
        peers[key] = (
            p.endpoint, hs.state, hs.local_index, hs.remote_index, hs.last_timestamp, hs.chaining_key, hs.hash,
            hs.remote_ephemeral, hs.last_initiation_consumption,
            tuple((k.local_index, k.remote_index, k.send_counter, k.replay.last, tuple(k.replay.ring),
                   k.rx_packets, k.tx_packets)
                  for k in (p.keypairs.current, p.keypairs.previous, p.keypairs.next) if k),
            tuple(p.staged), p.rx_packets, p.tx_packets, p.rx_bytes, p.tx_bytes, p.cookies.cookie,
            p.cookies.cookie_set, p.handshakes_completed,
            tuple(sorted((n, t.deadline) for n, t in p.timers.items())),
        )
    return {"peers": peers, "indices": dict(device.index_table)}


def header(kind: int) -> bytes:
    return struct.pack("<I", kind)
