"""Send-side segmentation for a TUN with TUNSETOFFLOAD (TSO done in userspace).

With TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 (and USO4/6 where the kernel has them) the kernel's
TCP stack hands the TUN one "super-packet" of up to 64 KB per read instead of ~45 MTU-sized
packets, and leaves checksums partial. Before anything reaches the protocol core every read is
turned back into the packets a plain TUN would have given: cut at `gso_size`, each segment with
its own IP header (total/payload length, IPv4 ID + i, header checksum) and transport header
(TCP: sequence + i * mss, FIN and PSH on the last segment only, CWR on the first only, as the
kernel's tcp_gso_segment does; UDP: length), and a complete transport checksum — the peer may
be a WireGuard that writes what it decrypts to its TUN as it is (wireguard-go without
offloads), so every segment must be a packet a host accepts. A non-GSO read flagged
NEEDS_CSUM gets its checksum completed the same way. wireguard-go's tun/offload_linux.go does
the same in Go (read for reference, not copied).

All headers of a read are built at once: a numpy array with one row per segment, the fields
that differ (lengths, IDs, sequence numbers, flags, checksums) written as whole columns; the
payload words of all segments are summed in one `add.reduceat` (runtime/vnet.py). What is left
per segment in Python is joining its header row to its payload.
"""

from __future__ import annotations

import struct

import numpy as np

from .vnet import (
    F_NEEDS_CSUM, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, PROTO_TCP, PROTO_UDP, VNET_HDR,
    VNET_HDR_SIZE, checksum, fold, pseudo_header, segment_sums,
)

FIN, PSH, CWR = 0x01, 0x08, 0x80
_u16 = struct.Struct("!H")
_u32 = struct.Struct("!I")
GSO_TYPES = {GSO_TCPV4: (4, PROTO_TCP), GSO_TCPV6: (6, PROTO_TCP), GSO_UDP_L4: (0, PROTO_UDP)}


class OffloadError(ValueError):
    """A read whose virtio_net_hdr does not describe the packet behind it; `reason` for counters."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def packets_from_read(buf: bytes) -> list[bytes]:
    """The IP packets carried by one TUN read (virtio_net_hdr first)."""
    if len(buf) < VNET_HDR_SIZE + 20:
        raise OffloadError("short_read")
    flags, gso_type, _hdr_len, gso_size, csum_start, csum_offset = VNET_HDR.unpack_from(buf)
    packet = memoryview(buf)[VNET_HDR_SIZE:]
    if gso_type == GSO_NONE:
        if flags & F_NEEDS_CSUM:
            return [complete_checksum(packet, csum_start, csum_offset)]
        return [buf[VNET_HDR_SIZE:]]
    kind = GSO_TYPES.get(gso_type)
    if kind is None:
        raise OffloadError("unknown_gso_type")
    version = packet[0] >> 4
    if kind[0] and version != kind[0]:
        raise OffloadError("gso_type_ip_version_mismatch")
    return split(packet, version, kind[1], csum_start, gso_size)


def complete_checksum(packet, start: int, offset: int) -> bytes:
    """Fill in a partial checksum: the field holds the pseudo-header sum, the rest is summed here."""
    at = start + offset
    if start < 20 or at + 2 > len(packet):
        raise OffloadError("bad_checksum_offset")
    value = checksum(fold(packet, start))
    if value == 0 and offset == 6:  # UDP sends 0xFFFF for a zero sum (RFC 768)
        value = 0xFFFF
    out = bytearray(packet)
    _u16.pack_into(out, at, value)
    return bytes(out)


def _transport_header_length(packet, version: int, proto: int, l4: int) -> int:
    """The TCP or UDP header's length, once the IP header is what the vnet header says it is."""
    if version == 4:
        if l4 != (packet[0] & 0x0F) * 4 or packet[9] != proto:
            raise OffloadError("bad_gso_headers")
    elif version != 6 or l4 < 40:
        raise OffloadError("bad_gso_headers")
    if proto != PROTO_TCP:
        return 8
    if l4 + 20 > len(packet):
        raise OffloadError("bad_gso_headers")
    thl = (packet[l4 + 12] >> 4) * 4
    if thl < 20:
        raise OffloadError("bad_gso_headers")
    return thl


def split(packet, version: int, proto: int, l4: int, mss: int) -> list[bytes]:
    """Cut a GSO super-packet into `mss`-byte segments, every header and checksum complete."""
    size = len(packet)
    thl = _transport_header_length(packet, version, proto, l4)
    hlen = l4 + thl
    if mss == 0 or hlen >= size:
        raise OffloadError("bad_gso_size")
    count = -(-(size - hlen) // mss)
    header = bytearray(packet[:hlen])
    if proto == PROTO_TCP:
        seq0 = _u32.unpack_from(header, l4 + 4)[0]
        flags = header[l4 + 13]
        header[l4 + 4:l4 + 8] = bytes(4)
        header[l4 + 13] = 0
        header[l4 + 16:l4 + 18] = b"\0\0"  # checksum
    else:
        header[l4 + 4:l4 + 8] = bytes(4)  # length, checksum
    l4_base = (int.from_bytes(header[l4:hlen], "big") + pseudo_header(header, version, proto, 0)) % 0xFFFF
    if version == 4:
        id0 = _u16.unpack_from(header, 4)[0]
        header[2:6] = bytes(4)
        header[10:12] = b"\0\0"
        ip_base = int.from_bytes(header[:l4], "big") % 0xFFFF
    # Every segment's header is a row of one array; the fields that differ are whole columns.
    i = np.arange(count, dtype=np.int64)
    l4_len = np.full(count, thl + mss, dtype=np.int64)
    l4_len[-1] = size - hlen - mss * (count - 1) + thl
    rows = np.tile(np.frombuffer(bytes(header), dtype=np.uint8), (count, 1))

    def put16(col: int, values) -> None:
        rows[:, col] = values >> 8
        rows[:, col + 1] = values & 0xFF

    if version == 4:
        total = l4_len + l4
        ids = (id0 + i) & 0xFFFF
        put16(2, total)
        put16(4, ids)
        put16(10, -(ip_base + total + ids) % 0xFFFF)
    else:
        put16(4, l4_len + (l4 - 40))
    sums = segment_sums(packet, hlen, mss)
    if proto == PROTO_TCP:
        seq = (seq0 + i * mss) & 0xFFFFFFFF
        f = np.full(count, flags & ~(FIN | PSH), dtype=np.int64)
        f[-1] = flags  # FIN and PSH on the last segment only
        f[1:] &= ~CWR  # CWR on the first only
        put16(l4 + 4, seq >> 16)
        put16(l4 + 6, seq & 0xFFFF)
        rows[:, l4 + 13] = f
        put16(l4 + 16, -(l4_base + l4_len + (seq >> 16) + (seq & 0xFFFF) + f + sums) % 0xFFFF)
    else:
        put16(l4 + 4, l4_len)
        value = -(l4_base + 2 * l4_len + sums) % 0xFFFF  # the length is in the pseudo-header and the header
        value[value == 0] = 0xFFFF  # UDP sends 0xFFFF for a zero sum (RFC 768)
        put16(l4 + 6, value)
    heads = rows.tobytes()
    return [heads[k * hlen:(k + 1) * hlen] + packet[a:a + mss]
            for k, a in enumerate(range(hlen, size, mss))]
