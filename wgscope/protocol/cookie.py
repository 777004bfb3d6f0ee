"""mac1, mac2 and cookie replies (WP §5.4.4, §5.4.7; WG-GO device/cookie.go).

CookieChecker belongs to the device (messages sent to us); CookieGenerator belongs to a peer
(messages we send to it, and the cookie it gave us).
"""

from __future__ import annotations

import functools
import ipaddress

from .constants import COOKIE_REFRESH_TIME, LABEL_COOKIE, LABEL_MAC1, MAC_SIZE
from .crypto import HASH, MAC, XAEAD, XAEAD_OPEN, AuthenticationError, same_secret
from .entropy import Entropy
from .messages import CookieReply, pack_cookie_reply

_ZERO_MAC = bytes(MAC_SIZE)


def endpoint_bytes(host: str, port: int) -> bytes:
    """The source address a cookie is bound to (WP §5.4.7: IP address and UDP port)."""
    return _packed_address(host) + port.to_bytes(2, "big")


@functools.lru_cache(maxsize=4096)  # bounded: sources are the sender's choice; parsing one costs ~4 us
def _packed_address(host: str) -> bytes:
    return ipaddress.ip_address(host.split("%", 1)[0]).packed


class CookieChecker:
    """Responder side: validate mac1/mac2 and build cookie replies. The macs are compared in
    constant time (crypto.same_secret: hmac.compare_digest), as the kernel's crypto_memneq does (cookie.c)."""

    def __init__(self, mac1_key: bytes, cookie_key: bytes, entropy: Entropy) -> None:
        self.mac1_key = mac1_key
        self.cookie_key = cookie_key
        self.entropy = entropy
        self.secret = b""
        self.secret_set = float("-inf")
        # Messages of the wake-up being handled whose macs the handshake look-ahead checked
        # (protocol/lookahead.py): message -> (src, secret) when its mac2 was valid for that source
        # and cookie secret, (None, None) when only mac1 was checked. The receive path's checks of
        # the same message then answer from here, as they would have computed; replaced per wake-up.
        self.checked_ahead: dict[bytes, tuple] = {}

    def check_mac1(self, msg: bytes) -> bool:
        if msg in self.checked_ahead:
            return True
        end = len(msg) - 2 * MAC_SIZE
        return same_secret(MAC(self.mac1_key, msg[:end]), msg[end:end + MAC_SIZE])

    def _cookie(self, src: bytes) -> bytes:
        return MAC(self.secret, src)

    def check_mac2(self, msg: bytes, src: bytes, now: float) -> bool:
        if now - self.secret_set > COOKIE_REFRESH_TIME:
            return False  # the secret that made any cookie we handed out has expired
        ahead = self.checked_ahead.get(msg)
        if ahead is not None and ahead[1] is self.secret and ahead[0] == src:
            return True
        end = len(msg) - MAC_SIZE
        return same_secret(MAC(self._cookie(src), msg[:end]), msg[end:])

    def create_reply(self, msg: bytes, receiver_index: int, src: bytes, now: float) -> bytes:
        if now - self.secret_set > COOKIE_REFRESH_TIME:
            self.secret = self.entropy.cookie_secret()  # Rm, changed every two minutes (WP §5.4.7)
            self.secret_set = now
        mac1 = msg[len(msg) - 2 * MAC_SIZE:len(msg) - MAC_SIZE]
        nonce = self.entropy.cookie_nonce()
        sealed = XAEAD(self.cookie_key, nonce, self._cookie(src), mac1)
        return pack_cookie_reply(CookieReply(receiver_index, nonce, sealed))


class CookieGenerator:
    """Initiator side, per peer: add mac1/mac2 to what we send, take the peer's cookie."""

    def __init__(self, remote_static: bytes) -> None:
        self.mac1_key = HASH(LABEL_MAC1 + remote_static)
        self.cookie_key = HASH(LABEL_COOKIE + remote_static)
        self.cookie = b""
        self.cookie_set = float("-inf")
        self.last_mac1 = b""

    def has_fresh_cookie(self, now: float) -> bool:
        return bool(self.cookie) and now - self.cookie_set <= COOKIE_REFRESH_TIME

    def add_macs(self, msg: bytes, now: float) -> tuple[bytes, bool]:
        """Return msg with mac1 (always) and mac2 (when a fresh cookie is held) filled in."""
        end = len(msg) - 2 * MAC_SIZE
        body = msg[:end]
        mac1 = MAC(self.mac1_key, body)
        self.last_mac1 = mac1
        if self.has_fresh_cookie(now):
            mac2 = MAC(self.cookie, body + mac1)
            return body + mac1 + mac2, True
        return body + mac1 + _ZERO_MAC, False

    def consume_reply(self, reply: CookieReply, now: float) -> None:
        if not self.last_mac1:
            raise AuthenticationError("no_mac1_sent", "a cookie reply, but no message of ours carried a mac1")
        cookie = XAEAD_OPEN(self.cookie_key, reply.nonce, reply.encrypted_cookie, self.last_mac1)
        self.cookie = cookie
        self.cookie_set = now
