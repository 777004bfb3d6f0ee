"""`wgscope doctor CONFIG [--peer PUBKEY] [--probe] [--capture FILE] [--json] [--timeout S]`,
or `wgscope doctor --capture FILE` for a capture alone (its own keys, no configuration).

Say why a tunnel does not come up: static checks of the file (no root needed), an active
handshake probe, and the replay engine's findings from a capture, all in plain words.
Exit status: 0 no problem found, 3 a problem was diagnosed, 1 doctor itself could not run.
"""

from __future__ import annotations

import ipaddress
import sys

from .. import config as wgconfig
from ..errors import UserError
from ..keytext import encode
from ..protocol.crypto import public_key, same_secret

EXIT_PROBLEM = 3
MAX_TIMEOUT = 3600  # seconds; a probe that waits longer is not a probe (and select() refuses huge waits)


def register(sub) -> None:
    p = sub.add_parser("doctor", help="say why a tunnel does not come up",
                       description="Check a wg-quick configuration, optionally probe a peer with a real handshake "
                                   "or read a capture, and explain what is wrong and how to fix it. "
                                   "Exit status: 0 no problem found, 3 a problem was diagnosed.")
    p.add_argument("config", metavar="CONFIG", nargs="?",
                   help="wg-quick configuration file (e.g. /etc/wireguard/wg0.conf); optional with --capture")
    p.add_argument("--peer", metavar="PUBKEY", help="only this peer (public key, a prefix of it, or its # Name)")
    p.add_argument("--probe", action="store_true",
                   help="attempt a real handshake with the config's identity (replaces the peer's current session)")
    p.add_argument("--capture", metavar="FILE", help="diagnose a pcap/pcapng capture of this tunnel")
    p.add_argument("--json", action="store_true", help="one JSON document for scripts")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="probe time limit per peer (default 3)")
    p.set_defaults(func=run)


def _select_peers(cfg, wanted: str | None) -> list:
    if not wanted:
        return list(cfg.peers)
    chosen = [p for p in cfg.peers if encode(p.public_key) == wanted or encode(p.public_key).startswith(wanted)
              or (p.name and p.name == wanted)]
    if not chosen:
        raise UserError(f"no [Peer] in {cfg.path} matches --peer {wanted}")
    return chosen


def _inner_addresses(cfg, peer) -> tuple[str | None, str | None]:
    from ..doctor.probe import first_host

    dst = first_host(peer.allowed_ips)
    if dst is None:
        return None, None
    version = ipaddress.ip_address(dst).version
    src = next((str(a.ip) for a in cfg.interface.addresses if a.version == version), None)
    return src, dst


def _probe(cfg, peers, timeout: float, resolved: dict) -> tuple[list, list]:
    from ..doctor.classify import PROBE_WARNING, probe_finding
    from ..doctor.probe import run_probe

    ic = cfg.interface
    if ic.private_key is None or same_secret(ic.private_key, bytes(32)):
        return [], []
    print(PROBE_WARNING, file=sys.stderr)
    ours = encode(public_key(ic.private_key))
    findings, reports = [], []
    for peer in peers:
        src, dst = _inner_addresses(cfg, peer)
        endpoint = peer.endpoint
        result = run_probe(ic.private_key, peer.public_key, peer.preshared_key, endpoint, timeout=timeout,
                           mtu=ic.mtu or 1420, inner_source=src, inner_destination=dst)
        name = (peer.name + " " if peer.name else "") + encode(peer.public_key)[:8] + "…"
        findings += probe_finding(result, ours, name)
        reports.append({"peer": encode(peer.public_key), **result.as_dict()})
    return findings, reports


def run(args) -> int:
    from ..doctor.static import check_all, parse_error_finding

    probe_reports = None
    if args.config is None:
        if not args.capture:
            raise UserError("doctor needs a CONFIG file, or --capture FILE (or both)")
        if args.probe or args.peer:
            raise UserError("--probe and --peer need a CONFIG file")
        return _report(args, [], None)
    try:
        cfg = wgconfig.load(args.config)
    except wgconfig.ConfigError as e:
        findings = [parse_error_finding(e)]
        cfg = None
    else:
        findings, resolved = check_all(cfg)
        peers = _select_peers(cfg, args.peer)
        if args.peer:
            keep = {encode(p.public_key)[:8] for p in peers}
            findings = [f for f in findings if "[Peer]" not in f.title or any(k in f.title for k in keep)]
        if args.probe:
            if not 0 < args.timeout <= MAX_TIMEOUT:  # also refuses nan and inf
                raise UserError(f"--timeout must be seconds above 0 and at most {MAX_TIMEOUT}")
            more, probe_reports = _probe(cfg, peers, args.timeout, resolved)
            findings += more
    return _report(args, findings, probe_reports, cfg)


def _report(args, findings: list, probe_reports, cfg=None) -> int:
    """Add the capture's findings (when --capture) and print the document."""
    from ..doctor import render
    from ..doctor.finding import ERROR, worst

    capture_report = None
    if args.capture:
        from ..doctor.capture import diagnose_capture

        more, capture_report = diagnose_capture(args.capture, cfg)
        findings += more
    doc = render.document(args.config, findings, probe_reports, capture_report, args.capture)
    sys.stdout.write(render.to_json(doc) + "\n" if args.json else render.to_text(doc))
    return EXIT_PROBLEM if worst(findings) == ERROR else 0
