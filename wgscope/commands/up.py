"""`wgscope up CONFIG | --ifname NAME` and `wgscope down NAME`: run a live node.

    wgscope up wg0.conf                 TUN wg0 with the file's addresses, MTU and routes
    wgscope up --ifname wg1             a bare interface, like `wireguard-go wg1`: TUN + UAPI
                                        socket only, configured entirely with `wg`
    wgscope up ... --daemon             detach; return once the interface and socket are ready
    wgscope down wg0                    stop the node serving wg0 (SIGTERM; it removes the TUN)

Test-only (hidden): `--timer-scale S` or WGSCOPE_TIMER_SCALE=S runs the protocol clock the
core sees 1/S times faster, so every protocol timer is S times shorter (see runtime/live.py).
`--force-under-load` makes the node answer handshakes without a valid mac2 with cookie replies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
import time
from pathlib import Path

from ..errors import UserError
from ..events import INFO, EventBus
from ..keytext import encode

PID_DIR = Path("/run/wgscope")
CAP_NET_ADMIN = 12
NEED_ROOT = "creating a TUN interface needs root or CAP_NET_ADMIN (try: sudo wgscope up ...)"


def register(sub) -> None:
    p = sub.add_parser("up", help="run a live WireGuard node (TUN + UDP + UAPI socket)",
                       description="Run a live WireGuard node from a wg-quick file, or a bare interface "
                                   "configured with `wg` (like wireguard-go NAME).")
    p.add_argument("config", nargs="?", help="wg-quick configuration file (omit for a bare interface)")
    p.add_argument("--ifname", help="interface name (default: the configuration file's name, e.g. wg0)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--foreground", action="store_true", help="stay in the foreground (the default)")
    mode.add_argument("--daemon", action="store_true",
                      help="detach; return once the interface and UAPI socket are ready")
    p.add_argument("--force-under-load", action="store_true",
                   help="act as if under handshake load: demand mac2, answer with cookie replies")
    p.add_argument("--tun-offload", action="store_true",
                   help="ask the kernel for TSO/checksum offload on the TUN: 64 KB TCP reads cut into packets "
                        "in userspace (on a 2-vCPU VM: more CPU at moderate load, a draw at full load; bench/README.md)")
    p.add_argument("--timer-scale", type=float, default=None, help=argparse.SUPPRESS)
    from ..sinks.setup import add_sink_arguments

    add_sink_arguments(p)
    p.set_defaults(func=up)

    d = sub.add_parser("down", help="stop the wgscope node serving an interface")
    d.add_argument("ifname", help="interface name")
    d.set_defaults(func=down)


# ---------------------------------------------------------------- privileges
def has_net_admin() -> bool:
    if os.geteuid() == 0:
        return True
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("CapEff:"))
        return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    return False


def timer_scale(args) -> float:
    raw = args.timer_scale if args.timer_scale is not None else os.environ.get("WGSCOPE_TIMER_SCALE")
    if raw in (None, ""):
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        raise UserError(f"timer scale must be a number, got {raw!r}") from None
    if not 0 < scale <= 1000:
        raise UserError(f"timer scale must be in (0, 1000], got {scale}")
    return scale


# ---------------------------------------------------------------- building the node
def _load_config(path: str):
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


class Startup:
    """Everything `up` opened, so a failure half way closes what was opened."""

    def __init__(self) -> None:
        self.tun = None
        self.udp = None
        self.summary: list[str] = []
        self.warnings: list[str] = []


def build_node(args, start: Startup):
    from ..protocol.device import ConfigurationError, Device
    from ..protocol.peer import endpoint_text
    from ..runtime import netlink
    from ..runtime.live import LiveNode
    from ..runtime.tun import Tun, TunError
    from ..runtime.udp import BindError, UdpTransport

    cfg = _load_config(args.config) if args.config else None
    name = args.ifname or (Path(args.config).stem if args.config else None)
    if not name:
        raise UserError("give a configuration file or --ifname NAME")
    if not has_net_admin():
        raise UserError(NEED_ROOT)
    scale = timer_scale(args)
    bus = EventBus(INFO)
    iface = cfg.interface if cfg else None
    private_key = _key(iface.private_key) if iface and iface.private_key else bytes(32)
    mtu = (iface.mtu if iface and iface.mtu else None) or 1420
    device = Device(private_key, bus=bus, listen_port=None, mtu=mtu, name=name)
    # The TUN's addresses are not given to device.interface_addresses: the core would source its
    # ICMP unreachable from them, and the kernel drops a packet arriving on the TUN from one of its
    # own addresses (a martian). Sourced from the unreachable destination, it is accepted.
    addresses = [ipaddress.ip_interface(a) for a in (iface.addresses or [])] if iface else []
    if cfg:
        start.warnings += [str(w) for w in getattr(cfg, "warnings", [])]

    try:
        start.tun = Tun(name, offload=getattr(args, "tun_offload", False))
    except TunError as e:
        raise UserError(e.strerror or str(e)) from None
    port = (iface.listen_port or 0) if iface else 0
    try:
        start.udp = UdpTransport(port, fwmark=(getattr(iface, "fwmark", 0) or 0) if iface else 0)
    except BindError as e:
        raise UserError(e.strerror) from None

    node = LiveNode(name, device, start.tun, start.udp, bus, timer_scale=scale)
    attach = _sinks_attacher(args)
    if attach is not None:
        attach(bus, node)
    now = node.now()
    routes = []
    if cfg:
        for pc in cfg.peers:
            nets = [ipaddress.ip_network(n, strict=False) for n in pc.allowed_ips]
            try:
                device.add_peer(_key(pc.public_key), preshared_key=_key(pc.preshared_key),
                                endpoint=_resolve(pc, args.config), allowed_ips=nets,
                                persistent_keepalive=pc.persistent_keepalive or 0, label=pc.name, now=now)
            except ConfigurationError as e:
                raise UserError(f"{args.config}: peer {encode(_key(pc.public_key))[:8]}: {e}") from None
            for net in nets:
                if net.prefixlen == 0:
                    start.warnings.append(f"AllowedIPs {net}: no default route installed (wg-quick's policy "
                                          f"routing is not done by wgscope); route it yourself")
                else:
                    routes.append(net)
        try:
            netlink.configure(name, mtu=mtu, addresses=addresses, routes=routes)
        except (netlink.LinkError, OSError) as e:
            raise UserError(str(e)) from None
    else:
        with contextlib.suppress(OSError):
            netlink.configure(name, mtu=mtu, up=False)  # bare: MTU only, like wireguard-go
    if args.force_under_load:
        device.set_forced_load(True, now)

    families = " + ".join(f for f, s in (("IPv4", start.udp.v4), ("IPv6", start.udp.v6)) if s is not None)
    lines = [f"wgscope: interface {name} up (pid {os.getpid()})",
             f"  public key   {encode(device.public_key) if private_key != bytes(32) else '(none: set with wg set)'}",
             f"  listening    UDP port {start.udp.port} ({families})",
             f"  tun          {name}, mtu {mtu}" + (
                 ", addresses " + ", ".join(map(str, addresses)) if addresses
                 else (", no addresses (bare interface)" if cfg is None else ""))]
    for peer in device.peers.values():
        nets = ", ".join(str(n) for n in device.allowed_ips.networks(peer)) or "(none)"
        ep = endpoint_text(peer.endpoint) if peer.endpoint else "(learned from the peer)"
        keep = f", keepalive {peer.persistent_keepalive}s" if peer.persistent_keepalive else ""
        psk = ", psk" if peer.handshake.preshared_key != bytes(32) else ""
        lines.append(f"  peer         {peer.label or peer.name[:8]}: endpoint {ep}, allowed ips {nets}{keep}{psk}")
    if getattr(args, "tun_offload", False):
        granted = start.tun.offload_names()
        lines.append("  tun offload  " + (" ".join(granted) + ": TCP/UDP super-packets are cut in userspace"
                                          if granted else "not granted by this kernel (or no IFF_VNET_HDR)"))
    if scale != 1.0:
        lines.append(f"  TEST ONLY    protocol timers scaled by {scale}")
    if args.force_under_load:
        lines.append("  under load   forced: handshakes need mac2 (cookie replies)")
    start.summary = lines
    _attach_uapi(node, start)
    _attach_control(node, start)
    return node


def _sinks_attacher(args):
    """--events/--keylog/--capture/--metrics (wgscope/sinks/setup.py), closed when the node stops."""
    from ..sinks.setup import attach_sinks

    def attach(bus, node):
        sinks = attach_sinks(bus, args, node.snapshot, node.name,
                             wall_offset=node.device.wall_offset)
        node.on_stop.append(lambda n: sinks.close())

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


# ---------------------------------------------------------------- up / down
def pidfile(name: str) -> Path:
    return PID_DIR / f"{name}.pid"


def up(args) -> int:
    if args.daemon:
        return _daemon(args)
    start = Startup()
    try:
        node = build_node(args, start)
    except BaseException:
        _close(start)
        raise

    def ready(n) -> None:
        print(_summary(start, f"stop with Ctrl-C or `wgscope down {n.name}`"), flush=True)

    reason = _serve(node, ready)
    print(f"wgscope: interface {node.name} down ({reason})", flush=True)
    return 0


def _summary(start: Startup, last: str) -> str:
    return "\n".join(start.summary + [f"  warning      {w}" for w in start.warnings] + [f"  {last}"])


def _serve(node, ready) -> str:
    """Run the node's loop; the pid file lets `wgscope down NAME` find it."""
    path = pidfile(node.name)
    with contextlib.suppress(OSError):
        PID_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n")
    try:
        return asyncio.run(node.run(ready=ready))
    finally:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()


