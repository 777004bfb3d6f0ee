"""What `wgscope up` takes from its arguments before anything is created: the interface name,
the configuration file, the wg-quick keys it honours or refuses, and the MTU.

    wgscope up wg0              /etc/wireguard/wg0.conf, as `wg-quick up wg0`
    wgscope up ./office.conf    that file; the interface is named after it (office)

wg-quick's own keys (wg-quick(8)): `Table` is honoured (off: no routes; a number: routes in
that table; auto: the main table). Keys only wg-quick can carry out are refused in one line
that names wg-quick as the way — `PreUp`/`PostUp`/`PreDown`/`PostDown`, `DNS`,
`SaveConfig = true`, a named routing table, and an `AllowedIPs` of /0 with `Table = auto`
(wg-quick's fwmark policy routing) — never started half-configured.

Without `MTU`, the MTU is chosen as wg-quick's set_mtu_up does: the largest MTU of the routes
to the peers' endpoints, else of the default route, else 1500, less 80 (the largest IPv6 +
UDP + WireGuard overhead).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from ..errors import UserError

CONFIG_DIRECTORY = Path("/etc/wireguard")  # wg-quick's CONFIG_SEARCH_PATHS, first entry
WG_QUICK_NAME = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")  # wg-quick: an argument that is an interface name
IFNAMSIZ = 16  # linux/if.h: 15 bytes and the NUL
DEFAULT_MTU = 1420  # wireguard-go's DefaultMTU; a bare interface starts with it
WG_OVERHEAD = 80  # wg-quick set_mtu_up: 40 (IPv6) + 8 (UDP) + 32 (WireGuard header and tag)
FALLBACK_LINK_MTU = 1500  # wg-quick: no route tells, assume Ethernet
USERSPACE_HINT = "WG_QUICK_USERSPACE_IMPLEMENTATION=wgscope-userspace wg-quick up {}"
_HOOKS = (("pre_up", "PreUp"), ("post_up", "PostUp"), ("pre_down", "PreDown"), ("post_down", "PostDown"))


def check_name(name: str) -> str:
    """The kernel's dev_valid_name (net/core/dev.c), so nothing half-made is left behind: 1-15
    bytes, not . or .., no /, : or white space; no % (the kernel would number it, wg's socket
    would not follow)."""
    problem = None
    if not name or len(name.encode()) >= IFNAMSIZ:
        problem = "1 to 15 characters"
    elif name in (".", "..") or any(c in name for c in "/:%") or any(c.isspace() for c in name):
        problem = "no /, :, % or white space, and not . or .."
    if problem:
        raise UserError(f"invalid interface name {name!r}: {problem}")
    return name


def find_config(arg: str) -> Path:
    """A file that exists, else /etc/wireguard/ARG.conf when ARG is an interface name."""
    path = Path(arg)
    if path.is_file() or "/" in arg or not WG_QUICK_NAME.match(arg):
        return path
    candidate = CONFIG_DIRECTORY / f"{arg}.conf"
    if candidate.is_file():
        return candidate
    raise UserError(f"{arg}: no such file, and no {candidate}")


def interface_name(args, config: Path | None) -> str:
    name = args.ifname if args.ifname is not None else (config.stem if config else None)
    if name is None:
        raise UserError("give a configuration file or --ifname NAME")
    return check_name(name)


def refuse_wg_quick_only(iface, path: str) -> None:
    """Keys `wgscope up` cannot carry out: one line naming the key and wg-quick as the way."""
    def refuse(key: str, what: str) -> None:
        line = iface.lines.get(key)
        where = f"{path}:{line}" if line else path
        raise UserError(f"{where}: {key} {what}; wg-quick is the way: {USERSPACE_HINT.format(path)}")

    for attr, key in _HOOKS:
        if getattr(iface, attr):
            refuse(key, "runs commands, which only wg-quick does")
    if iface.dns:
        refuse("DNS", "is set through resolvconf by wg-quick, not by `wgscope up`")
    if iface.save_config:
        refuse("SaveConfig", "= true writes the file back on down, which only wg-quick does")
    if route_table(iface) is None:
        refuse("Table", f"= {iface.table} names a routing table, which only wg-quick resolves")


def route_table(iface) -> int | str | None:
    """'off', 'auto' (the main table, or policy routing for /0), a table number, or None (a name)."""
    value = (iface.table or "auto").strip().lower()
    if value in ("off", "auto"):
        return value
    if value.isdigit():
        return int(value)
    return None


def routes_for(cfg, path: str) -> tuple[list, int | None]:
    """The routes `wg-quick up` would add for the peers' AllowedIPs, and their table (None: main).
    Table = auto with a /0 needs wg-quick's fwmark policy routing: refused, wg-quick named."""
    table = route_table(cfg.interface)
    if table == "off":
        return [], None
    routes = []
    for pc in cfg.peers:
        for net in (ipaddress.ip_network(n, strict=False) for n in pc.allowed_ips):
            if net.prefixlen == 0 and table == "auto":
                raise UserError(f"{path}: AllowedIPs {net} with Table = auto needs wg-quick's policy routing "
                                f"(fwmark 51820, a table of its own); wg-quick is the way: "
                                f"{USERSPACE_HINT.format(path)} (or set Table = off and route it yourself)")
            routes.append(net)
    return routes, (None if table == "auto" else table)


def choose_mtu(iface, endpoints: list[tuple]) -> tuple[int, str]:
    """The configured MTU, or wg-quick's choice (see the module docstring); and where it came from."""
    if iface is not None and iface.mtu:
        return iface.mtu, "MTU"
    from ..runtime import netlink

    try:
        link_mtu, via = netlink.path_mtu([host for host, *_ in endpoints])
    except OSError:  # no rtnetlink: what wg-quick assumes when `ip route` tells nothing
        link_mtu, via = None, None
    if not link_mtu:
        return FALLBACK_LINK_MTU - WG_OVERHEAD, f"no route tells: {FALLBACK_LINK_MTU} - {WG_OVERHEAD}"
    return link_mtu - WG_OVERHEAD, f"{via} mtu {link_mtu} - {WG_OVERHEAD}"


def honoured_warnings(warnings) -> list[str]:
    """The configuration's warnings, less "Table ... is ignored": `wgscope up` honours Table."""
    return [str(w) for w in warnings if "Table is wg-quick's and is ignored" not in str(w)]


