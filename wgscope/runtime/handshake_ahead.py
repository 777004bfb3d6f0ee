"""The live node's handshake look-ahead: a wake-up's X25519s on a second thread.

Under a handshake flood the live node reads a wake-up's datagrams before handing them to the
device, which passes the ephemeral keys of the initiations it would open to `submit`
(protocol/lookahead.py). For each, in order, this thread computes DH(Sr_priv, Ei_pub), then
sets aside an ephemeral key pair (Er_priv, Er_pub) for the response to it and computes
DH(Er_priv, Ei_pub), while the device answers the earlier ones on the loop's thread; libsodium
runs without the GIL, so the two overlap. The thread holds the GIL only between X25519s (a few
bytecodes), so it does not contend with the device's Python the way a thread running handshake
code would.

`take(private, public)` hands over a DH computed for exactly that pair of keys; one not computed
yet marks its initiation, the thread skips it and the device computes it inline. `ephemeral(Ei)`
hands out the key pair set aside for the response to Ei, else one from a pool of POOL made
between wake-ups, else None (the device draws and derives its own, as before). Each key pair
is handed out once; the private key is clamped os.urandom, as Entropy draws it. No waiting, no
locks: dict, set and deque operations are atomic under the GIL. What a wake-up left untaken (a
message refused before it was opened) is dropped at the next. No process pool: a thread of the
node, whose CPU time is the node's (/proc/PID/stat, the bench).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque

from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base
from nacl.exceptions import RuntimeError as NaclRuntimeError

from ..protocol.constants import KEY_SIZE
from ..protocol.crypto import clamp

POOL = 64  # ephemeral key pairs kept ready: a wake-up's worth of responses (live.BATCH)
_REFILL = "refill"


def _key_pair() -> tuple[bytes, bytes]:
    private = clamp(os.urandom(KEY_SIZE))
    return private, crypto_scalarmult_base(private)


class HandshakeAhead:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._ready: dict[tuple[bytes, bytes], bytes] = {}  # (private, public) -> X25519 of them
        self._skipped: set[bytes] = set()  # initiations' ephemerals the device did not wait for
        self._assigned: dict[bytes, tuple[bytes, bytes]] = {}  # Ei_pub -> the key pair for its response
        self._generation = 0
        self._pool: deque[tuple[bytes, bytes]] = deque()
        self._refilling = True
        self.submitted = self.computed = self.taken = 0  # initiations submitted, opened ahead; DHs taken
        self.ephemerals_made = self.ephemerals_taken = 0
        self._thread = threading.Thread(target=self._serve, name="wgscope-handshake-ahead", daemon=True)
        self._thread.start()
        self._jobs.put(_REFILL)

    def submit(self, private: bytes, ephemerals: list[bytes]) -> None:
        self._generation += 1  # the worker drops the last wake-up's rest: the device has passed it
        self._ready = {}
        self._skipped = set()
        self._assigned = {}
        self.submitted += len(ephemerals)
        self._jobs.put((self._generation, private, ephemerals))

    def take(self, private: bytes, public: bytes) -> bytes | None:
        """X25519(private, public) if it was computed ahead, once; else None (compute it inline)."""
        dh = self._ready.pop((private, public), None)
        if dh is None:
            self._skipped.add(public)
        else:
            self.taken += 1
        return dh

    def ephemeral(self, remote_ephemeral: bytes = b"") -> tuple[bytes, bytes] | None:
        """A fresh ephemeral key pair (private, public): the one set aside for the response to
        `remote_ephemeral`, else one from the pool, else None. Asks for a refill when half the pool is gone."""
        pair = self._assigned.pop(remote_ephemeral, None) if remote_ephemeral else None
        pool = self._pool
        if pair is None:
            try:
                pair = pool.popleft()
            except IndexError:
                return None
        self.ephemerals_taken += 1
        if len(pool) < POOL // 2 and not self._refilling:
            self._refilling = True
            self._jobs.put(_REFILL)
        return pair

    def _serve(self) -> None:
        get = self._jobs.get
        while True:
            job = get()
            if job is None:
                return
            if job is _REFILL:
                self._refill()
            else:
                self._compute(*job)

    def _compute(self, generation: int, private: bytes, ephemerals: list[bytes]) -> None:
        """For each initiation in order: DH(Sr, Ei), a key pair for its response, DH(Er, Ei)."""
        ready, skipped, assigned, pool = self._ready, self._skipped, self._assigned, self._pool
        for ephemeral in ephemerals:
            if generation != self._generation:
                return
            if ephemeral in skipped:
                continue
            try:
                ready[(private, ephemeral)] = crypto_scalarmult(private, ephemeral)
                self.computed += 1
                if ephemeral in skipped:  # opened inline meanwhile: its response is being made now
                    continue
                try:
                    pair = pool.popleft()
                except IndexError:
                    pair = _key_pair()
                    self.ephemerals_made += 1
                assigned[ephemeral] = pair
                ready[(pair[0], ephemeral)] = crypto_scalarmult(pair[0], ephemeral)
            except NaclRuntimeError:
                continue  # all zeros (a low-order point): the device finds that out inline

    def _refill(self) -> None:
        """Top the pool up to POOL; a wake-up's DHs submitted meanwhile go first (they have a deadline)."""
        pool, jobs = self._pool, self._jobs
        while len(pool) < POOL and jobs.empty():
            pool.append(_key_pair())
            self.ephemerals_made += 1
        self._refilling = False

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=1.0)
