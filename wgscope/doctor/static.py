"""Static checks of a wg-quick file: what can be wrong before a single packet is sent.

Each check returns Findings with a plain explanation and a fix. What wg does with a
questionable config was measured with `wg setconf` on wireguard-go (see the test notes in
tests/test_doctor_static.py): a repeated [Peer] replaces the earlier section's AllowedIPs,
and a prefix claimed by two peers goes to the later one.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import re

from .. import config as wgconfig
from ..keytext import encode
from ..protocol.crypto import DH, DHError, public_key, same_secret
from .finding import ERROR, INFO, WARNING, Finding

# Outer overhead of a full-size transport message (WP §5.4.6: 16-byte header + 16-byte tag;
# + UDP 8 + IPv4 20 / IPv6 40). wg-quick subtracts 80 when it picks an MTU itself.
OVERHEAD = {4: 60, 6: 80}
ASSUMED_UNDERLAY_MTU = 1500
RESOLVE_TIMEOUT = 3.0


def peer_label(cfg, peer) -> str:
    name = f" ({peer.name})" if peer.name else ""
    return f"[Peer] line {peer.line}{name} {encode(peer.public_key)[:8]}…"


# ---------------------------------------------------------------- parse errors
def parse_error_finding(e: wgconfig.ConfigError) -> Finding:
    """A ConfigError from config.load, explained."""
    msg = e.message
    where = str(e)
    if "the same peer as the [Peer] on line" in msg:
        return Finding(
            "duplicate_peer", ERROR, f"duplicate peer: {where}",
            "Two [Peer] sections have the same PublicKey. wg does not make two peers: the later section updates "
            "the same peer, and because wg setconf replaces a peer's AllowedIPs per section, the earlier section's "
            "AllowedIPs are silently lost (measured with wg setconf on wireguard-go).",
            "Merge the two sections into one [Peer] with all the AllowedIPs, or give the second its own key.",
            [where], "config")
    m = re.match(r"(PrivateKey|PublicKey|PresharedKey): (.*)", msg)
    if m:
        return Finding(
            "malformed_key", ERROR, f"malformed {m.group(1)}: {where}",
            "A WireGuard key is 32 bytes written as exactly 44 characters of base64 ending in '=' (what `wg "
            "genkey`, `wg pubkey` and `wg genpsk` print). Usual causes: a copy-paste that lost characters or the "
            "trailing '=', quotes or spaces inside the key, or a line break in the middle.",
            f"Copy the {m.group(1)} again from its source (`wg show` on that machine, or `wg pubkey < private.key`).",
            [where], "config")
    if msg.startswith("cannot read"):
        return Finding("config_unreadable", ERROR, f"cannot read the configuration: {where}",
                       "The file could not be opened or is not UTF-8 text.",
                       "Check the path and permissions (doctor does not need root to read a file you can read).",
                       [where], "config")
    return Finding(
        "config_parse_error", ERROR, f"the configuration does not parse: {where}",
        "wg-quick would refuse this file too (or silently do something else). The line number points at the "
        "problem; section and key names are case-insensitive, and a value is everything after the first '='.",
        "Fix that line; compare with `man wg-quick` for the expected keys.", [where], "config")


# ---------------------------------------------------------------- keys
def check_keys(cfg) -> list[Finding]:
    out = []
    ic = cfg.interface
    own_private = ic.private_key
    if own_private is None:
        out.append(Finding("missing_private_key", ERROR, "[Interface] has no PrivateKey",
                           "Without a private key this side has no identity and cannot handshake.",
                           "Add PrivateKey = (output of `wg genkey`).", [], "static"))
        return out
    if same_secret(own_private, bytes(32)):
        out.append(Finding("zero_private_key", ERROR, "PrivateKey is all zeros",
                           "An all-zero private key is a placeholder, not a key: wg treats it as no key at all.",
                           "Generate one with `wg genkey`.", [f"line {ic.lines.get('PrivateKey')}"], "static"))
        return out
    own_public = public_key(own_private)
    for p in cfg.peers:
        where = peer_label(cfg, p)
        line = [f"{cfg.path}:{p.lines.get('PublicKey', p.line)}"]
        if p.public_key == bytes(32):
            out.append(Finding("zero_public_key", ERROR, f"{where}: PublicKey is all zeros",
                               "An all-zero public key is a placeholder. It is not on the curve in any useful way: "
                               "every Diffie-Hellman with it gives zero, which WireGuard refuses, so no handshake can "
                               "ever complete.", "Put the peer's real public key here (`wg show` on the peer).",
                               line, "static"))
            continue
        if p.public_key == own_public:
            out.append(Finding(
                "peer_key_is_own_key", ERROR, f"{where}: PublicKey is this interface's own public key",
                "The PublicKey of a [Peer] must be the other side's public key; this one is the public key that "
                "belongs to this file's PrivateKey. wg silently ignores such a peer, so nothing is ever sent to "
                "it. Usually the two sides' keys were swapped when copying.",
                "On the peer, run `wg show` (or `wg pubkey < its private key`) and put that here.", line, "static"))
            continue
        if same_secret(p.public_key, own_private):
            out.append(Finding(
                "peer_key_is_private_key", ERROR, f"{where}: PublicKey is this interface's PrivateKey",
                "The peer's PublicKey field holds our own private key: a private key pasted in the wrong field "
                "(and now exposed to whoever sees this peer's config).",
                "Generate a new key pair here (the private key leaked into the wrong place), and put the peer's "
                "public key in PublicKey.", line, "static"))
            continue
        try:
            DH(own_private, p.public_key)
        except DHError:
            out.append(Finding(
                "low_order_public_key", ERROR, f"{where}: PublicKey is a low-order point",
                "Diffie-Hellman with this key gives all zeros (it is one of Curve25519's few low-order points), "
                "which WireGuard refuses; no handshake with it can complete. (A key that is simply someone "
                "else's cannot be detected here: any 32 bytes are a valid X25519 public key.)",
                "Put the peer's real public key here.", line, "static"))
    return out


# ---------------------------------------------------------------- AllowedIPs overlaps
def check_overlaps(cfg) -> list[Finding]:
    out = []
    peers = cfg.peers
    for i, a in enumerate(peers):
        for b in peers[i + 1:]:
            for na in a.allowed_ips:
                for nb in b.allowed_ips:
                    if na.version != nb.version or not na.overlaps(nb):
                        continue
                    la, lb = peer_label(cfg, a), peer_label(cfg, b)
                    if na == nb:
                        out.append(Finding(
                            "overlapping_allowed_ips", ERROR, f"{na} is in the AllowedIPs of two peers",
                            f"AllowedIPs is a routing table *and* an access list: one prefix belongs to exactly one "
                            f"peer. When two peers list the same prefix, the later one takes it (wg, measured with "
                            f"wg setconf): {lb} gets {na}; {la} loses it, so traffic to it goes to the wrong peer and "
                            f"packets from {la} with those sources are dropped.",
                            f"Keep {na} on one peer only.", [f"{la}: {na}", f"{lb}: {nb}"], "static"))
                        continue
                    wide, narrow = (na, nb) if na.prefixlen < nb.prefixlen else (nb, na)
                    wide_peer, narrow_peer = (la, lb) if wide is na else (lb, la)
                    sev = INFO if wide.prefixlen == 0 else WARNING
                    out.append(Finding(
                        "overlapping_allowed_ips", sev, f"{narrow} ({narrow_peer}) lies inside {wide} ({wide_peer})",
                        f"Routing picks the longest prefix: addresses in {narrow} go to {narrow_peer}, the rest of "
                        f"{wide} to {wide_peer}, whichever order the sections are in. This is fine when intended "
                        f"(a default route plus specific peers); {wide_peer} can never send from {narrow}.",
                        f"If {narrow} is not meant to be carved out of {wide}, remove it from one of the peers.",
                        [f"{la}: {na}", f"{lb}: {nb}"], "static"))
    return out


# ---------------------------------------------------------------- endpoints
def _resolve(host: str, port: int):
    try:
        return wgconfig.resolve_endpoint(host, port)[0], None
    except wgconfig.EndpointError as e:
        return None, e.message


def resolve_all(cfg) -> dict:
    """host -> (ip | None, error | None), names resolved in parallel with a time limit."""
    hosts = {p.endpoint for p in cfg.peers if p.endpoint}
    result = {}
    names = []
    for host, port in hosts:
        try:
            result[host] = (str(ipaddress.ip_address(host)), None)
        except ValueError:
            names.append((host, port))
    if names:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(names)))
        futures = {host: pool.submit(_resolve, host, port) for host, port in names}
        for host, fut in futures.items():
            try:
                result[host] = fut.result(timeout=RESOLVE_TIMEOUT)
            except concurrent.futures.TimeoutError:
                result[host] = (None, f"no answer within {RESOLVE_TIMEOUT:g} s")
        pool.shutdown(wait=False)
    return result


def check_endpoints(cfg, resolved: dict) -> list[Finding]:
    out = []
    routed = [(p, n) for p in cfg.peers for n in p.allowed_ips]
    table = (cfg.interface.table or "auto").lower()
    for p in cfg.peers:
        if not p.endpoint:
            continue
        host, port = p.endpoint
        ip, err = resolved.get(host, (None, None))
        line = f"{cfg.path}:{p.lines.get('Endpoint', p.line)}"
        if ip is None:
            out.append(Finding(
                "endpoint_unresolved", ERROR, f"{peer_label(cfg, p)}: Endpoint {host} does not resolve",
                "wg resolves endpoint names once, when the configuration is loaded; a name that does not resolve "
                "then stops wg-quick up (\"Name or service not known\"), and a name that resolves later is never "
                "looked up again.",
                "Check the spelling and DNS (`getent hosts " + host + "`), or use an IP address.",
                [line, err or ""], "static"))
            continue
        addr = ipaddress.ip_address(ip)
        for owner, net in routed:
            if addr.version != net.version or addr not in net:
                continue
            ev = [line, f"{host} = {ip}" if ip != host else ip, f"{peer_label(cfg, owner)} AllowedIPs {net}"]
            if table == "off":
                sev, title = INFO, f"endpoint {ip} is inside AllowedIPs {net} (Table = off: no routes added)"
                why = ("With Table = off wg-quick adds no routes, so there is no loop unless you add routes "
                       "yourself; if you do, exclude the endpoint.")
            elif net.prefixlen == 0:
                sev, title = INFO, f"endpoint {ip} is inside AllowedIPs {net}; wg-quick avoids the loop"
                why = ("For a default route wg-quick sets a FwMark on the tunnel's own UDP packets and routes them "
                       "by policy rule through the main table, so they do not enter the tunnel. Other tools (a "
                       "plain `ip route add 0.0.0.0/0 dev wg0`, NetworkManager setups without the rule) loop.")
            else:
                sev, title = ERROR, f"routing loop: endpoint {ip} is inside AllowedIPs {net}"
                why = (f"wg-quick adds a route for {net} into the tunnel. The encrypted UDP packets to the endpoint "
                       f"{ip} then match that route too and are sent into the tunnel itself: the tunnel carries "
                       f"its own packets and nothing gets out (only default routes get wg-quick's fwmark rules).")
            out.append(Finding(
                "endpoint_in_allowed_ips", sev, title, why,
                f"Take {ip} out of {net} (split the range around it), or add a host route for {ip} via the "
                f"underlay gateway, or use AllowedIPs = 0.0.0.0/0 style with wg-quick's fwmark rules.",
                ev, "static"))
    return out


# ---------------------------------------------------------------- MTU
def underlay_mtu(ip: str) -> tuple[int, str]:
    """The MTU of the route to ip (route metric, else the outgoing link's), and how it was found."""
    try:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            route = ipr.route("get", dst=ip)[0]
            metrics = route.get_attr("RTA_METRICS")
            if metrics is not None and metrics.get_attr("RTAX_MTU"):
                return int(metrics.get_attr("RTAX_MTU")), "route mtu"
            oif = route.get_attr("RTA_OIF")
            link = ipr.get_links(oif)[0]
            return int(link.get_attr("IFLA_MTU")), f"route via {link.get_attr('IFLA_IFNAME')}"
    except Exception:  # no route, no netlink (not Linux), permission: fall back to the common case
        return ASSUMED_UNDERLAY_MTU, "assumed (no route found)"


def check_mtu(cfg, resolved: dict) -> list[Finding]:
    mtu = cfg.interface.mtu
    if mtu is None:
        return []  # wg-quick picks the MTU itself: the endpoint route's MTU minus 80
    out = []
    line = f"{cfg.path}:{cfg.interface.lines.get('MTU')}"
    endpoints = []
    for p in cfg.peers:
        if p.endpoint and resolved.get(p.endpoint[0], (None,))[0]:
            endpoints.append((p, resolved[p.endpoint[0]][0]))
    for p, ip in endpoints:
        version = ipaddress.ip_address(ip).version
        under, how = underlay_mtu(ip)
        need = mtu + OVERHEAD[version]
        if need > under:
            best = under - OVERHEAD[version]
            out.append(Finding(
                "mtu_too_large", ERROR, f"MTU {mtu} is too large for the path to {ip} (at most {best})",
                f"Every tunnel packet gets {OVERHEAD[version]} bytes of outer headers over IPv{version} (IP, UDP 8, "
                f"WireGuard 32). A full-size {mtu}-byte packet becomes {need} bytes, more than the underlay's "
                f"{under}: it is fragmented or, with Don't Fragment, dropped. Pings and the handshake work; large "
                f"transfers stall.",
                f"Set MTU = {best} in [Interface] (or remove the MTU line and let wg-quick compute it).",
                [line, f"underlay MTU to {ip}: {under} ({how})", f"{mtu} + {OVERHEAD[version]} = {need}"],
                "static"))
    if not endpoints:
        for version in (4, 6):
            need = mtu + OVERHEAD[version]
            if need > ASSUMED_UNDERLAY_MTU:
                sev = ERROR if version == 4 else WARNING
                best = ASSUMED_UNDERLAY_MTU - OVERHEAD[version]
                out.append(Finding(
                    "mtu_too_large", sev, f"MTU {mtu} is too large for a {ASSUMED_UNDERLAY_MTU}-byte underlay over "
                    f"IPv{version} (at most {best})",
                    f"No peer has an endpoint to look a route up for, so a {ASSUMED_UNDERLAY_MTU}-byte Ethernet "
                    f"underlay is assumed. Peers reaching us over IPv{version} add {OVERHEAD[version]} bytes of "
                    f"headers: {need} > {ASSUMED_UNDERLAY_MTU}.",
                    f"Set MTU = {best} (1420 fits IPv4 and IPv6 underlays of 1500).", [line], "static"))
                break
    return out


# ---------------------------------------------------------------- pre-shared keys
def check_psk(cfg) -> list[Finding]:
    with_psk = [p for p in cfg.peers if p.preshared_key is not None and not same_secret(p.preshared_key, bytes(32))]
    zero = [p for p in cfg.peers if p.preshared_key is not None and same_secret(p.preshared_key, bytes(32))]
    out = []
    for p in zero:
        out.append(Finding("zero_preshared_key", WARNING, f"{peer_label(cfg, p)}: PresharedKey is all zeros",
                           "An all-zero PresharedKey means 'no pre-shared key' to WireGuard. If the peer has a real "
                           "one, the handshake fails.", "Use `wg genpsk` and put the same key on both sides.",
                           [f"{cfg.path}:{p.lines.get('PresharedKey')}"], "static"))
    if with_psk and len(with_psk) < len(cfg.peers):
        without = [peer_label(cfg, p) for p in cfg.peers if p not in with_psk]
        out.append(Finding(
            "psk_partial", INFO, f"{len(with_psk)} of {len(cfg.peers)} peers have a PresharedKey",
            "A pre-shared key must be set on both sides of a pair, identically. From one file doctor cannot see the "
            "other side, but a PSK on only some peers is a hint that one was forgotten somewhere. A mismatch shows "
            "up in --probe as a response that does not authenticate.",
            "Run `wgscope doctor --probe` against the peers without one, or compare with the peers' files.",
            ["without PresharedKey: " + ", ".join(without)], "static"))
    return out


# ---------------------------------------------------------------- all of them
IGNORED_WARNINGS = ("is also claimed by", "this peer is the interface itself", "has no PrivateKey")


def check_all(cfg) -> tuple[list[Finding], dict]:
    resolved = resolve_all(cfg)
    findings = [Finding("config_warning", INFO, w, "The parser noticed this while reading the file.",
                        "See the message.", [], "config")
                for w in cfg.warnings if not any(s in w for s in IGNORED_WARNINGS)]
    for check in (check_keys, check_overlaps, check_psk):
        findings += check(cfg)
    findings += check_endpoints(cfg, resolved)
    findings += check_mtu(cfg, resolved)
    return findings, resolved
