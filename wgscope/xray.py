"""The handshake x-ray: one Noise_IKpsk2 handshake, step by step as the whitepaper writes it.

Every value comes from the protocol core itself: wgscope/protocol/noise.py records its own
steps when given a `trace` list (each MixHash, MixKey, DH, AEAD with the key that sealed it),
and mac1/mac2 come from the same primitives cookie.py uses. Nothing here re-implements the
handshake. Three ways in:

    xray_handshake(...)        both sides' inputs (the lab, the notebooks): the whole handshake
    xray_from_messages(...)    captured messages plus one side's keys (replay --xray FRAME)
    render(xray, reveal=...)   text, with secrets shown only when the user asked (a key log)

Values are raw bytes; `SECRET` names those that must stay redacted unless the user enabled a
key log (chaining keys, AEAD keys, DH results, private keys, the PSK, transport keys, and the
plaintexts a handshake hides: the initiator's identity and its timestamp).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from .protocol import noise, tai64n
from .protocol.constants import LABEL_MAC1, MAC_SIZE
from .protocol.crypto import AEAD_OPEN, HASH, MAC, public_key, same_secret
from .protocol.messages import (
    Initiation, pack_initiation, pack_response, parse_initiation, parse_response,
)

SECRET = frozenset({"C", "κ", "τ", "dh", "Q", "Ei_priv", "Er_priv", "Si_priv", "Sr_priv", "Ti_send", "Ti_recv",
                    "timestamp", "Si_pub", "cookie"})

# Byte layout of the handshake messages (WP §5.4.2, §5.4.3; sizes in messages.py): (field, length)
LAYOUT = {
    "initiation": (("type", 1), ("reserved", 3), ("sender", 4), ("ephemeral", 32), ("static", 32 + 16),
                   ("timestamp", 12 + 16), ("mac1", 16), ("mac2", 16)),
    "response": (("type", 1), ("reserved", 3), ("sender", 4), ("receiver", 4), ("ephemeral", 32),
                 ("empty", 0 + 16), ("mac1", 16), ("mac2", 16)),
    "cookie_reply": (("type", 1), ("reserved", 3), ("receiver", 4), ("nonce", 24), ("cookie", 16 + 16)),
}


SECTION = {"initiation": "WP §5.4.2", "response": "WP §5.4.3", "transport keys": "WP §5.4.5"}

# What each AEAD's key is and what the AEAD proves (WP §5.4.2-5.4.3, §5.4.5), by the formula's start.
KEY_ROLE = {
    "msg.static": "κ comes from DH(Ei, Sr) (es): only the responder can open it, so the initiator's identity is "
                  "hidden",
    "Si_pub := AEAD-OPEN": "κ comes from DH(Sr, Ei) (es): the responder learns who is calling",
    "msg.timestamp": "κ comes from DH(Si, Sr) (ss): sealing it proves the initiator holds Si_priv; the TAI64N "
                     "stamp stops replayed initiations",
    "timestamp := AEAD-OPEN": "κ comes from DH(Sr, Si) (ss): opening it authenticates the initiator",
    "msg.empty": "κ comes from KDF3 after ee, se and the PSK: the 16-byte tag proves the responder computed the "
                 "same chain (a PSK mismatch fails exactly here)",
    "ε := AEAD-OPEN": "κ from KDF3 after ee, se and the PSK: the initiator checks the responder's tag",
    "(Ti_send": "Ti_send seals initiator→responder transport data, Ti_recv the other way (WP §5.4.5)",
}


@dataclass
class Step:
    message: str  # "initiation", "response", "transport keys"
    side: str  # who computes it: "initiator" or "responder"
    formula: str  # the whitepaper's line
    values: dict[str, bytes]

    @property
    def role(self) -> str | None:
        """What this step's AEAD key is and proves, for the AEAD and key-derivation steps that have one."""
        return next((text for start, text in KEY_ROLE.items() if self.formula.startswith(start)), None)

    @property
    def op(self) -> str:
        """HASH (MixHash), KDF (MixKey), DH, AEAD, MAC or GEN, read from the formula."""
        f = self.formula
        for needle, op in (("msg.mac", "MAC"), ("DH-GENERATE", "GEN"), ("AEAD", "AEAD"), ("DH(", "DH+KDF"),
                           ("KDF", "KDF"), ("MAC(", "MAC"), ("HASH", "HASH")):
            if needle in f:
                return op
        return "?"


@dataclass
class XRay:
    steps: list[Step] = field(default_factory=list)
    messages: dict[str, bytes] = field(default_factory=dict)  # "initiation"/"response" -> the bytes on the wire
    notes: list[str] = field(default_factory=list)

    def value(self, formula_start: str, name: str, message: str | None = None) -> bytes:
        """The value `name` of the first step whose formula starts with `formula_start`."""
        for s in self.steps:
            if s.formula.startswith(formula_start) and (message is None or s.message == message) and name in s.values:
                return s.values[name]
        raise KeyError(f"{formula_start!r} / {name}")


