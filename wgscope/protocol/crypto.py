"""The primitives of WP §5.4, built from well-kept libraries.

ChaCha20-Poly1305 comes from `cryptography`, BLAKE2s from `hashlib`, X25519 and
XChaCha20-Poly1305 (cookie replies) from PyNaCl/libsodium. This module only names
them the way the whitepaper does: HASH, MAC, HMAC, KDFn, AEAD, XAEAD, DH.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.exceptions import InvalidTag
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
)
from nacl.exceptions import CryptoError
from nacl.exceptions import RuntimeError as NaclRuntimeError

__all__ = [
    "AuthenticationError", "HASH", "MAC", "HMAC", "KDF1", "KDF2", "KDF3", "AEAD", "AEAD_OPEN",
    "XAEAD", "XAEAD_OPEN", "DH", "public_key", "clamp", "nonce", "same_secret",
]


class AuthenticationError(Exception):
    """Something did not authenticate. `reason` is a stable token: bad_tag (an AEAD tag did not
    verify), no_mac1_sent (a cookie reply to a message we never sent)."""

    def __init__(self, reason: str = "bad_tag", detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


_blake2s = hashlib.blake2s


def HASH(data: bytes) -> bytes:
    return _blake2s(data).digest()


def MAC(key: bytes, data: bytes) -> bytes:
    """Keyed BLAKE2s with a 16-byte digest (WP §5.4: MAC(key, input))."""
    return _blake2s(data, digest_size=16, key=key).digest()


_BLOCK = 64  # BLAKE2s block size: HMAC pads the key to it (RFC 2104)
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def HMAC(key: bytes, data: bytes) -> bytes:
    """RFC 2104 HMAC over BLAKE2s, exactly what hmac.new(key, data, blake2s) computes, written out:
    the generic hmac module's set-up cost twice the hashing, and a handshake makes 21 of these."""
    if len(key) > _BLOCK:
        key = _blake2s(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = _blake2s(key.translate(_IPAD))
    inner.update(data)
    return _blake2s(key.translate(_OPAD) + inner.digest()).digest()


def hmac_key(key: bytes) -> tuple:
    """The two BLAKE2s states of HMAC(key, ·) after the padded key block, (inner, outer), for a
    key that keys several HMACs (`hmac_with`): HKDF's t0, or a constant such as Ci."""
    if len(key) > _BLOCK:
        key = _blake2s(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return _blake2s(key.translate(_IPAD)), _blake2s(key.translate(_OPAD))


def hmac_with(pads: tuple, data: bytes) -> bytes:
    """HMAC(key, data) from hmac_key(key), which stays unchanged (the states are copied)."""
    inner = pads[0].copy()
    inner.update(data)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def KDF1(key: bytes, data: bytes) -> bytes:
    t0 = HMAC(key, data)
    return HMAC(t0, b"\x01")


def KDF1_with(pads: tuple, data: bytes) -> bytes:
    """KDF1(key, data) for a key given as hmac_key(key) (the constant Ci, WP §5.4.2)."""
    return HMAC(hmac_with(pads, data), b"\x01")


def KDF2(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    pads = hmac_key(HMAC(key, data))  # t0 keys both expand steps
    t1 = hmac_with(pads, b"\x01")
    return t1, hmac_with(pads, t1 + b"\x02")


def KDF3(key: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
    pads = hmac_key(HMAC(key, data))  # t0 keys the three expand steps
    t1 = hmac_with(pads, b"\x01")
    t2 = hmac_with(pads, t1 + b"\x02")
    return t1, t2, hmac_with(pads, t2 + b"\x03")


nonce = struct.Struct("<4xQ").pack
"""nonce(counter): 32 zero bits then the 64-bit little-endian counter (WP §5.4, AEAD)."""


def AEAD(key: bytes, counter: int, plaintext: bytes, ad: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(nonce(counter), plaintext, ad)


def AEAD_OPEN(key: bytes, counter: int, ciphertext: bytes, ad: bytes) -> bytes:
    try:
        return ChaCha20Poly1305(key).decrypt(nonce(counter), ciphertext, ad)
    except InvalidTag:
        raise AuthenticationError("bad_tag", "AEAD tag mismatch") from None


def XAEAD(key: bytes, nonce24: bytes, plaintext: bytes, ad: bytes) -> bytes:
    return crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce24, key)


def XAEAD_OPEN(key: bytes, nonce24: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce24, key)
    except CryptoError:
        raise AuthenticationError("bad_tag", "XAEAD tag mismatch") from None


def same_secret(a: bytes, b: bytes) -> bool:
    """Equality of two secrets (keys, macs) in constant time, as the kernel's crypto_memneq."""
    return _hmac.compare_digest(a, b)


def clamp(private: bytes) -> bytes:
    """Curve25519 clamping, as `wg genkey` does (RFC 7748 §5)."""
    b = bytearray(private)
    b[0] &= 248
    b[31] = (b[31] & 127) | 64
    return bytes(b)


def public_key(private: bytes) -> bytes:
    """X25519 of the base point (libsodium's, with its precomputed table: about half the time of
    building a `cryptography` key object, which derives the public key by a full multiplication)."""
    return crypto_scalarmult_base(private)


class DHError(Exception):
    """The DH result was all zeros (a low-order point)."""


def DH(private: bytes, public: bytes) -> bytes:
    """X25519(private, public) (RFC 7748, the scalar clamped) by libsodium, on the raw 32-byte keys:
    no key objects to build per handshake."""
    try:
        return crypto_scalarmult(private, public)
    except NaclRuntimeError:  # libsodium refuses an all-zero shared secret (a low-order point)
        raise DHError("X25519 produced an all-zero shared secret") from None
