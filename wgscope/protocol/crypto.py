"""The primitives of WP §5.4, built from well-kept libraries.

X25519 and ChaCha20-Poly1305 come from `cryptography`, BLAKE2s from `hashlib`,
XChaCha20-Poly1305 (cookie replies) from PyNaCl/libsodium. This module only names
them the way the whitepaper does: HASH, MAC, HMAC, KDFn, AEAD, XAEAD, DH.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.exceptions import InvalidTag
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

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


def HMAC(key: bytes, data: bytes) -> bytes:
    return _hmac.new(key, data, _blake2s).digest()


def KDF1(key: bytes, data: bytes) -> bytes:
    t0 = HMAC(key, data)
    return HMAC(t0, b"\x01")


def KDF2(key: bytes, data: bytes) -> tuple[bytes, bytes]:
    t0 = HMAC(key, data)
    t1 = HMAC(t0, b"\x01")
    t2 = HMAC(t0, t1 + b"\x02")
    return t1, t2


def KDF3(key: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:
    t0 = HMAC(key, data)
    t1 = HMAC(t0, b"\x01")
    t2 = HMAC(t0, t1 + b"\x02")
    t3 = HMAC(t0, t2 + b"\x03")
    return t1, t2, t3


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


def private_key_object(private: bytes | X25519PrivateKey) -> X25519PrivateKey:
    """A key object for repeated use. Building one costs a scalar multiplication (OpenSSL derives
    the public key at once), as much as a DH: keep it rather than the bytes where a key is used
    twice (the static key, a handshake's ephemeral)."""
    if isinstance(private, X25519PrivateKey):
        return private
    return X25519PrivateKey.from_private_bytes(private)


def public_key(private: bytes | X25519PrivateKey) -> bytes:
    return private_key_object(private).public_key().public_bytes_raw()


class DHError(Exception):
    """The DH result was all zeros (a low-order point)."""


def DH(private: bytes | X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private_key_object(private).exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # cryptography refuses an all-zero shared secret
        raise DHError("X25519 produced an all-zero shared secret") from None
