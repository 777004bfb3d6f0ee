"""Sealing a side's own transport without sealing it twice.

A re-executed side re-sends each inner packet it sent: its core routes, pads, numbers and
seals it, and the datagram is compared with the wire's byte for byte (node.py). The wire's
datagram has already been opened under the same session's keys (the observer decrypted it to
get the inner packet). ChaCha20-Poly1305 is deterministic, and opening is the inverse of
sealing: if Open(K, n, C) = P with a valid tag, then Seal(K, n, P) = C exactly (the keystream
is fixed by K and n, so the ciphertext body is P xor keystream = C's body, and the tag is a
function of K, n and that body, which Open just checked equals C's tag). So when the core asks
to seal, under that keypair's key, a padded plaintext equal byte for byte to P with the nonce n,
the answer is C, and this memo gives it without running the cipher.

Two conditions make that sound here, and both are checked, never assumed:

- The key. The observer opened C with its own cipher object, built from the capture's keys;
  the core seals with the keypair it derived itself. The memo serves a keypair only after one
  real seal of that keypair reproduced the wire's bytes for the same nonce (its first sealing
  with an expectation): equal output for equal (n, P) under ChaCha20-Poly1305 means equal keys,
  short of a forgery of the cipher. Until then every seal is real.
- The input. The nonce (the counter) and the padded plaintext must be equal; anything else
  (other padding, another counter, other bytes) is sealed for real, and the caller's byte
  comparison of the whole datagram with the wire says where they differ.

tests/test_replay_runs.py checks that a capture with one transport message altered (a flipped
bit in the ciphertext, the tag, or the counter) is still reported as a divergence.
"""

from __future__ import annotations

import struct

from ..protocol.messages import transport_sealed

_counter_of = struct.Struct("<4xQ").unpack_from  # the nonce's counter (protocol/crypto.py `nonce`)


class SealMemo:
    """Stands in for a keypair's send cipher (the same encrypt/decrypt calls)."""

    __slots__ = ("cipher", "first", "count", "padded", "sealed", "proven")

    def __init__(self, cipher) -> None:
        self.cipher = cipher
        self.first = 0  # the counter of padded[0] / sealed[0]; a run's counters are consecutive
        self.count = 0  # how many counters from `first` are expected (0: none)
        self.padded: list = []
        self.sealed: list = []  # the wire's ciphertext and tag of each (views of the capture)
        self.proven = False  # a real seal of this key reproduced the wire

    def expect(self, counters, padded, datagrams) -> None:
        """The wire's datagrams for these counters, with the padded plaintexts they open to (None:
        not known). Counters that are not consecutive are not served."""
        consecutive = len(counters) and counters[-1] - counters[0] == len(counters) - 1
        self.first = counters[0] if consecutive else 0
        self.count = len(counters) if consecutive else 0
        self.padded, self.sealed = (padded, list(map(transport_sealed, datagrams))) if consecutive else ([], [])

    def encrypt(self, n: bytes, plain: bytes, aad) -> bytes:
        # Once per transport message sent: the usual case (proven, expected, the very packet the
        # core was given, unpadded) is tested first, by identity; everything else goes to _seal.
        k = _counter_of(n)[0] - self.first
        if self.proven and 0 <= k < self.count and aad is None and self.padded[k] is plain:
            return self.sealed[k]
        return self._seal(k, n, plain, aad)

    def _seal(self, k: int, n: bytes, plain: bytes, aad) -> bytes:
        if 0 <= k < self.count and aad is None:
            expected = self.padded[k]
            if expected is not None:
                if self.proven:
                    if expected == plain:
                        return self.sealed[k]
                else:
                    sealed = self.cipher.encrypt(n, plain, aad)
                    self.proven = sealed == bytes(self.sealed[k])
                    return sealed
        return self.cipher.encrypt(n, plain, aad)

    def decrypt(self, n: bytes, data, aad) -> bytes:
        return self.cipher.decrypt(n, data, aad)
