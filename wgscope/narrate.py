"""Events told as sentences, for people watching the demo or a console."""

from __future__ import annotations

from .events import Event
from .plural import counted


def _idx(value) -> str:
    return f"{value:#010x}" if isinstance(value, int) else str(value)


SENTENCES = {
    "handshake_initiation_sent": lambda f: f"sends a handshake initiation to {f['endpoint']} "
                                           f"(index {_idx(f['sender_index'])}, attempt {f['attempt']}"
                                           f"{', with mac2 from a cookie' if f['mac2'] else ''})",
    "handshake_initiation_consumed": lambda f: f"accepts the initiation from {f['endpoint']}: the peer is "
                                               f"identified and its timestamp is the newest seen",
    "handshake_initiation_rejected": lambda f: f"rejects an initiation from {f['endpoint']}: {f['reason']}",
    "handshake_response_sent": lambda f: f"answers with a handshake response (index {_idx(f['sender_index'])})",
    "handshake_response_consumed": lambda f: "accepts the response: the handshake is complete",
    "handshake_response_rejected": lambda f: f"rejects a response: {f['reason']}",
    "handshake_completed": lambda f: f"has a new session as {f['role']}"
                                     + (f" (round trip {f['rtt'] * 1000:.1f} ms)" if f.get("rtt") else ""),
    "handshake_gave_up": lambda f: f"gives up after {counted(f['attempts'], 'attempt')}",
    "keypair_confirmed": lambda f: f"sees the first data on its new session: keypair {_idx(f['local_index'])} "
                                   f"becomes current",
    "rekey_wanted": lambda f: f"wants a new handshake ({f['reason']}, session age {f['age']:.0f} s)",
    "cookie_reply_sent": lambda f: f"is under load: answers {f['endpoint']} with a cookie reply instead",
    "cookie_reply_received": lambda f: "receives a cookie reply and stores the cookie for mac2",
    "under_load_entered": lambda f: "is now under load: handshakes must carry a valid mac2"
                                    + (" (forced)" if f["forced"] else ""),
    "under_load_left": lambda f: "is no longer under load",
    "endpoint_changed": lambda f: f"sees the peer's endpoint move {f['old']} -> {f['new']} ({f['cause']})",
    "keypair_zeroed": lambda f: f"erases key material ({f['reason']})",
    "keypair_expired": lambda f: f"retires keypair {_idx(f['local_index'])} ({f['reason']})",
    "packet_dropped": lambda f: f"drops a {f['kind']} packet: {f['reason']}",
    "route_missing": lambda f: f"has no peer for {f['dst']}: answers ICMP unreachable",
    "source_rejected": lambda f: f"drops a packet from {f['src']}: outside the peer's allowed IPs",
}


def describe(event: Event) -> str | None:
    sentence = SENTENCES.get(event.name)
    return sentence(event.fields) if sentence else None
