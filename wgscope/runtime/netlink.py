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
from pyroute2.netlink.rtnl import RTMGRP_LINK

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
              routes: Iterable[Network] = (), up: bool = True) -> list[str]:
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
                add_route(ipr, index, ipaddress.ip_network(net, strict=False))
                done.append(f"route {net}")
        except NetlinkError as e:
            raise LinkError(f"configuring {ifname}: {e.args[1] if len(e.args) > 1 else e}") from e
    return done


def add_route(ipr: IPRoute, index: int, net: Network) -> None:
    try:
        ipr.route("replace", dst=str(net.network_address), dst_len=net.prefixlen, oif=index,
                  family=10 if net.version == 6 else 2)
    except NetlinkError as e:
        if e.code != 17:
            raise


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


async def watch_mtu(ifname: str, changed) -> None:
    """Call `changed(mtu)` each time rtnetlink announces a new MTU for `ifname` (`ip link set wg0
    mtu N`), as wireguard-go's Linux TUN listens for RTM_NEWLINK. Runs until cancelled; returns
    at once if the interface is not in this namespace."""
    async with AsyncIPRoute() as ipr:
        found = await ipr.link_lookup(ifname=ifname)
    if not found:
        return
    index = found[0]
    ipr = AsyncIPRoute()
    try:
        await ipr.setup_endpoint()
        await ipr.bind(groups=RTMGRP_LINK)  # this socket then carries only link notifications
        while True:
            async for msg in ipr.get():
                if msg.get("event") == "RTM_NEWLINK" and msg.get("index") == index:
                    mtu = msg.get_attr("IFLA_MTU")
                    if mtu:
                        changed(mtu)
    finally:
        ipr.close()
