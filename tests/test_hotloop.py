"""The live node's selector: hot fds served from epoll, everything else through asyncio as before."""

from __future__ import annotations

import asyncio
import socket

import pytest

from wgscope.runtime.hotloop import new_loop


def _run(coro_fn):
    loop, selector = new_loop()
    try:
        return loop.run_until_complete(coro_fn(loop, selector))
    finally:
        loop.close()


def test_hot_callback_runs_and_asyncio_readers_still_work():
    async def scenario(loop, selector):
        hot_a, hot_b = socket.socketpair()
        cold_a, cold_b = socket.socketpair()
        hot_seen, cold_seen = [], asyncio.Event()
        selector.add_hot(hot_a.fileno(), lambda: hot_seen.append(hot_a.recv(100)))
        loop.add_reader(cold_a.fileno(), lambda: (cold_a.recv(100), cold_seen.set()))
        hot_b.send(b"hot")
        cold_b.send(b"cold")
        await asyncio.wait_for(cold_seen.wait(), 5)
        for _ in range(50):
            if hot_seen:
                break
            await asyncio.sleep(0.01)
        loop.remove_reader(cold_a.fileno())
        selector.remove_hot(hot_a.fileno())
        hot_b.send(b"after")  # no longer watched: nobody reads it
        await asyncio.sleep(0.05)
        for s in (hot_a, hot_b, cold_a, cold_b):
            s.close()
        return hot_seen

    assert _run(scenario) == [b"hot"]


def test_a_failing_hot_callback_is_reported_and_the_loop_goes_on():
    async def scenario(loop, selector):
        reported = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context["exception"]))
        a, b = socket.socketpair()

        def fail():
            a.recv(100)
            raise RuntimeError("boom")

        selector.add_hot(a.fileno(), fail)
        b.send(b"x")
        for _ in range(50):
            if reported:
                break
            await asyncio.sleep(0.01)
        selector.remove_hot(a.fileno())
        a.close()
        b.close()
        return reported

    reported = _run(scenario)
    assert len(reported) == 1 and str(reported[0]) == "boom"


def test_an_fd_asyncio_watches_cannot_be_made_hot():
    async def scenario(loop, selector):
        a, b = socket.socketpair()
        loop.add_reader(a.fileno(), lambda: None)
        try:
            with pytest.raises(ValueError):
                selector.add_hot(a.fileno(), lambda: None)
        finally:
            loop.remove_reader(a.fileno())
            a.close()
            b.close()

    _run(scenario)


def test_a_quiet_wake_up_carries_one_packet_and_epoll_brings_the_rest(monkeypatch):
    """LiveNode._wake on a quiet fd reads one packet and does not drain; the fd is level-triggered,
    so the hot selector reports it again at once and that wake-up (not quiet any more) drains."""
    from wgscope.runtime import live
    from wgscope.runtime.live import BATCH, LiveNode

    monkeypatch.setattr(live, "QUIET", 60.0)  # the wake-up right after a lone packet is not quiet, however slow the machine

    rx, tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    got, limits, quiet = [], [], [0.0]  # quiet from 0: the first wake-up is a quiet one

    def step(limit: int) -> int:
        limits.append(limit)
        n = 0
        while n < limit:
            try:
                got.append(rx.recv(100))
            except BlockingIOError:
                break
            n += 1
        return n

    def on_readable() -> None:
        quiet_from = LiveNode._wake(None, step, quiet[0])  # _wake uses nothing of the node itself
        if quiet_from is not None:
            quiet[0] = quiet_from

    loop, selector = new_loop()
    try:
        selector.add_hot(rx.fileno(), on_readable)
        for i in range(3):
            tx.sendto(bytes([i]), rx.getsockname())
        selector.select(0.1)
        assert got == [b"\x00"] and limits == [1]  # the quiet wake-up: one packet, no drain
        selector.select(0.1)
        assert got == [b"\x00", b"\x01", b"\x02"]
        assert limits == [1, BATCH]  # epoll reported the fd again, and that wake-up drained it
        tx.sendto(b"later", rx.getsockname())
        selector.select(0.1)  # the wake-up just before found more: not quiet, so it drains
        assert got[-1] == b"later" and limits[-1] == BATCH
    finally:
        loop.close()  # and its selector
        rx.close()
        tx.close()
