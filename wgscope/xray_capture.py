"""`wgscope replay CAPTURE --xray FRAME`: the x-ray of the handshake a capture's frame belongs to.

FRAME is an initiation or a response (Wireshark's frame number). The other message of the
handshake is found by its index (a response's receiver index is the initiation's sender
index). Keys come from the same places replay takes them (the capture's Decryption Secrets
Blocks, --keylog files, --config files: replay/keys.py's KeyRing): with the responder's static
private key the initiation is opened; with a side's ephemeral private key (a key log) that
side's message is re-created. Values are shown when the keys came with ephemeral keys (a key
log the user enabled), redacted otherwise.
"""

from __future__ import annotations

from .errors import UserError
from .pcap.frames import FrameError, parse_frame
from .pcap.reader import CaptureError, read_capture
from .protocol import noise
from .protocol.constants import INITIATION_SIZE, LABEL_MAC1, MAC_SIZE, RESPONSE_SIZE
from .protocol.crypto import HASH, MAC, AuthenticationError, DHError, same_secret
from .protocol.messages import parse_initiation, parse_response
from .xray import XRay, mac_steps, render, xray_from_messages


def handshake_datagrams(capture: str, growing: bool = False) -> list[tuple[int, bytes]]:
    """(frame, payload) of every initiation and response in the capture. `growing`: the capture is
    still being written (a node's --capture), so a torn last block ends the list instead of failing."""
    datagrams: list[tuple[int, bytes]] = []
    try:
        for pkt in read_capture(capture):
            try:
                udp = parse_frame(pkt.linktype, pkt.data)
            except FrameError:
                continue
            if udp is not None and udp.payload[:1] in (b"\x01", b"\x02") and udp.payload[1:4] == b"\0\0\0":
                datagrams.append((pkt.frame_number, udp.payload))
    except (CaptureError, OSError) as e:
        if not growing:
            raise UserError(f"{capture}: {getattr(e, 'strerror', None) or e}") from None
    return datagrams


def handshake_at(capture: str, frame: int,
                 growing: bool = False) -> tuple[tuple[int, bytes], tuple[int, bytes] | None]:
    """((frame, initiation bytes), (frame, response bytes) or None) for the handshake FRAME is part of."""
    datagrams = handshake_datagrams(capture, growing)
    chosen = next((d for d in datagrams if d[0] == frame), None)
    if chosen is None:
        raise UserError(f"frame {frame} of {capture} is not a handshake initiation or response")
    if chosen[1][0] == 1 and len(chosen[1]) == INITIATION_SIZE:
        sender = parse_initiation(chosen[1]).sender
        response = next((d for d in datagrams if d[0] > frame and d[1][0] == 2 and len(d[1]) == RESPONSE_SIZE
                         and parse_response(d[1]).receiver == sender), None)
        return chosen, response
    if chosen[1][0] == 2 and len(chosen[1]) == RESPONSE_SIZE:
        receiver = parse_response(chosen[1]).receiver
        initiation = next((d for d in reversed(datagrams) if d[0] < frame and d[1][0] == 1
                           and len(d[1]) == INITIATION_SIZE and parse_initiation(d[1]).sender == receiver), None)
        if initiation is None:
            raise UserError(f"frame {frame} is a response to an initiation the capture does not hold")
        return initiation, chosen
    raise UserError(f"frame {frame} of {capture} is not a well-formed handshake message")


def _addressed_to(ring, initiation: bytes) -> bytes | None:
    """The static public key the initiation's mac1 is keyed with (WP §5.4.4), among the known ones."""
    end = len(initiation) - 2 * MAC_SIZE
    for pub in ring.static_public:
        if same_secret(MAC(HASH(LABEL_MAC1 + pub), initiation[:end]), initiation[end:end + MAC_SIZE]):
            return pub
    return None


def xray_capture(ring, initiation: bytes, response: bytes | None) -> XRay:
    """The best x-ray the keys allow: the responder's side, else the initiator's, else the public fields."""
    msg_i = parse_initiation(initiation)
    responder = _addressed_to(ring, initiation)
    psks = ring.psk_by_ephemeral.get(msg_i.ephemeral, []) + ring.psks + [noise.ZERO_PSK]
    if response is not None:
        psks = ring.psk_by_ephemeral.get(parse_response(response).ephemeral, []) + psks
    attempts = []
    if responder is not None and responder in ring.static_private:
        eph = ring.ephemeral_private.get(parse_response(response).ephemeral) if response else None
        attempts += [dict(side="responder", private=ring.static_private[responder], ephemeral_private=eph)]
    eph_i = ring.ephemeral_private.get(msg_i.ephemeral)
    if eph_i is not None and responder is not None:
        attempts += [dict(side="initiator", private=priv, ephemeral_private=eph_i, remote_public=responder)
                     for priv in ring.static_private.values()]
    candidates = list(dict.fromkeys(psks))
    for attempt in attempts:
        for n, psk in enumerate(candidates, 1):
            try:
                xr = xray_from_messages(initiation, response, psk=psk, **attempt)
            except (noise.HandshakeError, AuthenticationError, DHError, ValueError):
                break  # not this side's key: the PSK does not matter
            if not xr.notes or n == len(candidates):
                return xr  # the PSK that verifies, or the last tried (its note says the response does not)
    xr = XRay(messages={"initiation": initiation, **({"response": response} if response else {})})
    if responder is not None:
        xr.steps += mac_steps("initiation", initiation, responder, None, "initiator")[:1]
    xr.notes.append("no private key of either side opens this handshake: only its public fields are shown "
                    "(give --keylog or --config)")
    return xr


def render_frame(capture: str, frame: int, ring, growing: bool = False) -> str:
    (fi, initiation), response = handshake_at(capture, frame, growing)
    xr = xray_capture(ring, initiation, response[1] if response else None)
    head = (f"handshake x-ray: initiation in frame {fi}"
            + (f", response in frame {response[0]}" if response else ", no response in the capture"))
    return head + "\n" + render(xr, reveal=ring.has_ephemerals)


def run_xray(args) -> int:
    """The `--xray FRAME` branch of `wgscope replay`: keys as replay loads them, then the x-ray."""
    import os

    from .replay.driver import ReplayInputError, load_keys

    if not os.path.isfile(args.capture):
        raise UserError(f"{args.capture}: no such file")
    try:
        ring = load_keys(args.capture, args.keylog, args.config)
    except ReplayInputError as e:
        raise UserError(str(e)) from None
    print(render_frame(args.capture, args.xray, ring))
    return 0


def render_session(capture: str, indices: tuple[int, int]) -> str | None:
    """The x-ray of the handshake that made the session with these two receiver indices (ours and the
    peer's, in either order), from a capture that carries its keys (a node's --capture); None when the
    capture does not hold that handshake."""
    from .replay.driver import ReplayInputError, load_keys

    wanted = set(indices)
    datagrams = handshake_datagrams(capture, growing=True)
    responses = [(f, d) for f, d in datagrams if len(d) == RESPONSE_SIZE and d[0] == 2
                 and {parse_response(d).sender, parse_response(d).receiver} == wanted]
    if not responses:
        return None
    frame = responses[-1][0]
    try:
        ring = load_keys(capture)
    except ReplayInputError:
        return None
    try:
        return render_frame(capture, frame, ring, growing=True)
    except UserError:
        return None
