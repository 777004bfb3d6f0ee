"""Receive-side TCP coalescing for a TUN opened with IFF_VNET_HDR (GRO done in userspace).

A batch of decrypted packets often holds back-to-back segments of one TCP flow. Written one
by one, the kernel runs its TCP receive path once per segment; written as one "super-packet"
with a virtio_net_hdr saying GSO TCPV4 + NEEDS_CSUM, it runs it once per batch — the same
trick as wireguard-go's tun/tcp_offload_linux.go (read for reference, not copied) and the
kernel's own tcp_gro_receive, whose merge rules are followed here:

  IPv4 without options or fragments, same addresses/ports/TOS/TTL/DF, consecutive IP IDs
  (or DF set), same ACK number, window and TCP options; flags ACK only, PSH allowed on the
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

from .vnet import F_NEEDS_CSUM, GSO_TCPV4, NO_OFFLOAD, VNET_HDR, ip_header_checksum

MAX_IP = 65535
ACK, PSH_ACK = 0x10, 0x18

_u16 = struct.Struct("!H")
_seq = struct.Struct("!I")


def _candidate(p: bytes) -> int:
    """TCP header length if `p` is a mergeable IPv4 TCP data segment (flags ACK/PSH-ACK), else 0."""
    if len(p) < 40 or p[0] != 0x45 or p[9] != 6 or (p[6] & 0x3F) or p[7]:
        return 0
    thl = (p[32] >> 4) * 4
    if thl < 20 or len(p) <= 20 + thl or p[33] not in (ACK, PSH_ACK):
        return 0
    return thl


def coalesce(packets: list[bytes]) -> list[list]:
    """Group `packets` into writes: each a list of buffers for os.writev, vnet header first."""
    writes: list[list] = []
    n = len(packets)
    heads = [_candidate(p) for p in packets]
    i = 0
    while i < n:
        p = packets[i]
        thl = heads[i]
        if not thl or p[33] != ACK:
            writes.append([NO_OFFLOAD, p])
            i += 1
            continue
        hlen = 20 + thl
        size = len(p) - hlen
        head_key = p[12:24]  # addresses and ports
        ack_win_opts = p[28:32] + p[34:36] + p[40:hlen]
        tos, ttl, df = p[1], p[8], p[6] & 0x40
        prev_id = _u16.unpack_from(p, 4)[0]
        next_seq = (_seq.unpack_from(p, 24)[0] + size) & 0xFFFFFFFF
        total = len(p)
        run = [p]
        j = i + 1
        while j < n:
            q = packets[j]
            if (heads[j] != thl or q[12:24] != head_key or q[1] != tos or q[8] != ttl
                    or (q[6] & 0x40) != df or q[28:32] + q[34:36] + q[40:hlen] != ack_win_opts
                    or _seq.unpack_from(q, 24)[0] != next_seq):
                break
            qsize = len(q) - hlen
            if qsize > size or total + qsize > MAX_IP:
                break
            qid = _u16.unpack_from(q, 4)[0]
            if not df and qid != (prev_id + 1) & 0xFFFF:
                break
            run.append(q)
            total += qsize
            prev_id = qid
            next_seq = (next_seq + qsize) & 0xFFFFFFFF
            j += 1
            if qsize < size or q[33] != ACK:
                break  # a short segment or PSH ends the super-packet
        if len(run) == 1:
            writes.append([NO_OFFLOAD, p])
            i += 1
            continue
        last = run[-1]
        tcp_len = total - 20
        ip = bytearray(p[:20])
        ip[2:4] = _u16.pack(total)
        ip[10:12] = b"\0\0"
        ip[10:12] = _u16.pack(ip_header_checksum(ip))
        tcp = bytearray(p[20:hlen])
        tcp[13] = last[33]  # PSH of the last segment
        pseudo = (int.from_bytes(p[12:20], "big") + 6 + tcp_len) % 0xFFFF
        tcp[16:18] = _u16.pack(pseudo or 0xFFFF)  # NEEDS_CSUM: the pseudo-header sum, not complemented
        vnet = VNET_HDR.pack(F_NEEDS_CSUM, GSO_TCPV4, hlen, size, 20, 16)
        bufs = [vnet, ip, tcp, memoryview(p)[hlen:]]
        bufs += [memoryview(q)[hlen:] for q in run[1:]]
        writes.append(bufs)
        i = j
    return writes
