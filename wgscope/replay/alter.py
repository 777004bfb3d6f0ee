"""Alter a capture in a known way — drop, duplicate, move, corrupt or delay frames — so
replay's findings can be checked against what was done (tests, teaching).

Frames are rewritten as raw IP/UDP with valid checksums: only the WireGuard payload changes.
The source's key logs are kept in a DSB unless `secrets=False`.
"""

from __future__ import annotations

from ..pcap import PcapngWriter, build_udp_frame, parse_frame, read_capture, read_capture_secrets


def alter_capture(src, dst, *, drop=(), duplicate=(), move: dict | None = None, corrupt: dict | None = None,
                  shift: dict | None = None, shift_from: tuple | None = None, secrets: bool = True) -> None:
    """
    drop:        frame numbers to leave out
    duplicate:   frame numbers to write twice (the copy right after, same time)
    move:        {frame: after_frame} write `frame` after `after_frame` instead (time kept)
    corrupt:     {frame: (payload offset, xor byte)} flip bits of the WireGuard payload
    shift:       {frame: seconds} add to one frame's timestamp
    shift_from:  (frame, seconds) add to the timestamp of this frame and every later one
    """
    move = move or {}
    corrupt = corrupt or {}
    shift = shift or {}
    packets = list(read_capture(src))
    by_number = {p.frame_number: p for p in packets}
    out = PcapngWriter(dst)
    try:
        if secrets:
            for text in read_capture_secrets(src):
                out.write_wireguard_secrets(text)

        def emit(p) -> None:
            t = p.timestamp + shift.get(p.frame_number, 0.0)
            if shift_from and p.frame_number >= shift_from[0]:
                t += shift_from[1]
            udp = parse_frame(p.linktype, p.data)
            payload = bytearray(udp.payload)
            if p.frame_number in corrupt:
                off, mask = corrupt[p.frame_number]
                payload[off] ^= mask
            frame = build_udp_frame(udp.src, udp.dst, bytes(payload))
            out.write_packet(frame, t)
            if p.frame_number in duplicate:
                out.write_packet(frame, t)

        for p in packets:
            n = p.frame_number
            if n in drop or n in move:
                pass
            else:
                emit(p)
            for m, after in move.items():
                if after == n:
                    emit(by_number[m])
    finally:
        out.close()