def _close(start: Startup) -> None:
    if start.udp is not None:
        start.udp.close()
    if start.tun is not None:
        start.tun.close()


def _daemon(args) -> int:
    """Fork; the child builds and serves the node and reports "ready" (or the error) through a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            report = pipe.read().decode(errors="replace")
        if report.startswith("ok\n"):
            print(report[3:], end="", flush=True)
            return 0
        os.waitpid(pid, 0)
        raise UserError(report.removeprefix("error\n").strip() or "the daemon exited before it was ready")
    os.close(r)
    os.setsid()
    start = Startup()
    try:
        node = build_node(args, start)
    except UserError as e:
        _close(start)
        os.write(w, f"error\n{e}".encode())
        os._exit(1)
    except BaseException as e:  # noqa: BLE001 - reported to the parent as one line
        _close(start)
        os.write(w, f"error\n{e.__class__.__name__}: {e}".encode())
        os._exit(1)

    def ready(n) -> None:
        os.write(w, ("ok\n" + _summary(start, f"stop with `wgscope down {n.name}`") + "\n").encode())
        os.close(w)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)

    try:
        _serve(node, ready)
    except BaseException as e:  # noqa: BLE001 - before `ready`, the parent is waiting for this line
        with contextlib.suppress(OSError):
            os.write(w, f"error\n{e}".encode())
    finally:
        os._exit(0)


def down(args) -> int:
    name = args.ifname
    path = pidfile(name)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        raise UserError(f"no wgscope node is serving {name} (no {path})") from None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    if b"wgscope" not in cmdline:
        with contextlib.suppress(OSError):
            path.unlink()
        raise UserError(f"no wgscope node is serving {name} (stale {path})")
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        raise UserError(f"not allowed to stop pid {pid} (run as root)") from None
    except ProcessLookupError:
        return 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            print(f"wgscope: {name} down", file=sys.stderr)
            return 0
        time.sleep(0.05)
    raise UserError(f"pid {pid} serving {name} did not stop within 10 s")


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False