def _steps(trace: list, message: str, side: str) -> list[Step]:
    return [Step(message, side, formula, values) for formula, values in trace]


def mac_steps(message: str, data: bytes, receiver_static: bytes, cookie: bytes | None, side: str) -> list[Step]:
    """mac1 and mac2 of a handshake message (WP §5.4.4), from the bytes on the wire."""
    end = len(data) - 2 * MAC_SIZE
    key = HASH(LABEL_MAC1 + receiver_static)
    mac1 = MAC(key, data[:end])
    steps = [Step(message, side, "msg.mac1 := MAC(HASH(LABEL_MAC1 || Sm'_pub), msg_α)",
                  {"mac1 key": key, "msg_α": data[:end], "msg.mac1": mac1})]
    if not same_secret(data[end:end + MAC_SIZE], mac1):
        raise ValueError(f"the {message}'s mac1 does not verify for that receiver's public key")
    if cookie:
        mac2 = MAC(cookie, data[:end + MAC_SIZE])
        steps.append(Step(message, side, "msg.mac2 := MAC(Lm, msg_β)  (Lm: the cookie, < 120 s old)",
                          {"cookie": cookie, "msg.mac2": mac2}))
    else:
        steps.append(Step(message, side, "msg.mac2 := 0^16  (no cookie held)", {"msg.mac2": data[end + MAC_SIZE:]}))
    return steps


def xray_handshake(initiator_private: bytes, responder_private: bytes, *, psk: bytes = noise.ZERO_PSK,
                   initiator_ephemeral: bytes, responder_ephemeral: bytes, timestamp: bytes,
                   sender_index: int = 1, receiver_index: int = 2, cookie: bytes | None = None) -> XRay:
    """A whole handshake from both sides' inputs, each side computing with the core's functions."""
    ini = noise.StaticIdentity(initiator_private)
    res = noise.StaticIdentity(responder_private)
    hs_i = noise.HandshakeState(remote_static=res.public, preshared_key=psk)
    hs_r = noise.HandshakeState(remote_static=ini.public, preshared_key=psk)
    noise.precompute(ini, hs_i)
    noise.precompute(res, hs_r)
    xr = XRay()
    trace: list = []
    msg = noise.create_initiation(ini, hs_i, sender_index, initiator_ephemeral, timestamp, trace=trace)
    wire = _with_macs(pack_initiation(msg), res.public, cookie)
    xr.steps += _steps(trace, "initiation", "initiator") + mac_steps("initiation", wire, res.public, cookie,
                                                                    "initiator")
    xr.messages["initiation"] = wire
    trace = []
    opened = noise.open_initiation(res, parse_initiation(wire), trace=trace)
    xr.steps += _steps(trace, "initiation", "responder")
    noise.accept_initiation(hs_r, opened, now=0.0, flood_interval=0.0)
    trace = []
    resp = noise.create_response(hs_r, receiver_index, responder_ephemeral, trace=trace)
    wire = _with_macs(pack_response(resp), ini.public, None)
    xr.steps += _steps(trace, "response", "responder") + mac_steps("response", wire, ini.public, None, "responder")
    xr.messages["response"] = wire
    trace = []
    noise.consume_response(ini, hs_i, parse_response(wire), trace=trace)
    xr.steps += _steps(trace, "response", "initiator")
    trace = []
    noise.derive_transport_keys(hs_i, trace=trace)
    xr.steps += _steps(trace, "transport keys", "initiator")
    return xr


def _with_macs(packed: bytes, receiver_static: bytes, cookie: bytes | None) -> bytes:
    end = len(packed) - 2 * MAC_SIZE
    mac1 = MAC(HASH(LABEL_MAC1 + receiver_static), packed[:end])
    mac2 = MAC(cookie, packed[:end] + mac1) if cookie else bytes(MAC_SIZE)
    return packed[:end] + mac1 + mac2


