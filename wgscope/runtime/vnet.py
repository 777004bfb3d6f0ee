"""The virtio_net_hdr that leads every read and write of a TUN opened with IFF_VNET_HDR, and the
Internet checksum arithmetic the offload paths share (runtime/gso_split.py on reads,
runtime/tcp_coalesce.py on writes).

Layout and flags from linux/virtio_net.h; TUNSETOFFLOAD flags from linux/if_tun.h.

The Internet checksum (RFC 1071) is a one's-complement sum of 16-bit words. Because
2**16 == 1 (mod 0xFFFF), a big-endian byte string read as one integer is congruent to the sum
of its words mod 0xFFFF, so `int.from_bytes(b, "big") % 0xFFFF` is the folded sum (0 standing
for the one's-complement 0xFFFF), computed in C. For many segments at once, numpy's
`add.reduceat` over the words is cheaper still.
"""

from __future__ import annotations

import struct

import numpy as np

VNET_HDR = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR_SIZE = VNET_HDR.size  # 10
NO_OFFLOAD = bytes(VNET_HDR_SIZE)

# virtio_net_hdr.flags
F_NEEDS_CSUM = 1  # VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum from csum_start, stored at +csum_offset
# virtio_net_hdr.gso_type
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_TCPV6 = 4
GSO_UDP_L4 = 5  # USO (kernel >= 6.2)
# (UFO, type 3, and the ECN bit 0x80 come only with TUN_F_UFO / TUN_F_TSO_ECN, never requested:
# a read carrying them is refused as unknown_gso_type)

# TUNSETOFFLOAD = _IOW('T', 208, unsigned int) and its flags
TUNSETOFFLOAD = 0x400454D0
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

PROTO_TCP = 6
PROTO_UDP = 17


def fold(data, start: int = 0) -> int:
    """The folded one's-complement sum of `data[start:]` (odd length padded with a zero byte)."""
    view = data[start:]
    if len(view) & 1:
        return (int.from_bytes(view, "big") << 8) % 0xFFFF
    return int.from_bytes(view, "big") % 0xFFFF


def checksum(total: int) -> int:
    """The checksum field that makes a sum of `total` (field taken as 0) verify: ~fold(total)."""
    return -total % 0xFFFF


def pseudo_header(packet, version: int, proto: int, length: int) -> int:
    """The pseudo-header's sum (RFC 793 / RFC 8200 §8.1) for an upper-layer length `length`."""
    if version == 4:
        return int.from_bytes(packet[12:20], "big") + proto + length
    return int.from_bytes(packet[8:40], "big") + proto + length


def segment_sums(data, start: int, stride: int) -> np.ndarray:
    """For each `stride`-byte piece of `data[start:]` (the last may be shorter), its words' sum
    mod 0xFFFF (int64), all in a few numpy calls.

    With `stride` a multiple of 4 the bytes are summed as native little-endian 32-bit words: as
    2**16 == 1 (mod 0xFFFF) the width does not matter, and the byte order only rotates the folded
    sum by 8 bits (RFC 1071 §2(B)), so multiplying by 2**8 gives the big-endian sum back."""
    body = data[start:]
    n = len(body)
    if stride & 3 == 0:
        if n & 3:
            body = bytes(body) + bytes(4 - (n & 3))
        words = np.frombuffer(body, dtype="<u4")
        sums = np.add.reduceat(words, np.arange(0, len(words), stride >> 2), dtype=np.uint64)
        return (sums % 0xFFFF * 256 % 0xFFFF).astype(np.int64)
    if stride & 1 == 0:
        if n & 1:
            body = bytes(body) + b"\0"
        words = np.frombuffer(body, dtype=">u2")
        sums = np.add.reduceat(words, np.arange(0, len(words), stride >> 1), dtype=np.uint64)
        return (sums % 0xFFFF).astype(np.int64)
    return np.array([fold(body, a) if a + stride >= n else fold(body[a:a + stride])
                     for a in range(0, n, stride)], dtype=np.int64)
