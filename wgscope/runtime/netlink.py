"""Link, address and route configuration of the TUN through rtnetlink (pyroute2).

What `wg-quick up` does with `ip`: MTU, addresses, link up, and one route per AllowedIPs
network through the interface. Everything here acts in the namespace the process runs in; a
TUN moved elsewhere is simply not found, which is not an error for teardown.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from pyroute2 import AsyncIPRoute, IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class LinkError(OSError):
    pass


def _index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _require(ipr: IPRoute, ifname: str) -> int:
    index = _index(ipr, ifname)
    if index is None:
        raise LinkError(f"interface {ifname} not found in this network namespace")
    return index


def configure(ifname: str, *, mtu: int | None = None, addresses: Iterable[Interface] = (),
              routes: Iterable[Network] = (), up: bool = True, table: int | None = None) -> list[str]:
    """Set MTU, add addresses, bring the link up, add routes. Returns what was done (for the summary)."""
    done: list[str] = []
    with IPRoute() as ipr:
        index = _require(ipr, ifname)
        try:
            if mtu:
                ipr.link("set", index=index, mtu=mtu)
                done.append(f"mtu {mtu}")
            for iface in addresses:
                iface = ipaddress.ip_interface(iface)
                extra = {"flags": 0x02} if iface.version == 6 else {}  # IFA_F_NODAD: usable at once
                try:
                    ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen, **extra)
                except NetlinkError as e:
                    if e.code != 17:  # EEXIST
                        raise
                done.append(f"address {iface}")
            if up:
                ipr.link("set", index=index, state="up")
                done.append("link up")
            for net in routes:
                add_route(ipr, index, ipaddress.ip_network(net, strict=False), table)
                done.append(f"route {net}" + (f" table {table}" if table else ""))
        except NetlinkError as e:
            raise LinkError(f"configuring {ifname}: {e.args[1] if len(e.args) > 1 else e}") from e
    return done


def add_route(ipr: IPRoute, index: int, net: Network, table: int | None = None) -> None:
    try:
        ipr.route("replace", dst=str(net.network_address), dst_len=net.prefixlen, oif=index,
                  family=10 if net.version == 6 else 2, **({"table": table} if table else {}))
    except NetlinkError as e:
        if e.code != 17:
            raise


def path_mtu(hosts: Iterable[str]) -> tuple[int | None, str | None]:
    """wg-quick's set_mtu_up: the largest MTU of the routes to `hosts` (the route's own mtu, else
    its device's), else that of the IPv4 default route; and what it came from. (None, None) when
    no route tells."""
    best, via = None, None
    with IPRoute() as ipr:
        for host in hosts:
            try:
                found = ipr.route("get", dst=host)
            except NetlinkError:
                continue
            mtu = _route_mtu(ipr, found[0]) if found else None
            if mtu and (best is None or mtu > best):
                best, via = mtu, f"route to {host}"
        if best is None:
            for route in ipr.get_default_routes(family=2):
                mtu = _route_mtu(ipr, route)
                if mtu and (best is None or mtu > best):
                    best, via = mtu, "default route"
    return best, via


def _route_mtu(ipr: IPRoute, route) -> int | None:
    metrics = route.get_attr("RTA_METRICS")
    mtu = metrics.get_attr("RTAX_MTU") if metrics else None
    if mtu:
        return mtu
    oif = route.get_attr("RTA_OIF")
    if oif is None:
        return None
    links = ipr.get_links(oif)
    return links[0].get_attr("IFLA_MTU") if links else None


def delete(ifname: str) -> bool:
    """Delete the link if it is in this namespace (closing the TUN fd also removes it)."""
    with IPRoute() as ipr:
        index = _index(ipr, ifname)
        if index is None:
            return False
        try:
            ipr.link("del", index=index)
        except NetlinkError:
            return False
        return True


def exists(ifname: str) -> bool:
    with IPRoute() as ipr:
        return _index(ipr, ifname) is not None


class LinkDrops:
    """A link's tx_dropped (IFLA_STATS64), read on demand over one rtnetlink socket (AsyncIPRoute:
    the node's event loop runs it): for a TUN, the packets the kernel could not queue for the
    process reading it (its queue was full)."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self._ipr: AsyncIPRoute | None = None
        self._index: int | None = None

    async def tx_dropped(self) -> int | None:
        """The link's count now, or None when it is not (or no longer) in this namespace."""
        try:
            if self._ipr is None:
                self._ipr = AsyncIPRoute()
                found = await self._ipr.link_lookup(ifname=self.ifname)
                self._index = found[0] if found else None
            if self._index is None:
                return None
            links = [link async for link in await self._ipr.get_links(self._index)]
        except (OSError, NetlinkError):
            return None
        stats = links[0].get_attr("IFLA_STATS64") if links else None
        return None if stats is None else stats.get("tx_dropped")

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None


async def watch(ifname: str | None, mtu_changed, address_removed) -> None:
    """Follow rtnetlink in this namespace until cancelled: `mtu_changed(mtu)` each time the MTU
    of `ifname` changes (`ip link set wg0 mtu N`), as wireguard-go's Linux TUN listens for
    RTM_NEWLINK; `address_removed(ip)` for each address deleted from any interface
    (RTM_DELADDR), so no reply stays pinned to a source the host no longer has. A TUN that is
    not (or no longer) in this namespace is simply not followed."""
    index = None
    if ifname is not None:
        async with AsyncIPRoute() as ipr:
            found = await ipr.link_lookup(ifname=ifname)
        index = found[0] if found else None
    ipr = AsyncIPRoute()
    try:
        await ipr.setup_endpoint()
        await ipr.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR)
        while True:
            async for msg in ipr.get():
                event = msg.get("event")
                if event == "RTM_NEWLINK" and index is not None and msg.get("index") == index:
                    mtu = msg.get_attr("IFLA_MTU")
                    if mtu:
                        mtu_changed(mtu)
                elif event == "RTM_DELADDR":
                    address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
                    if address:
                        address_removed(address)
    finally:
        ipr.close()
