"""The event catalogue, and the bus's names (wgscope/eventbus.py) re-exported beside it.

Every state change in wgscope is announced through the bus (`EventBus.emit`, or
`EventBus.record` for the per-packet events) with an EventType from this catalogue. An event
has a stable name, the time it happened (the protocol clock passed into the core) and the same
instant as wall-clock time, the peer it concerns (base64 public key, or None) and typed
fields. docs/events.md is generated from this module (`wgscope events-doc`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .eventbus import (  # noqa: F401  (the bus's names, re-exported: import them from here)
    DEBUG, FLUSH_INTERVAL, FLUSH_RECORDS, GENERIC, INFO, LEVEL_NAMES, LEVELS, M64, PACKED, STRICT_ENV, TRACE, WARNING,
    Event, EventBus, HandshakeSecrets, RecordSink, Sink, iso_wall,
)


@dataclass(frozen=True)
class EventType:
    name: str
    level: int
    category: str
    doc: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> type and meaning


CATALOGUE: dict[str, EventType] = {}


def _define(event_name: str, level: int, category: str, doc: str, /, **fields: str) -> EventType:
    et = EventType(event_name, level, category, doc, fields)
    assert event_name not in CATALOGUE, event_name
    CATALOGUE[event_name] = et
    return et


# ---------------------------------------------------------------- handshake
ep = "str: the remote endpoint, host:port"
HANDSHAKE_INITIATION_CREATED = _define(
    "handshake_initiation_created", INFO, "handshake",
    "We built a handshake initiation for a peer (a fresh ephemeral key and sender index).",
    sender_index="int: our new receiver index for this handshake", attempt="int: 1 for a first try, then retries")
HANDSHAKE_INITIATION_SENT = _define(
    "handshake_initiation_sent", INFO, "handshake",
    "The initiation left for the peer's endpoint.", endpoint=ep, sender_index="int", attempt="int",
    mac2="bool: a cookie from the peer was held, so mac2 is set")
HANDSHAKE_INITIATION_SKIPPED = _define(
    "handshake_initiation_skipped", DEBUG, "handshake",
    "A handshake was wanted but not sent: rate limited to one per REKEY_TIMEOUT, or the peer has no endpoint.",
    reason="str: rate_limited | no_endpoint")
HANDSHAKE_INITIATION_RECEIVED = _define(
    "handshake_initiation_received", DEBUG, "handshake",
    "A well-formed initiation arrived; the peer is not known until its static key is decrypted.",
    endpoint=ep, sender_index="int: the initiator's index")
HANDSHAKE_INITIATION_CONSUMED = _define(
    "handshake_initiation_consumed", INFO, "handshake",
    "The initiation authenticated: the peer is identified, its timestamp is the newest seen.",
    endpoint=ep, sender_index="int")
HANDSHAKE_INITIATION_REJECTED = _define(
    "handshake_initiation_rejected", INFO, "handshake",
    "An initiation was dropped. Reasons: bad_mac1, bad_mac2 (answered with a cookie), rate_limited, "
    "decryption_failed, unknown_peer, stale_timestamp (replay), flood (more than 50/s for a peer).",
    endpoint=ep, reason="str",
    public_key="str|None: the static public key the initiator presented (base64), once it decrypted: for "
    "unknown_peer the only name of the sender (a public key is not a secret)")
HANDSHAKE_RESPONSE_CREATED = _define(
    "handshake_response_created", INFO, "handshake",
    "We answered a consumed initiation with a response.", sender_index="int: our receiver index",
    receiver_index="int: the initiator's index")
HANDSHAKE_RESPONSE_SENT = _define(
    "handshake_response_sent", INFO, "handshake", "The response left for the initiator's endpoint.",
    endpoint=ep, sender_index="int", receiver_index="int")
HANDSHAKE_RESPONSE_RECEIVED = _define(
    "handshake_response_received", DEBUG, "handshake", "A well-formed response arrived.",
    endpoint=ep, sender_index="int", receiver_index="int")
HANDSHAKE_RESPONSE_CONSUMED = _define(
    "handshake_response_consumed", INFO, "handshake", "The response authenticated and completes our initiation.",
    endpoint=ep, sender_index="int", receiver_index="int")
HANDSHAKE_RESPONSE_REJECTED = _define(
    "handshake_response_rejected", INFO, "handshake",
    "A response was dropped. Reasons: bad_mac1, bad_mac2, rate_limited, unknown_index, wrong_state "
    "(no initiation outstanding), decryption_failed (e.g. pre-shared keys differ).",
    endpoint=ep, reason="str", receiver_index="int")
HANDSHAKE_COMPLETED = _define(
    "handshake_completed", INFO, "handshake",
    "A session key pair exists. Initiator: after the response; responder: after the first data.",
    role="str: initiator | responder", rtt="float|None: initiation to response, seconds (initiator only)")
HANDSHAKE_GAVE_UP = _define(
    "handshake_gave_up", INFO, "handshake",
    "No response after MAX_TIMER_HANDSHAKES retries (REKEY_ATTEMPT_TIME); staged packets are dropped.",
    attempts="int", dropped="int: staged packets dropped")

# ---------------------------------------------------------------- cookies and load
COOKIE_REPLY_SENT = _define(
    "cookie_reply_sent", INFO, "cookie",
    "Under load, a handshake message without a valid mac2 was answered with a cookie reply.",
    endpoint=ep, receiver_index="int: the index of the message answered", message="str: initiation | response")
COOKIE_REPLY_RECEIVED = _define(
    "cookie_reply_received", INFO, "cookie", "A cookie reply arrived and decrypted; the cookie is stored.",
    endpoint=ep, receiver_index="int")
COOKIE_REPLY_REJECTED = _define(
    "cookie_reply_rejected", INFO, "cookie",
    "A cookie reply was dropped. Reasons: unknown_index, no_mac1_sent, bad_tag.", endpoint=ep, reason="str",
    receiver_index="int")
COOKIE_USED = _define(
    "cookie_used", INFO, "cookie", "A handshake message we sent carries mac2 computed from a held cookie.",
    message="str: initiation | response", cookie_age="float: seconds since the cookie arrived")
UNDER_LOAD_ENTERED = _define(
    "under_load_entered", INFO, "cookie",
    "Handshake load crossed the threshold (or was forced): handshake messages now need a valid mac2.",
    forced="bool", rate="float: handshake messages per second seen")
UNDER_LOAD_LEFT = _define(
    "under_load_left", INFO, "cookie", "Handshake load fell; mac2 is no longer required.", forced="bool")

# ---------------------------------------------------------------- keypairs / sessions
KEYPAIR_CREATED = _define(
    "keypair_created", INFO, "session", "Transport keys were derived from a completed Noise exchange.",
    local_index="int", remote_index="int", role="str: initiator | responder", slot="str: current | next")
KEYPAIR_CONFIRMED = _define(
    "keypair_confirmed", INFO, "session",
    "The responder received the first data on its 'next' keypair and made it current.",
    local_index="int")
KEYPAIR_ROTATED = _define(
    "keypair_rotated", DEBUG, "session", "The current/previous/next slots changed.",
    current="int|None: local index", previous="int|None", next="int|None")
KEYPAIR_EXPIRED = _define(
    "keypair_expired", INFO, "session",
    "A keypair may no longer be used: older than REJECT_AFTER_TIME or past REJECT_AFTER_MESSAGES.",
    local_index="int", reason="str: reject_after_time | reject_after_messages", age="float")
KEYPAIR_ZEROED = _define(
    "keypair_zeroed", INFO, "session", "Key material was erased (3 x REJECT_AFTER_TIME without a new handshake, "
    "or the peer was removed or re-keyed).", local_indices="list[int]", reason="str")
REKEY_WANTED = _define(
    "rekey_wanted", INFO, "session",
    "A new handshake is due: the keypair is older than REKEY_AFTER_TIME, has sent REKEY_AFTER_MESSAGES, "
    "or (initiator) is near REJECT_AFTER_TIME on receive.", reason="str", age="float")

# ---------------------------------------------------------------- timers
TIMER_ARMED = _define(
    "timer_armed", DEBUG, "timer", "A peer timer was set (from not pending).",
    timer="str: retransmit_handshake | send_keepalive | new_handshake | zero_key_material | persistent_keepalive",
    due_in="float: seconds")
TIMER_FIRED = _define("timer_fired", DEBUG, "timer", "A peer timer expired and acted.", timer="str")
TIMER_CANCELLED = _define("timer_cancelled", DEBUG, "timer", "A pending peer timer was cleared.", timer="str")

# ---------------------------------------------------------------- routing
ROUTE_FOUND = _define(
    "route_found", TRACE, "routing", "Outbound packet matched a peer's allowed IPs (per packet).", dst="str")
ROUTE_MISSING = _define(
    "route_missing", INFO, "routing",
    "Outbound packet to a destination no peer's allowed IPs cover; answered with ICMP unreachable.",
    dst="str", src="str")
LOCAL_TRAFFIC_IGNORED = _define(
    "local_traffic_ignored", DEBUG, "routing",
    "A link-local or multicast packet the kernel itself sent to the TUN (an IPv6 router solicitation to ff02::2, "
    "an MLD report) that no peer's allowed IPs cover; left alone as wireguard-go does: no routing miss, no drop.",
    dst="str")
NO_ENDPOINT = _define(
    "no_endpoint", INFO, "routing", "Outbound packet for a peer whose endpoint is not known yet.", dst="str")
SOURCE_ALLOWED = _define(
    "source_allowed", TRACE, "routing", "Decrypted packet's source is inside the sending peer's allowed IPs.",
    src="str")
SOURCE_REJECTED = _define(
    "source_rejected", INFO, "routing",
    "Decrypted packet's source is not in the sending peer's allowed IPs; dropped.", src="str", owner="str|None: "
    "the peer that does own the source, if any", endpoint=ep,
    receiver_index="int: the receiver index the transport message named (our keypair's)")
ENDPOINT_CHANGED = _define(
    "endpoint_changed", INFO, "routing", "The peer's endpoint moved (roaming, or set by configuration).",
    old="str|None", new="str", cause="str: roaming | config")

# ---------------------------------------------------------------- data path
TRANSPORT_SENT = _define(
    "transport_sent", TRACE, "data", "A transport data message was sent (per packet).",
    receiver_index="int", counter="int", size="int: inner bytes")
TRANSPORT_RECEIVED = _define(
    "transport_received", TRACE, "data", "A transport data message was accepted (per packet).",
    receiver_index="int", counter="int", size="int")
KEEPALIVE_SENT = _define(
    "keepalive_sent", DEBUG, "data", "An empty transport message was sent.", reason="str: passive | persistent "
    "| handshake_confirm")
KEEPALIVE_RECEIVED = _define("keepalive_received", DEBUG, "data", "An empty transport message arrived.")
PACKET_STAGED = _define(
    "packet_staged", TRACE, "data", "Outbound packet queued while waiting for a session.", depth="int")
QUEUE_OVERFLOW = _define(
    "queue_overflow", INFO, "data", "The staged-packet queue was full; the oldest packet was dropped.",
    limit="int")
PACKET_DROPPED = _define(
    "packet_dropped", INFO, "data",
    "A datagram or packet was refused. Reasons include invalid messages (truncated, oversized, unknown_type, "
    "reserved_nonzero), unknown_index, decryption_failed, counter_replayed, counter_too_old, counter_limit, "
    "keypair_expired, invalid_inner_packet; for a TUN read whose offload header makes no sense (kind tun_read): "
    "short_read, unknown_gso_type, gso_type_ip_version_mismatch, bad_gso_headers, bad_gso_size, "
    "bad_checksum_offset; for a datagram the kernel did not take (live node, the errno in the reason): "
    "send_<errno> such as send_enetunreach, send_eperm, send_enobufs, send_eafnosupport (no socket of that "
    "family); for datagrams the kernel dropped at the node's UDP socket before it read them, one event each "
    "(kind datagram; the kernel gives their number, not their sender): kernel_receive_drop; for packets the "
    "kernel dropped on the TUN's queue before the node read them (kind inner_packet, the link's tx_dropped, "
    "looked at each second): tun_queue_full; for a decrypted packet the TUN did not take (kind inner_packet): "
    "tun_write_<errno> such as tun_write_eio (link down).", reason="str", kind="str: message kind",
    endpoint="str|None: where the datagram came from (for send_<errno>, where it was going)",
    receiver_index="int|None: for a transport message, the receiver index it named")

# ---------------------------------------------------------------- configuration
PEER_ADDED = _define("peer_added", INFO, "config", "A peer was configured.", allowed_ips="list[str]",
                     endpoint="str|None", persistent_keepalive="int", has_psk="bool")
PEER_REMOVED = _define("peer_removed", INFO, "config", "A peer was removed; its keys are zeroed.")
CONFIG_CHANGED = _define(
    "config_changed", INFO, "config", "A setting changed at run time (UAPI, configuration file; the interface MTU, "
    "followed through rtnetlink, as setting mtu).",
    setting="str", value="str: the new value; keys are never shown")
UAPI_GET = _define("uapi_get", DEBUG, "config", "wg show/showconf read the configuration over the UAPI socket.",
                   peers="int", lines="int: key=value lines answered")
UAPI_SET = _define(
    "uapi_set", INFO, "config", "A wg set/setconf/syncconf request over the UAPI socket ended; its changes are "
    "the config events before it. errno 0 means all of it applied; otherwise what came before the error stays.",
    errno="int: 0 or the errno.h number answered", reason="str|None: what was refused (never a key)",
    lines="int: key=value lines read")
UAPI_REQUEST_REJECTED = _define(
    "uapi_request_rejected", INFO, "config", "A UAPI request that is neither get=1 nor set=1, or is malformed, "
    "was answered with an errno.", errno="int", reason="str")
UAPI_CONNECTION_REFUSED = _define(
    "uapi_connection_refused", INFO, "config",
    "A process that is not root connected to the UAPI socket and was answered EPERM, as the kernel's "
    "netlink interface refuses it.", uid="int", pid="int")
INTERFACE_UP = _define("interface_up", INFO, "interface", "The node started.", interface="str", listen_port="int|None",
                       public_key="str")
INTERFACE_DOWN = _define("interface_down", INFO, "interface", "The node stopped.", interface="str", reason="str")

# ---------------------------------------------------------------- the event stream itself
EVENTS_LOST = _define(
    "events_lost", WARNING, "observability",
    "A sink could not keep up (its write queue was full, or writing failed) and lost events; nothing is "
    "dropped without this count. Sent to every other sink at once and written to the sink itself when it "
    "recovers.", sink="str: which sink (trace file path, ...)", lost="int: events lost in this gap",
    total="int: events this sink lost since it started", reason="str: queue_full | write_failed")

# ---------------------------------------------------------------- capture replay
REPLAY_FINDING = _define(
    "replay_finding", INFO, "replay",
    "Replaying a capture found an anomaly (replayed packets, loss, bad macs, timing off the protocol's "
    "constants...); `wgscope replay` explains each kind.", kind="str", frames="list[int]: capture frame numbers",
    detail="str")

del ep


class EventRecorder:
    """A sink that keeps events in memory (tests, the lab, the demo narrative)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, ev: Event) -> None:
        self.events.append(ev)

    def names(self, peer: str | None = None, category: str | None = None) -> list[str]:
        return [e.name for e in self.events
                if (peer is None or e.peer == peer) and (category is None or CATALOGUE[e.name].category == category)]

    def of(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def clear(self) -> None:
        self.events.clear()
