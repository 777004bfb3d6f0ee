"""The event loop of a live node, with the data path's fds served straight from epoll.

asyncio carries a readiness event through five layers before a reader callback runs: the
selector builds a SelectorKey list, `_process_events` wraps each in a Handle on the ready deque,
`_run_once` pops it, `Handle._run` enters a Context, and only then the callback. At ping rates
every step of a hop runs cold (caches and TLB emptied between packets on this VM, bench/README.md
section 12) and those layers cost 15-40 us a wake-up. The TUN and UDP fds are therefore
registered with `HotSelector.add_hot`: when epoll reports one of them, its callback runs inside
`select()`, on the loop's thread, before asyncio looks at what remains (timers, the UAPI and
metrics servers, rtnetlink, signals), which goes through asyncio as before.

The callbacks run on the loop's own thread and between two of its iterations, as a reader
callback does, so the protocol core keeps its one owner. An exception in one is handed to the
loop's exception handler, as asyncio does for a reader, instead of unwinding the loop.
"""

from __future__ import annotations

import asyncio
import math
import select
import selectors
from typing import Callable


class HotSelector(selectors.EpollSelector):
    """An EpollSelector that runs the callbacks of `add_hot` fds in place of reporting them."""

    def __init__(self) -> None:
        super().__init__()
        self._hot: dict[int, Callable[[], None]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None  # for the exception handler

    def add_hot(self, fd: int, callback: Callable[[], None]) -> None:
        if fd in self._fd_to_key:
            raise ValueError(f"fd {fd} is already registered with asyncio")
        if fd in self._hot:
            self._selector.modify(fd, select.EPOLLIN)
        else:
            self._selector.register(fd, select.EPOLLIN)
        self._hot[fd] = callback

    def remove_hot(self, fd: int) -> None:
        if self._hot.pop(fd, None) is not None:
            try:
                self._selector.unregister(fd)
            except OSError:
                pass  # closed already: the kernel dropped it from the epoll set

    def select(self, timeout: float | None = None) -> list:
        # EpollSelector.select (CPython Lib/selectors.py), with the hot fds dispatched.
        if timeout is None:
            timeout = -1
        elif timeout <= 0:
            timeout = 0
        else:
            timeout = math.ceil(timeout * 1e3) * 1e-3  # epoll's 1 ms resolution, rounded up
        hot = self._hot
        try:
            events = self._selector.poll(timeout, max(len(self._fd_to_key) + len(hot), 1))
        except InterruptedError:
            return []
        ready = []
        for fd, event in events:
            callback = hot.get(fd)
            if callback is not None:
                try:
                    callback()
                except Exception as e:  # noqa: BLE001 - as asyncio reports a failing reader
                    self._report(e, callback)
                continue
            key = self._fd_to_key.get(fd)
            if key is not None:
                mask = (selectors.EVENT_WRITE if event & ~select.EPOLLIN else 0) | \
                       (selectors.EVENT_READ if event & ~select.EPOLLOUT else 0)
                ready.append((key, mask & key.events))
        return ready

    def _report(self, exc: Exception, callback: Callable) -> None:
        context = {"message": f"Exception in hot reader {callback!r}", "exception": exc}
        if self.loop is not None:
            self.loop.call_exception_handler(context)
        else:
            raise exc

    def close(self) -> None:
        self._hot.clear()
        super().close()


def new_loop() -> tuple[asyncio.AbstractEventLoop, HotSelector]:
    selector = HotSelector()
    loop = asyncio.SelectorEventLoop(selector)
    selector.loop = loop
    return loop, selector
