"""A handshake flooder: initiations with a valid mac1 and a bogus rest.

mac1 only proves the sender knows the responder's public key, so it is the cheapest
initiation that gets past the first check. With `earn_cookies`, the flooder also does what a
real attacker owning its source addresses can do: decrypt the cookie replies sent to it
(cookie replies are sealed to HASH(LABEL_COOKIE || responder public key), which is public)
and put a valid mac2 on later initiations, which brings the per-source rate limiter in.

Run as a script it floods a live node over UDP, a bounded number of datagrams at a bounded
rate, and reports what came back:

    python tests/flood.py HOST PORT RESPONDER_PUBLIC_B64 COUNT RATE [--earn-cookies] [--sources N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wgscope.keytext import decode  # noqa: E402
from wgscope.protocol.constants import MESSAGE_COOKIE_REPLY, MESSAGE_INITIATION  # noqa: E402
from wgscope.protocol.cookie import CookieGenerator  # noqa: E402
from wgscope.protocol.crypto import AuthenticationError  # noqa: E402
from wgscope.protocol.messages import MessageError, message_type, parse_cookie_reply  # noqa: E402

BODY = 148 - 4 - 32  # sender index, ephemeral, encrypted static and timestamp: all random
KEEP_MAC1S = 256  # initiations per source whose cookie reply may still be on its way


class Flooder:
    """Bogus initiations for one responder, one CookieGenerator per source we pretend to be."""

    def __init__(self, responder_public: bytes, seed: int = 0) -> None:
        self.responder_public = responder_public
        self.rng = random.Random(seed)
        self.sources: dict[object, CookieGenerator] = {}
        self.sent_mac1s: dict[object, list[bytes]] = {}  # per source, the mac1s of the latest initiations
        self.cookies_earned = 0

    def initiation(self, source, now: float) -> bytes:
        gen = self.sources.get(source)
        if gen is None:
            gen = self.sources[source] = CookieGenerator(self.responder_public)
        msg = bytes([MESSAGE_INITIATION, 0, 0, 0]) + self.rng.randbytes(BODY) + bytes(32)
        data, _ = gen.add_macs(msg, now)
        recent = self.sent_mac1s.setdefault(source, [])
        recent.append(gen.last_mac1)
        del recent[:-KEEP_MAC1S]
        return data

    def take_reply(self, source, data: bytes, now: float) -> bool:
        """Keep the cookie from a cookie reply sent to `source`; True if it was one and it opened."""
        try:
            if message_type(data) != MESSAGE_COOKIE_REPLY:
                return False
        except MessageError:
            return False
        gen = self.sources.get(source)
        if gen is None:
            return False
        # A reply answers one of the latest initiations, not necessarily the last (at hundreds per
        # second the next one has often left before the reply is back): try each, newest first.
        reply = parse_cookie_reply(data)
        last = gen.last_mac1
        for mac1 in reversed(self.sent_mac1s.get(source, [])):
            gen.last_mac1 = mac1
            try:
                gen.consume_reply(reply, now)
            except AuthenticationError:
                continue
            gen.last_mac1 = last
            self.cookies_earned += 1
            return True
        gen.last_mac1 = last
        return False


def flood_udp(host: str, port: int, responder_public: bytes, count: int, rate: float, earn_cookies: bool,
              sources: int) -> dict:
    """Send `count` initiations at about `rate` per second from `sources` UDP sockets; count replies."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    for _ in range(sources):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind(("", 0))
        s.setblocking(False)
        socks.append(s)
    flooder = Flooder(responder_public)
    ports = [s.getsockname()[1] for s in socks]
    replies = cookies = 0
    start = time.monotonic()
    for i in range(count):
        s = socks[i % sources]
        s.sendto(flooder.initiation(s.fileno(), time.monotonic()), (host, port))
        for t in socks if i % 64 == 0 else (s,):
            while True:
                try:
                    data = t.recv(2048)
                except BlockingIOError:
                    break
                replies += 1
                if earn_cookies and flooder.take_reply(t.fileno(), data, time.monotonic()):
                    cookies += 1
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    time.sleep(0.2)
    for t in socks:
        while True:
            try:
                t.recv(2048)
                replies += 1
            except BlockingIOError:
                break
        t.close()
    return {"sent": count, "replies": replies, "cookies": cookies, "seconds": round(time.monotonic() - start, 3),
            "ports": ports}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("public_key")
    p.add_argument("count", type=int)
    p.add_argument("rate", type=float)
    p.add_argument("--earn-cookies", action="store_true")
    p.add_argument("--sources", type=int, default=1)
    a = p.parse_args()
    if not 0 < a.count <= 1_000_000 or not 0 < a.rate <= 100_000:
        p.error("count and rate must be bounded")
    print(json.dumps(flood_udp(a.host, a.port, decode(a.public_key), a.count, a.rate, a.earn_cookies, a.sources)))


if __name__ == "__main__":
    main()
