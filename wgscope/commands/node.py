"""Building the live node `wgscope up` runs: the TUN, the UDP sockets, the Device with the
configuration's peers, the interface's addresses and routes, the UAPI and control sockets.

Everything is opened through a Startup, so a failure half way closes what was opened. The
checks that need nothing opened (name, file, wg-quick-only keys, privileges, a name in use)
come first, in upconfig.py and serve.py, so a refused `up` touches nothing.
"""

from __future__ import annotations

import ipaddress
import os

from ..errors import UserError
from ..events import INFO, EventBus
from ..keytext import encode
from ..protocol.crypto import same_secret
from . import upconfig


class Startup:
    """Everything `up` opened, so a failure half way closes what was opened."""

    def __init__(self) -> None:
        self.tun = None
        self.udp = None
        self.summary: list[str] = []
        self.warnings: list[str] = []

    def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tun is not None:
            self.tun.close()


def load_config(path: str):
    from .. import config as wgconfig

    try:
        return wgconfig.load(path)
    except wgconfig.ConfigError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None


def _resolve(peer_config, path: str):
    """Endpoint hostnames are resolved once, at startup (wg-quick does the same)."""
    from .. import config as wgconfig

    if peer_config.endpoint is None:
        return None
    host, port = peer_config.endpoint
    try:
        return wgconfig.resolve_endpoint(host, port, path=path, line=peer_config.lines.get("Endpoint"))
    except wgconfig.ConfigError as e:
        raise UserError(str(e)) from None


def _key(value) -> bytes | None:
    from ..keytext import decode

    if value is None or isinstance(value, bytes):
        return value
    return decode(value)


class Plan:
    """What the configuration asks for, decided before anything is created."""

    def __init__(self, name: str, cfg, path: str | None) -> None:
        self.name = name
        self.cfg = cfg
        self.path = path
        iface = cfg.interface if cfg else None
        self.iface = iface
        self.endpoints = {id(pc): _resolve(pc, path) for pc in cfg.peers} if cfg else {}
        self.routes, self.table = upconfig.routes_for(cfg, path) if cfg else ([], None)
        if cfg:
            self.mtu, self.mtu_source = upconfig.choose_mtu(iface, [e for e in self.endpoints.values() if e])
        else:  # a bare interface, like wireguard-go: its default MTU until `ip link set`
            self.mtu, self.mtu_source = upconfig.DEFAULT_MTU, "wireguard-go's default"
        # The TUN's addresses are not given to device.interface_addresses: the core would source its
        # ICMP unreachable from them, and the kernel drops a packet arriving on the TUN from one of its
        # own addresses (a martian). Sourced from the unreachable destination, it is accepted.
        self.addresses = [ipaddress.ip_interface(a) for a in (iface.addresses or [])] if iface else []
        self.warnings = upconfig.honoured_warnings(getattr(cfg, "warnings", [])) if cfg else []


def plan(args) -> Plan:
    """Every check that needs nothing created: file, name, wg-quick-only keys, endpoints, MTU."""
    path = upconfig.find_config(args.config) if args.config else None
    name = upconfig.interface_name(args, path)
    cfg = load_config(str(path)) if path else None
    if cfg:
        upconfig.refuse_wg_quick_only(cfg.interface, str(path))
    return Plan(name, cfg, str(path) if path else None)


def build_node(args, plan: Plan, start: Startup, scale: float):
    from ..protocol.device import Device
    from ..runtime.live import LiveNode
    from ..runtime.tun import Tun, TunError
    from ..runtime.udp import BindError, UdpTransport

    bus = EventBus(INFO)
    iface, name = plan.iface, plan.name
    private_key = _key(iface.private_key) if iface and iface.private_key else bytes(32)
    device = Device(private_key, bus=bus, listen_port=None, mtu=plan.mtu, name=name)
    start.warnings += plan.warnings
    try:
        start.tun = Tun(name, offload=getattr(args, "tun_offload", False))
    except TunError as e:
        raise UserError(e.strerror or str(e)) from None
    try:
        start.udp = UdpTransport((iface.listen_port or 0) if iface else 0,
                                 fwmark=(getattr(iface, "fwmark", 0) or 0) if iface else 0)
    except BindError as e:
        raise UserError(e.strerror) from None
    node = LiveNode(name, device, start.tun, start.udp, bus, timer_scale=scale)
    _attach_handshake_ahead(node)
    sinks = _sinks_attacher(args)(bus, node)
    _add_peers(device, plan, node.now())
    _configure_link(plan)
    if args.force_under_load:
        device.set_forced_load(True, node.now())
    start.summary = summary(args, plan, device, start, not same_secret(private_key, bytes(32)), scale)
    if sinks.metrics is not None:  # where to point Prometheus (the port the kernel chose, for --metrics HOST:0)
        start.summary.append(f"  metrics      {sinks.metrics.url}")
    _attach_uapi(node, start)
    _attach_control(node, start)
    return node


def _attach_handshake_ahead(node) -> None:
    """A second thread computes initiations' first X25519 under a handshake flood, and the responses'
    ephemeral key pairs (runtime/handshake_ahead.py)."""
    from ..runtime.handshake_ahead import HandshakeAhead

    ahead = HandshakeAhead()
    node.device.ahead = ahead
    node.device.entropy.ephemeral_pairs = ahead.ephemeral  # responses' key pairs made on that thread too
    node.on_stop.append(lambda _node: ahead.close())


