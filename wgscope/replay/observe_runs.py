"""The observer's transport half for a run: consecutive transport messages of one flow (one
receiver index, one source and destination endpoint), as a bulk transfer puts them on the wire.

`feed_run` does to the run exactly what `feed` (observe_transport.py) does to each of its
messages, in one pass, when nothing in the run asks for a decision per message: the flow's
session is known and its keys open every message, no message is a keepalive, the counters
rise above every counter accepted so far (so the core's anti-replay window accepts each:
AntiReplayWindow.accept_run), the sender has not moved, the session is neither expired nor due
a rekey, the flow is past its first packets (kept for node.py's staging) and nothing is being
annotated. Anything else returns None having changed nothing, and the caller feeds each message
on its own. tests/test_replay_runs.py holds both ways to the same Replay.

Why the timers may be run once: the sender's send-keepalive timer is cancelled by each message
(a cancel of a cancelled timer changes nothing), and the receiver's data-received hook arms it on
the first message and marks "another keepalive needed" on the second; later calls repeat that.
"""

from __future__ import annotations

import struct
from itertools import repeat
from operator import gt, itemgetter, methodcaller

import numpy as np
from cryptography.exceptions import InvalidTag

from ..protocol import ip as ipmod
from ..protocol.constants import (
    QUEUE_STAGED_SIZE, REJECT_AFTER_TIME, REKEY_AFTER_TIME, TRANSPORT_MIN_SIZE,
)
from ..protocol.crypto import nonce
from ..protocol.messages import transport_sealed
from .observe_transport import inner_head


class RunObserver:
    """Mixed into observer.Observer."""

    def feed_run(self, frames: list, times: list, src: tuple, payloads: list, receiver: int, counters: list,
                 sizes: list | None = None, nonces: list | None = None) -> bool:
        """False: nothing was done, feed each. True: done; `run_plain` is then (inner packets, padded
        plaintexts) when the sender is re-executed (as `plain` after feed), else None. `sizes`: each
        payload's length, `nonces`: each counter's nonce, when the caller has them (driver.observe
        makes them for the whole capture at once)."""
        entry = self._flows.get(receiver)
        if entry is None or self.annotate:
            return False
        sess, flow = entry
        sender, cipher = flow.sender, flow.cipher
        receiver_party = sess.responder if flow is sess.i2r else sess.initiator
        t1 = times[-1]
        if cipher is None or receiver_party is sender or not sender.endpoints or sender.endpoints[-1] != src \
                or counters[0] <= flow.max_counter or flow.packets <= QUEUE_STAGED_SIZE \
                or (flow is sess.i2r and sess.confirmed_frame is None) or flow.replay.last >= counters[0] \
                or (not sess.predates_capture and t1 - sess.created >= REJECT_AFTER_TIME) \
                or (flow is sess.i2r and sess.handshake is not None and not sess.rekey_reported
                    and t1 - sess.created > REKEY_AFTER_TIME):
            return False
        if sizes is None:
            sizes = list(map(len, payloads))
        if min(sizes) <= TRANSPORT_MIN_SIZE:
            return False
        inbound = ipmod.inbound
        try:  # each message opened, as _authenticate opens it (the iteration in C: map, not a Python loop)
            padded = list(map(cipher.decrypt, nonces if nonces is not None else map(nonce, counters),
                              map(transport_sealed, payloads), repeat(None)))
            one = _one_ipv4_flow(padded, sizes[0] - TRANSPORT_MIN_SIZE if sizes.count(sizes[0]) == len(sizes) else None)
            shape = None if one is not None else [inbound(p) for p in padded]
        except (InvalidTag, ipmod.InvalidPacket):
            return False  # feed() says which message, in its own words
        if not flow.replay.accept_run(counters):
            return False
        inners = one[0] if one is not None else [p if n == len(p) else p[:n] for p, (n, _v, _s) in zip(padded, shape)]
        total = sum(sizes)
        self._run_counts(frames, times, sess, flow, sizes, counters, total)
        self._run_timers(frames, times, sender, receiver_party)
        # the inner packets' bytes: uncut plaintexts are each their message less header and tag
        flow.inner_bytes += total - len(sizes) * TRANSPORT_MIN_SIZE if inners is padded else sum(map(len, inners))
        self._run_inner(frames, times, sender, flow, inners, shape, one)
        self.run_plain = (inners, padded) if sender.public_key in self.keep_plain_of else None
        return True

    def _run_counts(self, frames, times, sess, flow, sizes, counters, total) -> None:
        """_transport's and _count's bookkeeping for the run: kinds, volume, loss as ranges."""
        r, n, sender = self.r, len(frames), flow.sender
        r.wireguard += n
        r.kinds["transport"] += n
        r.last_time = times[-1]
        sender.tx_packets += n
        sender.tx_bytes += total
        vol = sender.volume
        if int(times[0]) == int(times[-1]):
            sec = int(times[0])
            vol[sec] = vol.get(sec, 0) + total
        else:
            for t, size in zip(times, sizes):
                vol[int(t)] = vol.get(int(t), 0) + size
        frame_of = flow.frame_of
        prev, prev_frame = flow.max_counter, frame_of.get(flow.max_counter)
        if counters[-1] - counters[0] != n - 1 or counters[0] != prev + 1:  # a gap: counters never seen
            for c, frame in zip(counters, frames):
                if c > prev + 1:
                    flow.missing.add(prev + 1, c - 1, prev_frame, frame)
                prev, prev_frame = c, frame
        flow.max_counter = counters[-1]
        frame_of.add_run(counters, frames, counters[-1])
        flow.packets += n
        flow.bytes += total
        flow.last_time = times[-1]
        flow.data_packets += n
        sender.data_packets += n
        flow.decrypted += n
        sender.decrypted += n

    def _run_timers(self, frames, times, sender, receiver_party) -> None:
        self.frame, self.now = frames[0], times[0]
        self._sent_authenticated(sender, False)
        self._data_received(receiver_party)
        if len(frames) > 1:
            self.frame, self.now = frames[1], times[1]
            self._data_received(receiver_party)
        self.frame, self.now = frames[-1], times[-1]

    def _run_inner(self, frames, times, sender, flow, inners, shape, one) -> None:
        """_inner for the run: inner bytes, the "proto src > dst" counts, decrypted packets kept.
        `one`: (inners, inner_head, source) when the run is one IPv4 flow (_one_ipv4_flow), else
        `shape` holds inbound's (length, version, source) of each packet."""
        counts = {one[1]: len(inners)} if one is not None else _head_counts(inners, shape)
        inner, keys = self.r.inner, self._inner_keys
        for head, count in counts.items():
            key = keys.get(head)
            if key is None:
                key = self._inner_key(head, inners[0] if one is not None else next(
                    p for p, (_n, ver, _s) in zip(inners, shape) if inner_head(p, ver) == head))
            inner[key] = inner.get(key, 0) + count
        if self.keep_decrypted:
            self.r.decrypted_packets.extend(inners)
            self.r.decrypted_times.extend(times)
        if sender.public_key is not None and self.keyring.allowed(sender.public_key) is not None:
            if one is not None and self._source_allowed(sender, 4, one[2]):
                return  # one source for the whole run, allowed: no message would be reported
            for frame, (_n, ver, source) in zip(frames, shape or [(0, 4, one[2])] * len(frames)):
                self.frame = frame  # the observer's own check, each message
                self._check_source(sender, ver, source)
            self.frame = frames[-1]