def xray_from_messages(initiation: bytes, response: bytes | None, *, side: str, private: bytes,
                       remote_public: bytes | None = None, psk: bytes = noise.ZERO_PSK,
                       ephemeral_private: bytes | None = None) -> XRay:
    """A captured handshake re-computed from one side's keys (a key log: its static private key, the
    peer's public key (the responder learns it from the initiation), the PSK, and its ephemeral
    private key for its own message).

    side="responder": the initiation is opened with the responder's static key; with its
    ephemeral key the response is re-created and compared with the captured one.
    side="initiator": with its ephemeral key the initiation is re-created (the timestamp is
    recovered from the message by the trace's own κ) and the response is consumed."""
    me = noise.StaticIdentity(private)
    hs = noise.HandshakeState(remote_static=remote_public or b"", preshared_key=psk)
    if remote_public is not None:
        noise.precompute(me, hs)
    elif side == "initiator":
        raise ValueError("the initiator's side needs the responder's public key")
    msg_i = parse_initiation(initiation)
    xr = XRay(messages={"initiation": initiation, **({"response": response} if response else {})})
    if side == "responder":
        _responder_side(xr, me, hs, msg_i, response, ephemeral_private)
    elif side == "initiator":
        _initiator_side(xr, me, hs, msg_i, response, ephemeral_private)
    else:
        raise ValueError("side must be 'initiator' or 'responder'")
    return xr


def _responder_side(xr: XRay, me, hs, msg_i: Initiation, response: bytes | None, eph: bytes | None) -> None:
    trace: list = []
    opened = noise.open_initiation(me, msg_i, trace=trace)
    xr.steps += _steps(trace, "initiation", "responder")
    xr.steps += mac_steps("initiation", xr.messages["initiation"], me.public, None, "responder")[:1]
    if response is None:
        return
    msg_r = parse_response(response)
    if eph is None:
        xr.notes.append("the response is not re-computed: the responder's ephemeral private key is not in the key log")
        return
    hs.remote_static = opened.remote_static  # the initiator, as the initiation named it
    noise.accept_initiation(hs, opened, now=0.0, flood_interval=0.0)
    trace = []
    made = noise.create_response(hs, msg_r.sender, eph, trace=trace)
    xr.steps += _steps(trace, "response", "responder")
    if pack_response(made)[:-2 * MAC_SIZE] != response[:-2 * MAC_SIZE]:
        xr.notes.append("the re-computed response differs from the captured one (another PSK or ephemeral key?)")
        return
    xr.steps += mac_steps("response", response, opened.remote_static, None, "responder")[:1]
    trace = []
    noise.derive_transport_keys(hs, trace=trace)
    xr.steps += _steps(trace, "transport keys", "responder")


def _initiator_side(xr: XRay, me, hs, msg_i: Initiation, response: bytes | None, eph: bytes | None) -> None:
    if eph is None:
        raise ValueError("the initiator's side needs its ephemeral private key (a key log entry)")
    if public_key(eph) != msg_i.ephemeral:
        raise ValueError("that ephemeral private key did not make this initiation")
    # First pass with a placeholder timestamp: the trace up to the timestamp's AEAD does not depend on
    # it, and gives the κ and Hi that open the captured one.
    trace: list = []
    noise.create_initiation(me, noise.HandshakeState(remote_static=hs.remote_static, preshared_key=hs.preshared_key,
                                                precomputed_static_static=hs.precomputed_static_static),
                            msg_i.sender, eph, bytes(12), trace=trace)
    ts_step = next(values for formula, values in trace if formula.startswith("msg.timestamp"))
    timestamp = AEAD_OPEN(ts_step["κ"], 0, msg_i.encrypted_timestamp, ts_step["H"])
    trace = []
    noise.create_initiation(me, hs, msg_i.sender, eph, timestamp, trace=trace)
    xr.steps += _steps(trace, "initiation", "initiator")
    xr.steps += mac_steps("initiation", xr.messages["initiation"], hs.remote_static, None, "initiator")[:1]
    if response is None:
        return
    trace = []
    try:
        noise.consume_response(me, hs, parse_response(response), trace=trace)
    except noise.HandshakeError as e:
        xr.steps += _steps(trace, "response", "initiator")
        xr.notes.append(f"the response does not verify ({e.reason}): a different PSK, or not this initiation's answer")
        return
    xr.steps += _steps(trace, "response", "initiator")
    xr.steps += mac_steps("response", response, me.public, None, "responder")[:1]
    trace = []
    noise.derive_transport_keys(hs, trace=trace)
    xr.steps += _steps(trace, "transport keys", "initiator")


# ---------------------------------------------------------------- text
def layout(kind: str, data: bytes) -> list[tuple[int, int, str, bytes]]:
    """(offset, length, field, bytes) for each field of a handshake message."""
    rows, offset = [], 0
    for name, length in LAYOUT[kind]:
        rows.append((offset, length, name, data[offset:offset + length]))
        offset += length
    return rows


def shown(name: str, value: bytes, reveal: bool, width: int = 16) -> str:
    """A value as hex (the first `width` bytes), or redacted when it is secret and not revealed."""
    if name in SECRET and not reveal:
        return f"‹redacted, {len(value)} bytes›"
    if not value:
        return "ε (empty)"
    text = value[:width].hex()
    if name == "timestamp" and len(value) == tai64n.SIZE:
        text += f" = {stamp_time(value)}"
    return text + ("…" if len(value) > width else "") + (f" ({len(value)} B)" if len(value) > width else "")


