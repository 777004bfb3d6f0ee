"""The one source of randomness and of wall-clock-derived message fields.

Every value the core or the lab does not compute from its inputs comes from an `Entropy`:
receiver indices, ephemeral private keys, timer jitter, the cookie secret and cookie-reply
nonces, generated private keys, the lab network's impairments, and the TAI64N timestamp an
initiation carries. Each kind is its own method, so an adapter can replace one kind and keep
the others: the live node uses the default (os.urandom and SystemRandom), the lab a seeded
one (the same seed gives the same bytes), and replay a subclass that answers with the
ephemerals, indices and timestamps a capture and its key log show.

A seeded Entropy is for the lab and tests only: its keys come from `random.Random`, which is
predictable by design.
"""

from __future__ import annotations

import os
import random
import struct
from typing import Callable

from .constants import COOKIE_NONCE_SIZE, KEY_SIZE
from .crypto import clamp
from . import tai64n as _tai64n

INDICES = 64  # receiver indices drawn from one os.urandom read
_INDICES = struct.Struct(f"={INDICES}I")
JITTERS = 64  # timer jitters drawn at once (live): a refill per 64 round trips of a ping
COOKIE_SECRET_SIZE = 32  # Rm, a random 32-byte secret (WP §5.4.7; WG-GO cookie.go secret [blake2s.Size]byte)


class Entropy:
    """The default draws from the operating system: os.urandom for key material and nonces,
    SystemRandom for indices and jitter. `Entropy.seeded(seed)` is deterministic."""

    def __init__(self, seed: int | str | None = None) -> None:
        """With a seed, two streams: numbers (indices, jitter, the lab's draws) and key material
        (ephemerals, cookie secrets and nonces, keys), apart so that a key drawn more or less does
        not move any index or timer."""
        self.seed = seed
        if seed is None:
            self._numbers: random.Random = random.SystemRandom()
            self._keys: random.Random | None = None
            # Jitter needs no secrecy (WG-GO timers.go draws it with fastrandn), and the new-handshake
            # timer is armed for nearly every data packet: a PRNG seeded once by the OS, not a
            # getrandom syscall per packet (bench/README.md section 10).
            self._jitter: random.Random = random.Random(os.urandom(32))
            self._fractions: list[float] = []  # JITTERS of its draws at a time (jitter)
            # Indices likewise: a getrandom syscall per index (SystemRandom) ran cold at ~3% of a
            # responder's time under a handshake flood (bench/README.md section 13); one read serves INDICES.
            self._indices: list[int] = []
        else:
            self._numbers = random.Random(seed)
            self._keys = random.Random(f"wgscope key material {seed}")
            self._jitter = self._numbers  # one stream, as before: seeded labs replay alike

    @classmethod
    def seeded(cls, seed: int | str) -> "Entropy":
        """Deterministic: two Entropies seeded alike return the same values in the same order."""
        return cls(seed)

    def _bytes(self, size: int) -> bytes:
        return os.urandom(size) if self._keys is None else self._keys.randbytes(size)

    # ---------------------------------------------------------------- the core's inputs
    def index(self, message: str, peer: bytes) -> int:
        """A candidate receiver index (32 bits; WP §5.4.2 "chosen randomly"). The core calls it
        when it creates an initiation (`message` "initiation") or a response ("response") for the
        peer whose static public key is `peer`; it calls again while the value is 0 or already in
        its index table, so an override must not return one used value forever."""
        if self._keys is None:  # the OS's: 4 bytes of a getrandom read made for INDICES at once
            indices = self._indices
            if not indices:
                indices.extend(_INDICES.unpack(os.urandom(_INDICES.size)))
            return indices.pop()
        return self._numbers.getrandbits(32)

    def ephemeral_private(self, message: str, peer: bytes) -> bytes:
        """The 32-byte ephemeral private key for a new initiation or response (`message`) to the
        peer `peer` (WP §5.4.2-5.4.3: E_priv := DH-GENERATE()). Called once per message created,
        after `index`."""
        return clamp(self._bytes(KEY_SIZE))

    # An adapter's ephemeral key pairs made ahead on another thread (runtime/handshake_ahead.py):
    # () -> (private, public), or None when none is ready. Only the OS-drawn default takes them: a
    # seeded Entropy (lab, tests) and replay's stay byte-for-byte what they were.
    ephemeral_pairs: Callable[[], tuple[bytes, bytes] | None] | None = None

    def ephemeral_keypair(self, message: str, peer: bytes) -> tuple[bytes, bytes | None]:
        """The ephemeral for a new message as `ephemeral_private` draws it, with its public key
        when that was derived ahead (else None: the caller derives it, DH-GENERATE's second half)."""
        if self.ephemeral_pairs is not None and self._keys is None:
            pair = self.ephemeral_pairs()
            if pair is not None:
                return pair
        return self.ephemeral_private(message, peer), None

    def tai64n(self, wall: float) -> bytes:
        """The 12-byte TAI64N timestamp written into an initiation created at wall-clock time
        `wall` (seconds since 1970; WP §5.4.2). Called once per initiation, after
        `ephemeral_private`."""
        return _tai64n.stamp(wall)

    def jitter(self, maximum: float) -> float:
        """Seconds in [0, maximum] added to a handshake retransmit or new-handshake timer (WG-GO
        timers.go: up to REKEY_TIMEOUT_JITTER_MAX). Called each time one of those is armed."""
        if self._keys is not None:  # seeded: one draw from the shared stream, as before (labs replay alike)
            return self._jitter.uniform(0, maximum)
        # Live: Random.uniform's Python and C run cold for every data packet at ping rates (one draw
        # per round trip: the new-handshake timer is cancelled by the answer); a list pop is cheaper.
        # The same draws in the same order, uniform's own formula (a + (b - a) * random(), a = 0).
        fractions = self._fractions
        if not fractions:
            fractions[:] = [self._jitter.random() for _ in range(JITTERS)]
            fractions.reverse()
        return maximum * fractions.pop()

    def cookie_secret(self) -> bytes:
        """The 32-byte secret Rm that cookies are made from (WP §5.4.7). Called when the device,
        under load, answers with a cookie reply and its secret is older than COOKIE_REFRESH_TIME."""
        return self._bytes(COOKIE_SECRET_SIZE)

    def cookie_nonce(self) -> bytes:
        """The 24-byte XChaCha20 nonce of a cookie reply (WP §5.4.7). Called once per cookie reply."""
        return self._bytes(COOKIE_NONCE_SIZE)

    # ---------------------------------------------------------------- configuration and the lab
    def private_key(self) -> bytes:
        """A new static private key, clamped as `wg genkey` does. Called by `wgscope genkey` and
        for lab nodes given no key."""
        return clamp(self._bytes(KEY_SIZE))

    def preshared_key(self) -> bytes:
        """A new pre-shared key, 32 random bytes. Called by `wgscope genpsk`."""
        return self._bytes(KEY_SIZE)

    def fraction(self) -> float:
        """A float in [0, 1): the lab network's loss, duplication and reordering draws."""
        return self._numbers.random()

    def uniform(self, low: float, high: float) -> float:
        """A float in [low, high]: the lab network's latency jitter."""
        return self._numbers.uniform(low, high)

    def derive(self) -> "Entropy":
        """An independent source for a part (a lab node): the default's is another default; a
        seeded one's is seeded from this one's numbers, so the whole lab follows one seed."""
        return Entropy() if self.seed is None else Entropy(self._numbers.getrandbits(64))


SYSTEM = Entropy()


def generate_private_key() -> bytes:
    """A new static private key from the operating system's randomness (`wg genkey`)."""
    return SYSTEM.private_key()
