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
