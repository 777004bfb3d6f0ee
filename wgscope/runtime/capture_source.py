"""The local address a datagram leaves from, for captures of a live node.

A capture's frame names both ends of each datagram. The node sends from a wildcard socket, so
the source is the one `udp.local_for` pinned for that endpoint (runtime/udp.py), or else the
kernel's route choice: a connected probe socket's name, trusted for ROUTE_CACHE_TIME before it
is asked again.
"""

from __future__ import annotations

import socket
from typing import Callable

ROUTE_CACHE_TIME = 5.0  # s: how long the kernel's source choice for an endpoint is trusted


class CaptureSource:
    def __init__(self, udp, now: Callable[[], float]) -> None:
        self.udp = udp
        self.now = now
        self._routes: dict[tuple, tuple] = {}
        self._since = 0.0

    def __call__(self, endpoint: tuple) -> tuple:
        """The local (ip, port) a datagram to `endpoint` leaves from."""
        pinned = self.udp.local_for(endpoint)
        if pinned:
            return pinned
        now = self.now()
        if now - self._since > ROUTE_CACHE_TIME:
            self._routes.clear()
            self._since = now
        key = (endpoint[0], endpoint[1])
        src = self._routes.get(key)
        if src is None:
            family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
            try:
                with socket.socket(family, socket.SOCK_DGRAM) as probe:
                    probe.connect(key)
                    src = (probe.getsockname()[0], self.udp.port)
            except OSError:
                src = ("::" if family == socket.AF_INET6 else "0.0.0.0", self.udp.port)
            self._routes[key] = src
        return src
