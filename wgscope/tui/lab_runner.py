"""The lab in real time with the dashboard attached: `wgscope demo --tui`.

A `LabDriver` moves the lab's clock along with the wall clock (optionally faster), sends
traffic and runs scripted steps at their lab times. `serve_lab` adds a real control socket
for one node, and `run_demo_tui` attaches `TopApp` to that socket in the same process, so
the demo exercises exactly what `wgscope top` sees of a live node. While it runs, another
terminal can attach too: `wgscope top lab-NAME`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from pathlib import Path
from typing import AsyncIterator, Callable, Iterable, Iterator

from ..runtime.lab import Lab, LabNode
from ..sinks.control import ControlServer, control_path, start_control_server

Step = tuple[float, Callable[[Lab], object]]  # (lab time in seconds, action)
# A script is a generator function: it acts on the lab and yields how many lab seconds to wait
# before it goes on, so a story written with `lab.run(5)` plays in real time as `yield 5`.
Script = Callable[[Lab], Iterator[float]]
DEFAULT = object()


def ping_peers(node: LabNode, interval: float = 1.0) -> Callable[[Lab], None]:
    """Traffic: every `interval` lab seconds, `node` pings the tunnel address of each lab node it has as a peer."""
    state = {"next": 0.0, "seq": 0}

    def traffic(lab: Lab) -> None:
        if lab.now < state["next"]:
            return
        state["next"] = lab.now + interval
        state["seq"] += 1
        for other in lab.nodes.values():
            if other is not node and other.tunnel and other.public_key in node.device.peers:
                with contextlib.suppress(ValueError):  # no tunnel address of that IP version
                    node.ping(str(ipaddress.ip_interface(other.tunnel).ip), seq=state["seq"] & 0xFFFF)

    return traffic


class LabDriver:
    """Advance `lab` by the real time elapsed times `speed`, every `tick` real seconds."""

    def __init__(self, lab: Lab, *, speed: float = 1.0, tick: float = 0.05,
                 traffic: Callable[[Lab], None] | None = None, steps: Iterable[Step] = (),
                 script: Script | None = None) -> None:
        self.lab = lab
        self.speed = speed
        self.tick = tick
        self.traffic = traffic
        self.steps = sorted(steps, key=lambda s: s[0])
        self.script = script(lab) if script else None
        self.script_at = lab.now
        self.paused = False

    @property
    def finished(self) -> bool:
        return not self.steps and self.script is None

    def _resume_script(self) -> None:
        try:
            wait = next(self.script)
        except StopIteration:
            self.script = None
            return
        self.script_at = self.lab.now + max(0.0, float(wait or 0.0))

    def step(self, dt: float) -> None:
        """Move the lab `dt` seconds on, running steps and the script exactly at their times."""
        lab = self.lab
        end = lab.now + dt
        while True:
            step_at = self.steps[0][0] if self.steps else None
            script_at = self.script_at if self.script is not None else None
            due = min((t for t in (step_at, script_at) if t is not None), default=None)
            if due is None or due > end:
                break
            lab.run_until(max(due, lab.now))
            if due == step_at:
                self.steps.pop(0)[1](lab)
            else:
                self._resume_script()
        lab.run_until(end)
        if self.traffic is not None:
            self.traffic(lab)
            lab.run(0)  # deliver what is due now

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            if not self.paused:
                self.step((now - last) * self.speed)
            last = now


@contextlib.asynccontextmanager
async def serve_lab(lab: Lab, node: LabNode, *, path: str | os.PathLike | None = None, speed: float = 1.0,
                    tick: float = 0.05, traffic: Callable[[Lab], None] | None | object = DEFAULT,
                    steps: Iterable[Step] = (), script: Script | None = None,
                    rate: float = 5.0) -> AsyncIterator[ControlServer]:
    """Drive `lab` in real time and serve `node`'s control socket (default: control_path('lab-NAME'))."""
    if traffic is DEFAULT:
        traffic = ping_peers(node)
    server = await start_control_server(f"lab-{node.name}", node.bus, node.device.snapshot, lambda: lab.now,
                                        path=path or control_path(f"lab-{node.name}"), rate=rate)
    driver = LabDriver(lab, speed=speed, tick=tick, traffic=traffic, steps=steps, script=script)
    task = asyncio.ensure_future(driver.run())
    server.driver, server.driver_task = driver, task
    try:
        yield server
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await server.close()


async def tell_when_finished(driver: LabDriver, app) -> None:
    """Once the driver's steps and script have all run, say so in the app's event pane: the lab
    goes on (timers, keepalives) and nothing else on screen would tell the story is over."""
    while not driver.finished:
        await asyncio.sleep(driver.tick)
    app.note("the story is over; the lab keeps running on its own timers (q quits)", "bold green")


def run_demo_tui(lab: Lab, node: LabNode, *, speed: float = 1.0,
                 traffic: Callable[[Lab], None] | None | object = DEFAULT, steps: Iterable[Step] = (),
                 script: Script | None = None, path: str | os.PathLike | None = None, headless: bool = False,
                 exit_after: float | None = None, capture: str | os.PathLike | None = None) -> int:
    """Run `lab` in real time (x `speed`) with the dashboard attached to `node`, until the user quits.

    traffic(lab) is called every tick (default: `node` pings its peers once a lab second; None: no
    traffic); steps are (lab time, fn(lab)) run in order at their times; `script(lab)` is a generator
    that yields lab seconds to wait between its acts. `exit_after` (real seconds) quits by itself,
    with `headless` for scripted runs; `capture` is the node's --capture file, for the handshake x-ray.
    Returns an exit status."""
    from .app import TopApp

    async def main() -> int:
        async with serve_lab(lab, node, path=path, speed=speed, traffic=traffic, steps=steps,
                             script=script) as server:
            app = TopApp(Path(server.path), capture=capture)
            # A failing script must not leave a frozen lab on screen: end the app, re-raise below.
            server.driver_task.add_done_callback(
                lambda t: t.cancelled() or t.exception() is None or app.exit(return_code=1))
            if exit_after is not None:
                asyncio.get_running_loop().call_later(exit_after, app.exit)
            told = asyncio.ensure_future(tell_when_finished(server.driver, app)) if script or steps else None
            try:
                await app.run_async(headless=headless)
            finally:
                if told is not None:
                    told.cancel()
        return 0

    return asyncio.run(main())
