"""Read a capture, gather its keys, observe it, then re-execute every side whose key is known.

    pass 1  observer.py    what crossed the wire (parties, handshakes, sessions, flows)
    pass 2  reexecute.py   each known side's own Device, driven by the capture (node.py)

The file is read and parsed once: pass 1 keeps each UDP datagram (and, for a datagram a
re-executed side sent, the inner packet the observer already decrypted) for pass 2.
"""

from __future__ import annotations

import os
from typing import Iterable

from ..events import EventBus
from ..pcap import CaptureError, CaptureReader, FrameError, parse_frame, read_capture
from .observer import Observer, Replay
from .reexecute import reexecute
from .keys import KeyRing, KeySourceError


class ReplayInputError(ValueError):
    """A capture or key source replay cannot use; the message is one line."""


def load_keys(capture: str | os.PathLike | bytes, keylogs: Iterable[str] = (), configs: Iterable[str] = ()) -> KeyRing:
    ring = KeyRing()
    reader = CaptureReader(capture)
    try:
        reader.read_secrets()
    except CaptureError:
        pass  # the packet pass reports the damage; secrets before it are still used
    try:
        for i, text in enumerate(reader.secrets, 1):
            ring.add_keylog(text, f"capture DSB {i}")
        for path in keylogs:
            ring.add_keylog_file(path)
        for path in configs:
            ring.add_config_file(path)
    except CaptureError as e:
        raise ReplayInputError(f"{_name(capture)}: {e}") from None
    except KeySourceError as e:
        raise ReplayInputError(str(e)) from None
    return ring


def replay_capture(capture: str | os.PathLike | bytes, keylogs: Iterable[str] = (), configs: Iterable[str] = (),
                   bus: EventBus | None = None, annotate: bool = False, keep_decrypted: bool = False,
                   keyring: KeyRing | None = None, node_bus=None, progress: dict | None = None,
                   reexecute_sides: bool = True) -> Replay:
    """Replay every WireGuard datagram of a pcap/pcapng capture; keys from its DSB, key logs and configs.

    `bus` gets the observer's findings; `node_bus(name) -> EventBus` the events of each
    re-executed side (the live node's events, under its name); `progress["frame"]` follows the
    frame being replayed."""
    if isinstance(capture, (str, os.PathLike)):
        if not os.path.exists(capture):
            raise ReplayInputError(f"{capture}: no such file")
        if os.path.isdir(capture):
            raise ReplayInputError(f"{capture}: is a directory, not a capture file")
    ring = keyring if keyring is not None else load_keys(capture, keylogs, configs)
    engine = Observer(ring, bus, annotate=annotate, keep_decrypted=keep_decrypted)
    reexecuting = reexecute_sides and bool(ring.sides)
    engine.keep_plain_of = {side.public_key for side in ring.sides.values()} if reexecuting else set()
    datagrams: list[tuple] = []  # (frame, time, src, dst, payload, comment, inner) for pass 2
    keep = datagrams.append if reexecuting else None
    frames = 0
    damage = None
    feed, skip = engine.feed, engine.skip
    try:
        for pkt in read_capture(capture, comments=reexecuting):
            frames = pkt.frame_number
            if progress is not None:
                progress["frame"] = frames
            try:
                udp = parse_frame(pkt.linktype, pkt.data)
            except FrameError:
                udp = None
            if udp is None:
                skip(frames, pkt.timestamp)
                continue
            feed(frames, pkt.timestamp, udp.src, udp.dst, udp.payload)
            if keep is not None:
                keep((frames, pkt.timestamp, udp.src, udp.dst, udp.payload, pkt.comment, engine.plain))
    except CaptureError as e:
        if not frames:
            raise ReplayInputError(f"{_name(capture)}: {e}") from None
        damage = f"the capture is damaged after frame {frames} ({e}); what came before is analysed"
    result = engine.finish()
    result.frames = frames
    if damage:
        result.notices.append(damage)
    if reexecuting:
        reexecute(datagrams, ring, engine, result, node_bus, annotate, progress)
    return result


def _name(capture) -> str:
    return str(capture) if isinstance(capture, (str, os.PathLike)) else "capture"
