"""A UAPI get: the key=value lines wg show reads, in wireguard-go's order."""

from __future__ import annotations

import math

from ..events import UAPI_GET
from ..protocol.crypto import same_secret
from ..protocol.endpoint import endpoint_text

def get_lines(node) -> list[str]:
    """The key=value lines of a get, in wireguard-go's order (device, then each peer)."""
    device = node.device
    out: list[str] = []
    private = device.identity.private if device.identity else bytes(32)
    if not same_secret(private, bytes(32)):
        out.append("private_key=" + private.hex())
    if device.listen_port:
        out.append(f"listen_port={device.listen_port}")
    if device.fwmark:
        out.append(f"fwmark={device.fwmark}")
    networks = device.allowed_ips.networks
    for peer in device.peers.values():
        out.append("public_key=" + peer.public_key.hex())
        out.append("preshared_key=" + peer.preshared_key.hex())
        out.append("protocol_version=1")
        if peer.endpoint is not None:
            out.append("endpoint=" + endpoint_text(peer.endpoint))
        sec, nsec = _wall_split(peer.last_handshake_wall)
        out.append(f"last_handshake_time_sec={sec}")
        out.append(f"last_handshake_time_nsec={nsec}")
        out.append(f"tx_bytes={peer.tx_bytes}")
        out.append(f"rx_bytes={peer.rx_bytes}")
        out.append(f"persistent_keepalive_interval={peer.persistent_keepalive}")
        out.extend(f"allowed_ip={net}" for net in networks(peer))
    return out


def _wall_split(wall: float | None) -> tuple[int, int]:
    if not wall:
        return 0, 0
    sec = math.floor(wall)
    return sec, min(round((wall - sec) * 1e9), 999_999_999)


def handle_get(node) -> str:
    """The whole answer to `get=1`: the lines, errno=0 and the blank line."""
    lines = get_lines(node)
    device = node.device
    device.bus.emit(UAPI_GET, node.now(), None, peers=len(device.peers), lines=len(lines))
    lines.append("errno=0")
    return "\n".join(lines) + "\n\n"
