"""The live node's handshake look-ahead: DH(Sr_priv, Ei_pub) of a wake-up's initiations on a second thread.

Under a handshake flood the live node reads a wake-up's datagrams before handing them to the
device, which passes the ephemeral keys of the initiations it would open to `submit`
(protocol/lookahead.py). This thread computes their DH with the device's static key, in order,
while the device answers the earlier ones on the loop's thread; libsodium runs without the GIL,
so the two overlap. The thread holds the GIL only between X25519s (a few bytecodes), so it does
not contend with the device's Python the way a thread running handshake code would.

`take` hands over a DH computed for exactly that (static key, ephemeral); one not computed yet is
marked, the thread skips it and the device computes it inline. No waiting, no locks: dict, set
and deque operations are atomic under the GIL. What a wake-up left untaken (a message refused before
it was opened) is dropped at the next. No process pool: a thread of the node, whose CPU time is
the node's (/proc/PID/stat, the bench).

Between wake-ups the thread also keeps POOL ephemeral key pairs ready for the device's responses
(`ephemeral`, which the node's Entropy draws from: Entropy.ephemeral_keypair): the private key
clamped os.urandom, as the device would draw it, the public key by libsodium's X25519 of the base
point, also without the GIL. Each pair is handed out once; a response that finds the pool empty
draws and derives its own, as before. (Also computing the response's DH(Er, Ei), and DH(Er, Si)
for a guessed Si, on this thread was measured and dropped: bench/README.md section 13.)
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


class HandshakeAhead:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._ready: dict[bytes, bytes] = {}
        self._skipped: set[bytes] = set()
        self._private = b""
        self._generation = 0
        self.submitted = self.computed = self.taken = 0  # how much of the work happened ahead
        self._pool: deque[tuple[bytes, bytes]] = deque()
        self._refilling = True
        self.ephemerals_made = self.ephemerals_taken = 0
        self._thread = threading.Thread(target=self._serve, name="wgscope-handshake-ahead", daemon=True)
        self._thread.start()
        self._jobs.put(_REFILL)

    def submit(self, private: bytes, ephemerals: list[bytes]) -> None:
        self._generation += 1  # the worker drops the last wake-up's rest: the device has passed it
        self._ready = {}
        self._skipped = set()
        self._private = private
        self.submitted += len(ephemerals)
        self._jobs.put((self._generation, private, ephemerals))

    def take(self, private: bytes, ephemeral: bytes) -> bytes | None:
        if private is not self._private:
            return None  # the device's key changed since
        dh = self._ready.pop(ephemeral, None)
        if dh is None:
            self._skipped.add(ephemeral)
        else:
            self.taken += 1
        return dh

    def ephemeral(self) -> tuple[bytes, bytes] | None:
        """A fresh ephemeral key pair (private, public) made ahead, or None when the pool is empty;
        each is handed out once. Asks the thread to refill when half the pool is gone."""
        pool = self._pool
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
                continue
            generation, private, ephemerals = job
            ready, skipped = self._ready, self._skipped
            for ephemeral in ephemerals:
                if generation != self._generation:
                    break
                if ephemeral in skipped:
                    continue
                try:
                    dh = crypto_scalarmult(private, ephemeral)
                except NaclRuntimeError:
                    continue  # all zeros (a low-order point): the device finds that out inline
                ready[ephemeral] = dh
                self.computed += 1

    def _refill(self) -> None:
        """Top the pool up to POOL; a wake-up's DHs submitted meanwhile go first (they have a deadline).
        The private keys of a refill come from one getrandom: os.urandom releases the GIL around
        it, so one call per key was one more hand-over of the GIL per answer (bench/README.md
        section 15), besides the X25519 of the public key."""
        pool, jobs = self._pool, self._jobs
        randomness = os.urandom(KEY_SIZE * (POOL - len(pool)))
        for start in range(0, len(randomness), KEY_SIZE):
            if not jobs.empty():
                break
            private = clamp(randomness[start:start + KEY_SIZE])
            pool.append((private, crypto_scalarmult_base(private)))
            self.ephemerals_made += 1
        self._refilling = False

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=1.0)