def stamp_time(ts: bytes) -> str:
    """A TAI64N timestamp as the UTC time the initiator's clock read (to its ~16.8 ms whitened
    resolution): what a responder compares with the greatest one it accepted from that peer (WP
    §5.4.2: an initiation with an older or equal one is a replay), and what shows a clock far off."""
    try:
        when = datetime.datetime.fromtimestamp(tai64n.unstamp(ts), datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):  # authenticated, but no time a calendar holds
        return "no calendar time (TAI64N seconds out of range)"
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:23] + " UTC"


def render(xr: XRay, reveal: bool = False) -> str:
    """The x-ray as text: each step's formula and values, then each message's byte layout.

    C is public until the first DH is mixed into it (it is a hash of constants and public keys),
    secret from then on."""
    lines: list[str] = []
    current = None
    chain_public = True
    for n, step in enumerate(xr.steps, 1):
        if (step.message, step.side) != current:
            current = (step.message, step.side)
            chain_public = step.message == "initiation"
            lines.append(f"── {step.message}, computed by the {step.side} ({SECTION[step.message]})")
        lines.append(f"{n:3d} {step.op:<6} {step.formula}")
        if step.role:
            lines.append(f"{'':11}({step.role})")
        chain_public = chain_public and "dh" not in step.values
        for name, value in step.values.items():
            visible = reveal or (name == "C" and chain_public)
            lines.append(f"{'':11}{name:<14} {shown(name, value, visible)}")
    for kind, data in xr.messages.items():
        lines.append(f"── {kind} on the wire: {len(data)} bytes")
        for offset, length, name, value in layout(kind, data):
            more = "…" if length > 24 else ""
            lines.append(f"{'':4}[{offset:3d}:{offset + length:3d}] {name:<10} {value.hex()[:48]}{more}")
    lines += [f"note: {n}" for n in xr.notes]
    if not reveal:
        lines.append("secret values are redacted; they are shown when the keys come from a key log the user enabled")
    return "\n".join(lines)



# ---------------------------------------------------------------- the dashboard's view: no key material
def skeleton() -> list[Step]:
    """The steps of one handshake with their formulas and value names, as the core records them (run
    once on throwaway keys; the values are dropped). For views that hold no key material."""
    k = [HASH(bytes([n]) * 32) for n in range(4)]
    xr = xray_handshake(k[0], k[1], initiator_ephemeral=k[2], responder_ephemeral=k[3], timestamp=tai64n.stamp(0.0))
    return [Step(s.message, s.side, s.formula, dict.fromkeys(s.values, b"")) for s in xr.steps]


def render_skeleton(role: str, ours: str, theirs: str, local_index: int | None, remote_index: int | None) -> str:
    """The current session's handshake as the dashboard knows it: who initiated, both static public
    keys, both indices, and every step of the whitepaper with its values not shown (the dashboard
    holds no key material)."""
    initiator, responder = (ours, theirs) if role == "initiator" else (theirs, ours)
    i_index, r_index = (local_index, remote_index) if role == "initiator" else (remote_index, local_index)
    idx = lambda i: "—" if i is None else f"{i:08x}"  # noqa: E731
    lines = [f"this session's handshake: we were the {role}",
             f"  Si_pub (initiator) {initiator}", f"  Sr_pub (responder) {responder}",
             f"  initiation sender index {idx(i_index)}; response sender index {idx(r_index)}, receiver {idx(i_index)}",
             "values are not shown: the dashboard holds no key material. Given the node's capture (--capture "
             "writes one that carries its keys: `wgscope top NAME --capture FILE`) it shows them."]
    current = None
    for n, step in enumerate(skeleton(), 1):
        if (step.message, step.side) != current:
            current = (step.message, step.side)
            who = "we" if step.side == role else "the peer"
            lines.append(f"── {step.message}, computed by the {step.side} ({who})")
        lines.append(f"{n:3d} {step.op:<6} {step.formula}")
        if step.role:
            lines.append(f"{'':11}({step.role})")
    for kind in ("initiation", "response"):
        lines.append(f"── {kind} on the wire: {sum(n for _, n in LAYOUT[kind])} bytes")
        offset = 0
        for name, length in LAYOUT[kind]:
            value = {("initiation", "sender"): i_index, ("response", "sender"): r_index,
                     ("response", "receiver"): i_index}.get((kind, name))
            lines.append(f"    [{offset:3d}:{offset + length:3d}] {name:<10}" + (f" {idx(value)}" if value is not None
                                                                                 else ""))
            offset += length
    return "\n".join(lines)
