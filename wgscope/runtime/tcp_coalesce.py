"""Receive-side TCP coalescing for a TUN opened with IFF_VNET_HDR (GRO done in userspace).

A batch of decrypted packets often holds back-to-back segments of one TCP flow. Written one
by one, the kernel runs its TCP receive path once per segment; written as one "super-packet"
with a virtio_net_hdr saying GSO TCPV4 + NEEDS_CSUM, it runs it once per batch — the same
trick as wireguard-go's tun/tcp_offload_linux.go (read for reference, not copied) and the
kernel's own tcp_gro_receive, whose merge rules are followed here:

  IPv4 without options or fragments (same TOS/TTL/DF, consecutive IP IDs or DF set) or IPv6
  without extension headers (same traffic class/flow label/hop limit); same addresses and
  ports, same ACK number, window and TCP options; flags ACK only, PSH allowed on the
  last; sequence numbers contiguous; every payload the first one's size, the last one may be
  shorter; the whole at most 65535 bytes.

Segment checksums are not verified before merging, as the Linux module does not verify them
either: its receive path marks every decrypted packet CHECKSUM_UNNECESSARY at all levels
because the Poly1305 tag already proved the packet is what the peer sent
(drivers/net/wireguard/receive.c, wg_packet_consume_data_done). The super-packet carries
NEEDS_CSUM, i.e. CHECKSUM_PARTIAL, which the local stack likewise does not verify.
(wireguard-go does verify; it costs ~1 us a segment here, a tenth of the receiver's time.)
virtio_net_hdr layout and the checksum arithmetic: runtime/vnet.py.
"""

from __future__ import annotations

import struct

from ..protocol.ip import checksum
from .vnet import F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, NO_OFFLOAD, VNET_HDR

MAX_IP = 65535
ACK, PSH_ACK = 0x10, 0x18

_u16 = struct.Struct("!H")
_seq = struct.Struct("!I")


def _candidate(p: bytes) -> int:
    """Header length (IP + TCP) if `p` is a mergeable TCP data segment (flags ACK or PSH-ACK):
    IPv4 without options or fragments, IPv6 without extension headers; else 0."""
    n = len(p)
    if p[0] == 0x45:
        if n < 41 or p[9] != 6 or (p[6] & 0x3F) or p[7]:
            return 0
        l4 = 20
    elif p[0] >> 4 == 6:
        if n < 61 or p[6] != 6:
            return 0
        l4 = 40
    else:
        return 0
    thl = (p[l4 + 12] >> 4) * 4
    if thl < 20 or n <= l4 + thl or p[l4 + 13] not in (ACK, PSH_ACK):
        return 0
    return l4 + thl


def coalesce(packets: list) -> list[list]:
    """Group `packets` into writes: each a list of buffers for os.writev, vnet header first.
    The inner loop runs once per TCP segment written to the TUN: the comparisons that decide
    whether a segment joins the run stay inline; the write itself is _gso_write."""
    writes: list[list] = []
    n = len(packets)
    heads = [_candidate(p) if p else 0 for p in packets]
    i = 0
    while i < n:
        p = packets[i]
        hlen = heads[i]
        v6 = hlen and p[0] >> 4 == 6
        l4 = 40 if v6 else 20
        if not hlen or p[l4 + 13] != ACK:
            writes.append([NO_OFFLOAD, p])
            i += 1
            continue
        size = len(p) - hlen
        if v6:  # addresses and ports; version, traffic class, flow label; hop limit
            addr_ports, first, limit = p[8:44], p[0:4], p[7]
        else:  # addresses and ports; TOS; TTL
            addr_ports, first, limit = p[12:24], p[1], p[8]
        ack_win_opts = p[l4 + 8:l4 + 12] + p[l4 + 14:l4 + 16] + p[l4 + 20:hlen]
        df = 0 if v6 else p[6] & 0x40
        prev_id = _u16.unpack_from(p, 4)[0]
        next_seq = (_seq.unpack_from(p, l4 + 4)[0] + size) & 0xFFFFFFFF
        total = len(p)
        run = [p]
        j = i + 1
        while j < n:
            q = packets[j]
            if (heads[j] != hlen or q[0] != p[0]
                    or (q[8:44] != addr_ports or q[0:4] != first or q[7] != limit if v6 else
                        q[12:24] != addr_ports or q[1] != first or q[8] != limit or (q[6] & 0x40) != df)
                    or q[l4 + 8:l4 + 12] + q[l4 + 14:l4 + 16] + q[l4 + 20:hlen] != ack_win_opts
                    or _seq.unpack_from(q, l4 + 4)[0] != next_seq):
                break
            qsize = len(q) - hlen
            if qsize > size or total + qsize > MAX_IP:
                break
            if not v6 and not df:
                qid = _u16.unpack_from(q, 4)[0]
                if qid != (prev_id + 1) & 0xFFFF:
                    break  # without DF the IPv4 IDs must run on (tcp_gro_receive's flush_id)
                prev_id = qid
            run.append(q)
            total += qsize
            next_seq = (next_seq + qsize) & 0xFFFFFFFF
            j += 1
            if qsize < size or q[l4 + 13] != ACK:
                break  # a short segment or PSH ends the super-packet
        if len(run) == 1:
            writes.append([NO_OFFLOAD, p])
            i += 1
            continue
        writes.append(_gso_write(run, total, l4, hlen, size, v6))
        i = j
    return writes


def _gso_write(run: list, total: int, l4: int, hlen: int, size: int, v6: bool) -> list:
    """One GSO write of the segments in `run`: vnet header, the first segment's IP and TCP headers
    made whole for `total` bytes, then every segment's payload."""
    p = run[0]
    tcp_len = total - l4
    ip = bytearray(p[:l4])
    if v6:
        ip[4:6] = _u16.pack(tcp_len)
        pseudo = int.from_bytes(p[8:40], "big")
    else:
        ip[2:4] = _u16.pack(total)
        ip[10:12] = b"\0\0"
        ip[10:12] = _u16.pack(checksum(ip))
        pseudo = int.from_bytes(p[12:20], "big")
    tcp = bytearray(p[l4:hlen])
    tcp[13] = run[-1][l4 + 13]  # PSH of the last segment
    pseudo = (pseudo + 6 + tcp_len) % 0xFFFF
    tcp[16:18] = _u16.pack(pseudo or 0xFFFF)  # NEEDS_CSUM: the pseudo-header sum, not complemented
    vnet = VNET_HDR.pack(F_NEEDS_CSUM, GSO_TCPV6 if v6 else GSO_TCPV4, hlen, size, l4, 16)
    bufs = [vnet, ip, tcp, memoryview(p)[hlen:]]
    bufs += [memoryview(q)[hlen:] for q in run[1:]]
    return bufs