def _add_peers(device, plan: Plan, now: float) -> None:
    from ..protocol.device import ConfigurationError

    for pc in plan.cfg.peers if plan.cfg else ():
        nets = [ipaddress.ip_network(n, strict=False) for n in pc.allowed_ips]
        try:
            device.add_peer(_key(pc.public_key), preshared_key=_key(pc.preshared_key),
                            endpoint=plan.endpoints[id(pc)], allowed_ips=nets,
                            persistent_keepalive=pc.persistent_keepalive or 0, label=pc.name, now=now)
        except ConfigurationError as e:
            raise UserError(f"{plan.path}: peer {encode(_key(pc.public_key))[:8]}: {e}") from None


def _configure_link(plan: Plan) -> None:
    from ..runtime import netlink

    if plan.cfg is None:
        try:
            netlink.configure(plan.name, mtu=plan.mtu, up=False)  # bare: MTU only, like wireguard-go
        except OSError:
            pass  # rtnetlink refused: the TUN keeps the kernel's default MTU, `ip link set` can fix it
        return
    try:
        netlink.configure(plan.name, mtu=plan.mtu, addresses=plan.addresses, routes=plan.routes, table=plan.table)
    except (netlink.LinkError, OSError) as e:
        raise UserError(str(e)) from None


def summary(args, plan: Plan, device, start: Startup, has_key: bool, scale: float) -> list[str]:
    from ..protocol.endpoint import endpoint_text

    udp, name = start.udp, plan.name
    families = " + ".join(f for f, s in (("IPv4", udp.v4), ("IPv6", udp.v6)) if s is not None)
    addresses = ", addresses " + ", ".join(map(str, plan.addresses)) if plan.addresses else (
        ", no addresses (bare interface)" if plan.cfg is None else "")
    lines = [f"wgscope: interface {name} up (pid {os.getpid()})",
             f"  public key   {encode(device.public_key) if has_key else '(none: set with wg set)'}",
             f"  listening    UDP port {udp.port} ({families})",
             f"  tun          {name}, mtu {plan.mtu} ({plan.mtu_source}){addresses}"]
    if plan.cfg is not None:
        table = plan.cfg.interface.table
        lines.append("  routes       " + ("none (Table = off)" if not plan.routes and table
                                          and table.lower() == "off" else
                                          f"{len(plan.routes)}" + (f" in table {plan.table}" if plan.table else "")))
    for peer in device.peers.values():
        nets = ", ".join(str(n) for n in device.allowed_ips.networks(peer)) or "(none)"
        ep = endpoint_text(peer.endpoint) if peer.endpoint else "(learned from the peer)"
        keep = f", keepalive {peer.persistent_keepalive}s" if peer.persistent_keepalive else ""
        psk = ", psk" if peer.has_psk else ""
        lines.append(f"  peer         {peer.label or peer.name[:8]}: endpoint {ep}, allowed ips {nets}{keep}{psk}")
    if getattr(args, "tun_offload", False):
        granted = start.tun.offload_names()
        lines.append("  tun offload  " + (" ".join(granted) + ": TCP/UDP super-packets are cut in userspace"
                                          if granted else "not granted by this kernel (or no IFF_VNET_HDR)"))
    if scale != 1.0:
        lines.append(f"  TEST ONLY    protocol timers scaled by {scale}")
    if args.force_under_load:
        lines.append("  under load   forced: handshakes need mac2 (cookie replies)")
    return lines


def _sinks_attacher(args):
    """--events/--keylog/--capture/--metrics (wgscope/sinks/setup.py), closed when the node stops;
    the attacher returns the Sinks it opened."""
    from ..sinks.setup import attach_sinks, flush_while_running

    def attach(bus, node):
        sinks = attach_sinks(bus, args, node.snapshot, node.name,
                             wall_offset=node.device.wall_offset)
        node.on_stop.append(lambda n: sinks.close())
        flush_while_running(bus, node)
        return sinks

    return attach


def _attach_uapi(node, start: Startup) -> None:
    """The `wg` tool's socket, /var/run/wireguard/NAME.sock (wgscope/uapi/, runtime/uapi_socket.py).

    Deleting the socket file stops the node, as the cross-platform page asks of implementations."""
    from ..runtime import uapi_socket

    async def begin(n) -> None:
        try:
            server = await uapi_socket.start_uapi_server(n, on_removed=lambda: n.stop("UAPI socket removed"))
        except uapi_socket.UapiSocketError as e:
            raise UserError(str(e)) from None

        async def end(_n) -> None:
            server.close()
            await server.wait_closed()

        n.on_stop.append(end)
        start.summary.insert(4, f"  uapi         {server.path} (configure with wg)")

    node.on_start.append(begin)


def _attach_control(node, start: Startup) -> None:
    """The dashboard's read-only control socket (wgscope/sinks/control.py); optional, a warning if taken."""
    from ..sinks.control import start_control_server

    async def begin(n) -> None:
        try:
            server = await start_control_server(n.name, n.bus, n.snapshot, n.now)
        except OSError as e:
            start.warnings.append(f"no control socket for `wgscope top`: {e.strerror or e}")
            return
        n.on_stop.append(lambda _n: server.close())
        start.summary.append(f"  dashboard    wgscope top {n.name}")

    node.on_start.append(begin)
