"""What the kernel dropped before the live node could read it, asked once a second.

Two places hold packets for the node until it reads them, and both drop when it falls behind:
the UDP sockets' receive buffers (udp.py reports those with the next datagram that arrives, and
UdpTransport.kernel_drops asks the sockets directly) and the TUN's queue, whose drops only the link's
tx_dropped counter knows (the kernel's tun driver counts a packet it could not queue for the
reader there). Polled at POLL seconds, each increase becomes packet_dropped events and drop counts
through Losses, so neither is lost without a word even when no later datagram or view asks.
"""

from __future__ import annotations

import asyncio
import contextlib

from .losses import Losses
from .netlink import LinkDrops
from .udp import UdpTransport

POLL = 1.0  # seconds between two looks: one netlink query and two getsockopt calls
TUN_QUEUE_FULL = "tun_queue_full"


class KernelDropWatch:
    """Looks when started, then every POLL seconds as a task of the node's loop; `close` takes a last look."""

    def __init__(self, udp: UdpTransport, tun_name: str | None, losses: Losses) -> None:
        self.udp = udp
        self.losses = losses
        self.link = LinkDrops(tun_name) if tun_name else None
        self._tun_seen: int | None = None  # the TUN's count at the last look (the first look: a baseline)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """The first look, awaited: the baseline every later drop is counted from (so drops between
        the node's start and a first look made later by its task are not taken for the baseline)."""
        await self.poll()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL)
            await self.poll()

    async def poll(self) -> None:
        self.udp.kernel_drops()
        if self.link is None:
            return
        total = await self.link.tx_dropped()
        if total is None:
            return
        if self._tun_seen is not None and total > self._tun_seen:
            self.losses.packets_unread(total - self._tun_seen, TUN_QUEUE_FULL)
        self._tun_seen = total

    async def close(self) -> None:
        """A last look (what was dropped since the one before), then the rtnetlink socket closed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.poll()
        if self.link is not None:
            self.link.close()
