"""What a probe outcome means, in plain words, and what to check."""

from __future__ import annotations

from .finding import ERROR, OK, WARNING, Finding
from .probe import ProbeResult

PROBE_WARNING = (
    "warning: --probe replaces the peer's current session with this identity: it performs a real handshake "
    "with this config's private key from another UDP port. If an interface with this identity is up and talking "
    "to the peer, the peer switches its session and endpoint to the probe; the real tunnel recovers at its next "
    "handshake (send some traffic, or wait for a rekey).")

SILENCE_CHECKS = [
    "1. The peer does not know our public key, or our copy of its public key is wrong. WireGuard answers nothing "
    "to an initiation it cannot authenticate, by design (WP §5.1: it stays silent to the unauthenticated), so a "
    "key mistake looks exactly like a dead host. Check: on the peer, `wg show` must list our public key "
    "({ours}) as a peer; here, the peer's PublicKey must equal what `wg show` on the peer prints as its "
    "'public key' (not its private key, not another peer's).",
    "2. A firewall drops UDP to {endpoint} (on the peer, in between, or outbound here). Check: "
    "`tcpdump -ni any udp port {port}` on the peer while probing; a rule like iptables -A INPUT -p udp "
    "--dport {port} -j DROP, a cloud security group, or a NAT that does not forward the port.",
    "3. The Endpoint is wrong: another host, an old address, or a port the peer does not listen on behind a "
    "NAT. Check: on the peer, `wg show` 'listening port' and its address as seen from here.",
]


def probe_finding(result: ProbeResult, our_public: str, peer_name: str) -> list[Finding]:
    ep = result.endpoint or "(none)"
    if result.outcome in ("handshake_ok", "under_load_ok"):
        return _completed_findings(result, ep, peer_name)
    return [_failure_finding(result, ep, our_public, peer_name)]


def _completed_findings(result: ProbeResult, ep: str, peer_name: str) -> list[Finding]:
    """The handshake completed (at once, or after a cookie reply), and what the MTU check saw."""
    ev = list(result.evidence)
    out: list[Finding] = []
    rtt = f" in {result.rtt * 1000:.1f} ms" if result.rtt is not None else ""
    if result.outcome == "handshake_ok":
        out.append(Finding("probe_handshake_ok", OK, f"healthy: handshake with {peer_name} at {ep} completed{rtt}",
                           "The peer knows our public key, we have its key right, the pre-shared keys agree "
                           "and UDP gets through both ways.", "Nothing to fix.", ev, "probe"))
    else:
        out.append(Finding(
            "probe_under_load", WARNING,
            f"peer under load: it answered with a cookie reply; the retry with mac2 completed{rtt}",
            "A WireGuard peer that receives many handshakes (or is forced into cookie mode) answers an "
            "initiation with a cookie reply instead of a response (WP §5.3, §5.4.7). The initiator must "
            "retry with mac2 computed from that cookie; real WireGuard does so at its next retry, "
            "REKEY_TIMEOUT (5 s) later, so the tunnel comes up slowly but it does come up.",
            "Nothing is misconfigured. If this persists, find what floods the peer with handshakes "
            "(many clients at once, a misbehaving peer, an attack).", ev, "probe"))
    mtu = result.path_mtu
    if mtu and mtu.get("fits") is False:
        out.append(mtu_finding(mtu, ev_source="probe"))
    elif mtu:
        out[0].evidence += first_hop_evidence(mtu)
        out += whole_path_findings(mtu, out[0])
    return out


def _failure_finding(result: ProbeResult, ep: str, our_public: str, peer_name: str) -> Finding:
    """Why the handshake did not complete, by the probe's outcome (doctor/probe.py's table)."""
    port = ep.rsplit(":", 1)[-1]
    ev = list(result.evidence)
    o = result.outcome
    if o == "psk_mismatch":
        return Finding(
            "probe_psk_mismatch", ERROR, f"pre-shared key mismatch with {peer_name}",
            "The peer knows our public key and answered our initiation, but its response does not decrypt: in "
            "Noise_IKpsk2 the pre-shared key is mixed in only at the response (WP §5.4.3), so a different "
            "PresharedKey on the two sides (or one side with none) fails exactly here.",
            "Make PresharedKey identical on both sides for this peer pair (`wg genpsk` once, copy it to both), or "
            "remove it on both.", ev, "probe")
    if o == "under_load_failed":
        return Finding(
            "probe_under_load_failed", ERROR, f"{peer_name} is under load and the retry with mac2 did not complete",
            "The peer answered with a cookie reply (it is under load, WP §5.3). We retried with mac2 from that "
            "cookie and still got no response: the cookie may be bound to a different source address (a NAT "
            "rewriting our port between the two datagrams) or the peer stays silent for another reason "
            "(see the silence checks).",
            "Retry later; check for a NAT in between that changes the source port; check the peer's load.",
            ev, "probe")
    if o == "port_unreachable":
        return Finding(
            "probe_port_unreachable", ERROR, f"nothing listens on {ep}",
            "The host at the endpoint answered with ICMP port unreachable: it is up and reachable, but no "
            "process has UDP port " + port + " open. The WireGuard interface there is down, or listens on "
            "another port.",
            f"On the peer: `wg show` (is the interface up? what is its 'listening port'?); set Endpoint to that "
            f"port, or ListenPort = {port} there.", ev, "probe")
    if o == "host_unreachable":
        return Finding(
            "probe_host_unreachable", ERROR, f"{ep} is unreachable",
            "There is no route to the endpoint, or a router answered host/network unreachable.",
            "Check the Endpoint address and this host's underlay connectivity (`ip route get` the endpoint).",
            ev, "probe")
    if o == "endpoint_unresolved":
        return Finding("probe_endpoint_unresolved", ERROR, f"endpoint {ep} does not resolve",
                       "The Endpoint's host name has no address in DNS (or /etc/hosts).",
                       "Fix the name, or use an IP address.", ev, "probe")
    if o == "no_endpoint":
        return Finding("probe_no_endpoint", WARNING, f"{peer_name} has no Endpoint: nothing to probe",
                       "Without an Endpoint this side waits for the peer to contact it first.",
                       "Probe from the other side, or add Endpoint = host:port.", ev, "probe")
    if o == "silence":
        checks = [c.format(ours=our_public, endpoint=ep, port=port) for c in SILENCE_CHECKS]
        return Finding(
            "probe_silence", ERROR, f"no answer from {ep}: in order of likelihood, a key mistake, a firewall, "
            "a wrong endpoint",
            "Our handshake initiations got no reply at all, not even an ICMP error.\n" + "\n".join(checks),
            "Work down the list: compare the keys first (most common), then look for the datagrams on the "
            "peer with tcpdump, then check the endpoint.", ev, "probe")
    return Finding("probe_unexpected", ERROR, f"unexpected answer from {ep}",
                   "Something came back that is not a valid handshake answer for us.",
                   "Look at the events (--json) and at a capture (`wgscope replay`).", ev, "probe")


