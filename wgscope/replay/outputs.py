"""Files replay writes: the annotated capture and the decrypted inner packets."""

from __future__ import annotations

from ..pcap import PcapWriter, PcapngWriter, read_capture, read_capture_secrets
from .observer import Replay

COMMENT_PREFIX = "wgscope:"  # the prefix sinks/capture.py uses and dissectors/wgscope.lua reads


def frame_comment(meta: dict | None, notes: list[str] | None) -> str | None:
    """`wgscope: kind=.. peer=.. index=.. verdict=.. [reason=..] | words` — the Lua plugin's format."""
    if meta is None and not notes:
        return None
    pairs = ["dir=wire"]
    if meta:
        if meta.get("peer"):
            pairs.append(f"peer={meta['peer'][:8]}")
        pairs.append(f"kind={meta['kind']}")
        if meta.get("index") is not None:
            pairs.append(f"index={meta['index']}")
        pairs.append(f"verdict={meta['verdict']}")
        if meta.get("reason"):
            pairs.append(f"reason={meta['reason']}")
    human = "; ".join(notes or []) or (meta["kind"] if meta else "")
    return f"{COMMENT_PREFIX} {' '.join(pairs)} | replay: {human}"


def frame_comments(result: Replay, frame: int, source_comment: str | None) -> str | None:
    """A re-executed side's verdict is the node's own (verdicts.py); the observer adds its notes.
    Where only the observer saw the frame and the capture already carries the node's verdict,
    the observer's pairs are left out: it never contradicts what the node said."""
    notes = result.frame_notes.get(frame)
    node = result.node_comments.get(frame)
    if node is not None:
        return node + ("" if not notes else " | replay: " + "; ".join(notes))
    meta = result.frame_meta.get(frame)
    if source_comment and source_comment.startswith(COMMENT_PREFIX):
        meta = None
    return frame_comment(meta, notes)


def write_annotated(source, out_path, result: Replay) -> int:
    """Copy every frame of `source` into a pcapng with replay's verdict as the packet comment.
    The source's own key logs are kept (as a DSB) so the copy still decrypts itself."""
    secrets = read_capture_secrets(source)
    writer = None
    written = 0
    try:
        for pkt in read_capture(source):
            if writer is None:
                writer = PcapngWriter(out_path, linktype=pkt.linktype)
                for text in secrets:
                    writer.write_wireguard_secrets(text)
            comment = frame_comments(result, pkt.frame_number, pkt.comment)
            if pkt.comment and comment:
                comment = pkt.comment + "\n" + comment
            writer.write_packet(pkt.data, pkt.timestamp, comment or pkt.comment)
            written += 1
        if writer is None:
            writer = PcapngWriter(out_path)
    finally:
        if writer is not None:
            writer.close()
    return written


def write_decrypted(out_path, result: Replay) -> int:
    """The decrypted inner IP packets as a plain pcap (LINKTYPE_RAW), capture timestamps kept."""
    with PcapWriter(out_path, linktype=101) as w:
        return w.write_columns(result.decrypted_times, result.decrypted_packets)