_version, _protocol = itemgetter(1), itemgetter(9)  # of inbound's (length, version, source); IPv4 byte 9
_FLOW_V4 = struct.Struct(">B8xB2x8s").unpack_from  # IPv4 bytes 0 (version, IHL), 9 (protocol), 12-19 (addresses)
_TOTAL_V4 = struct.Struct(">2xH").unpack_from  # IPv4 bytes 2-3: the total length, as a 1-tuple


def _one_ipv4_flow(padded: list, size: int | None = None):
    """(inner packets, inner_head, source) when every padded plaintext of a run is IPv4 of one flow
    (the same first byte, protocol and addresses, read by struct in C) with a total length that
    fits it (ip.inbound's own check: 20 <= length <= size); else None, and inbound reads each.
    What inbound would give each packet: (length, 4, the flow's source). `size`: every plaintext's
    length, when the caller knows they are all one (_same_size_flow)."""
    if size is not None and size >= 20:
        one = _same_size_flow(padded, size)
        if one is not None:
            return one
    try:
        flows = list(map(_FLOW_V4, padded))
    except struct.error:  # shorter than an IPv4 header: inbound says what it is
        return None
    first = flows[0]
    if first[0] >> 4 != 4 or flows.count(first) != len(flows):
        return None
    sizes = list(map(len, padded))
    if list(map(_TOTAL_V4, padded)) != list(zip(sizes)):  # padding to cut (or a length that does not fit)
        lengths = [(p[2] << 8) | p[3] for p in padded]
        if min(lengths) < 20 or any(map(gt, lengths, sizes)):
            return None
        padded = [p if n == size else p[:n] for p, n, size in zip(padded, lengths, sizes)]
    return padded, bytes((first[1],)) + first[2], first[2][:4]


def _same_size_flow(padded: list, size: int):
    """_one_ipv4_flow's answer for plaintexts all `size` bytes long: their first 20 bytes side by
    side in one numpy array (no tuple or int made per packet), and every packet's bytes 0-3
    (version and header length, TOS, total length: one length for all), 9 (protocol) and 12-19
    (addresses) compared with the first's at once. None when any differs (then struct reads each)."""
    first = padded[0]
    total = (first[2] << 8) | first[3]
    if first[0] >> 4 != 4 or not 20 <= total <= size:
        return None
    heads = np.frombuffer(b"".join(map(_IPV4_HEAD, padded)), dtype=np.uint8).reshape(len(padded), 20)
    fields = heads[:, _SAME_IN_A_FLOW]
    if not (fields == fields[0]).all():
        return None
    inners = padded if total == size else [p[:total] for p in padded]
    return inners, first[9:10] + first[12:20], first[12:16]


_IPV4_HEAD = itemgetter(slice(0, 20))
_SAME_IN_A_FLOW = np.array([0, 1, 2, 3, 9, *range(12, 20)])  # IPv4 header bytes one flow's packets share here


def _head_counts(inners: list, shape: list) -> dict:
    """How many packets of a run have each inner_head (observe_transport.py). A run is usually
    one inner flow: when every packet is IPv4 with the first one's protocol and addresses
    (compared in place), that is the one count, without cutting each packet's header out."""
    first, ver = inners[0], shape[0][1]
    if ver == 4:
        proto, addresses = first[9], first[12:20]
        n = len(inners)
        if list(map(_version, shape)).count(4) == n and list(map(_protocol, inners)).count(proto) == n \
                and sum(map(methodcaller("startswith", addresses, 12), inners)) == n:
            return {inner_head(first, 4): n}
    counts: dict = {}
    for p, (_n, ver, _s) in zip(inners, shape):
        head = inner_head(p, ver)
        counts[head] = counts.get(head, 0) + 1
    return counts
