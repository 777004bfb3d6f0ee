"""What the sans-IO core asks its adapter to do."""

from __future__ import annotations

from typing import NamedTuple


class SendDatagram(NamedTuple):
    """Send `data` over UDP to `endpoint` (host, port)."""

    data: bytes
    endpoint: tuple


class WritePacket(NamedTuple):
    """Write an IP packet to the TUN device."""

    packet: bytes
