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


# new_action(SendDatagram, (data, endpoint)) is SendDatagram(data, endpoint) without the NamedTuple's
# Python __new__ frame: the per-packet form of the data path (send.py, receive.py, lone.py).
new_action = tuple.__new__