def mtu_finding(mtu: dict, ev_source: str = "probe") -> Finding:
    path = mtu.get("path_mtu")
    evidence = [f"a full-size transport message ({mtu['interface_mtu']} inner + overhead = {mtu['outer_size']} "
                f"bytes, Don't Fragment set) did not fit the path"
                + (f" (path MTU {path})" if path else "") + (f": {mtu['error']}" if mtu.get("error") else "")]
    best = (path - (mtu["outer_size"] - mtu["interface_mtu"])) if path else None
    return Finding(
        "probe_mtu_too_large", ERROR, f"MTU {mtu['interface_mtu']} is too large for the path"
        + (f" (at most {best})" if best else ""),
        "The handshake works (small packets) but full-size packets do not fit the underlay once WireGuard's "
        "outer headers are added: 60 bytes over IPv4, 80 over IPv6. Pings work, large transfers stall.",
        f"Set MTU = {best} in [Interface]" if best else "Lower MTU in [Interface] (e.g. 1280).",
        evidence, ev_source)


def first_hop_evidence(mtu: dict) -> list[str]:
    """What sending one full-size datagram with Don't Fragment proved: the first hop only."""
    if mtu.get("fits") is None:
        why = mtu.get("error") or "Don't Fragment could not be set"
        return [f"the MTU check could not run: {why}"]
    return [f"a full-size transport message ({mtu['outer_size']} bytes on the wire, Don't Fragment) left this host "
            f"without error and no router answered 'fragmentation needed' within 0.2 s: the first hop takes it "
            f"(the kernel's path MTU to the endpoint is {mtu['path_mtu']}); that alone proves nothing about hops "
            "further on"]


def whole_path_findings(mtu: dict, healthy: Finding) -> list[Finding]:
    """The ping through the tunnel (path_echo.py): proven, disproven, or not provable here."""
    echo = mtu.get("echo")
    if not echo:
        return []
    small, full = echo["small"], echo.get("full")
    dst = small["destination"]
    if not small["reply"]:
        healthy.evidence.append(f"{dst} did not answer a small ping through the tunnel, so the whole path at full "
                                "size could not be proven (does it answer pings? is our Address in its AllowedIPs?)")
        return []
    if full and full["reply"]:
        healthy.evidence.append(f"a full-size ping through the tunnel ({full['size']} bytes inside, "
                                f"{full['outer_size']} on the wire) to {dst} came back the same size in "
                                f"{full['rtt'] * 1000:.1f} ms: the whole path carries MTU {mtu['interface_mtu']} "
                                "both ways")
        return []
    size = full["size"] if full else mtu["interface_mtu"]
    return [Finding(
        "probe_mtu_black_hole", ERROR, f"full-size packets do not cross the path: MTU {mtu['interface_mtu']} is too "
        "large beyond the first hop",
        f"A small ping through the tunnel to {dst} was answered, a full-size one ({size} bytes inside, "
        f"{full.get('outer_size', size) if full else size} on the wire) was not, and no router said why: a hop "
        "beyond the first has a smaller MTU and its 'fragmentation needed' never reaches us (a path MTU black "
        "hole). Pings and the handshake work; large transfers stall.",
        "Lower MTU in [Interface] until a full-size ping passes (1280 always does on IPv6 paths; try 1380, "
        "1280), or let ICMP 'fragmentation needed' through the firewalls on the path.",
        [f"small ping to {dst}: answered in {small['rtt'] * 1000:.1f} ms",
         f"full-size ping to {dst}: no reply" + (f" ({full['error']})" if full and full.get('error') else "")],
        "probe")]
