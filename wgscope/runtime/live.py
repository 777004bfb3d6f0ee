"""The live node: one asyncio loop, single-threaded, over the sans-IO Device.

    TUN readable  -> Device.send_packet(pkt, now)          -> apply(actions)
    UDP readable  -> Device.receive_datagram(d, src, now)  -> apply(actions)
    deadline      -> Device.tick(now)                      -> apply(actions)

Readiness callbacks drain up to BATCH packets before giving the loop back, so one busy
direction cannot starve the other or the timers. Under a handshake flood a UDP wake-up is read
whole first, so a helper thread can compute its initiations' first X25519 ahead
(runtime/handshake_ahead.py); every protocol decision stays on the loop's thread. After every batch the single timer handle
is moved to `Device.next_deadline()`.

The protocol clock is `time.monotonic()`; `device.wall_offset` turns it into wall time. A
test-only `timer_scale` (WGSCOPE_TIMER_SCALE, `--timer-scale`) makes the clock the core sees
run 1/scale times faster: every protocol timer (REKEY_AFTER_TIME, REKEY_TIMEOUT, keepalives,
REJECT_AFTER_TIME, cookie refresh) shrinks by `scale` without touching the core. Persistent
keepalive intervals are scaled too. Wall times derived from the protocol clock (TAI64N
timestamps, "latest handshake") then run fast as well — only monotonicity matters to peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import math
import os
import signal
import socket
import threading
import time
from typing import Callable

from ..events import INTERFACE_DOWN, INTERFACE_UP, PACKET_DROPPED, EventBus
from ..keytext import encode
from ..protocol.actions import SendDatagram, WritePacket
from ..protocol.device import Device
from . import netlink, node_report
from .capture_source import CaptureSource
from .gso_split import OffloadError
from .hotloop import HotSelector, new_loop
from .kernel_drops import KernelDropWatch
from .losses import Losses, kernel_scoped
from .tun import Tun
from .udp import UdpTransport

BATCH = 64  # packets handled per readiness callback before yielding to the loop
QUIET = 0.001  # s: a fd whose last wake-up brought one packet this long ago is not under load
TIMER_SLACK = 0.0005  # fire a little after the deadline so tick() always finds it due


class LiveNode:
    def __init__(self, name: str, device: Device, tun: Tun | None, udp: UdpTransport, bus: EventBus,
                 timer_scale: float = 1.0) -> None:
        self.name = name
        self.device = device
        self.tun = tun
        self.udp = udp
        self.bus = bus
        self.timer_scale = timer_scale
        self._mono0 = time.monotonic()
        device.wall_offset = time.time() - self.now()
        device.listen_port = udp.port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._stopped: asyncio.Future | None = None
        self.stop_reason = "stopped"
        self.losses = Losses(device, bus, self.now)  # what the kernel did not take; the kernel's own chatter
        udp.on_lost = self.losses.datagrams_lost
        udp.on_receive_lost = self.losses.datagrams_unread
        self.link: asyncio.Task | None = None  # follows the TUN's MTU and local addresses (rtnetlink)
        self.link_error: str | None = None  # why rtnetlink could not be followed, if it could not
        self._source_for = CaptureSource(udp, self.now)  # a captured datagram's local end
        self.kernel_drops: KernelDropWatch | None = None  # the kernel's drops before our reads, polled
        self._thread: int | None = None
        self._hot: HotSelector | None = None  # the loop's selector when `serve` made the loop
        self._tun_quiet = self._udp_quiet = 0.0  # from when a wake-up of the fd counts as quiet
        # Hook points: callables run in the loop after start (may return an awaitable) / at shutdown.
        self.on_start: list[Callable[["LiveNode"], object]] = []
        self.on_stop: list[Callable[["LiveNode"], object]] = []

    # ---------------------------------------------------------------- clock
    def now(self) -> float:
        if self.timer_scale == 1.0:
            return time.monotonic()
        mono0 = self._mono0
        return mono0 + (time.monotonic() - mono0) / self.timer_scale

    # ---------------------------------------------------------------- carrying out actions
    def apply(self, actions: list) -> bool:
        """Carry out the core's actions, then move the timer to the device's next deadline.
        True when packets were written to the TUN."""
        bus = self.bus
        run: list = []  # consecutive datagrams to one endpoint: one GSO sendmsg (udp.send_many)
        run_endpoint = None
        writes: list = []
        for action in actions:
            if type(action) is SendDatagram:
                if bus.tapping:
                    bus.tap_datagram("out", self._source_for(action.endpoint), tuple(action.endpoint[:2]),
                                     action.data, self.now())
                if action.endpoint != run_endpoint and run:
                    self.udp.send_many(run, run_endpoint)
                    run = []
                run_endpoint = action.endpoint
                run.append(action.data)
            elif type(action) is WritePacket:
                writes.append(action.packet)
        if run:
            self.udp.send_many(run, run_endpoint)
        if writes:  # one batch: TCP segments of a flow leave as one GSO write (tun.write_many)
            lost = self.tun.write_many(writes) if self.tun is not None else [(len(writes), "tun_write_enodev")]
            for count, reason in lost:
                self.losses.packets_lost(count, reason)
        self.reschedule()
        return bool(writes)

    def reschedule(self) -> None:
        """Arm the loop's one timer for the device's next deadline, lazily: a handle already armed
        for an earlier time stays (when it fires, tick() finds nothing due and the timer is armed
        again for the deadline of then). Every data packet moves a deadline later (keepalive and
        new-handshake timers, WG-GO timersDataSent/Received), so re-arming only when the deadline
        comes earlier saves a cancel and a call_at per packet, at the cost of one early wake-up
        per armed deadline."""
        deadline = self.device.next_deadline()
        if deadline is None or self.loop is None:
            return  # a handle still armed fires and finds nothing due
        if self._timer is not None:
            if self._timer_deadline <= deadline:
                return
            self._timer.cancel()
        self._timer_deadline = deadline
        delay = max(0.0, (deadline - self.now()) * self.timer_scale)
        self._timer = self.loop.call_at(self.loop.time() + delay + TIMER_SLACK, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        self.apply(self.device.tick(self.now()))

    # ---------------------------------------------------------------- readiness
    # A wake-up drains its fd in batches (one core call, GSO sends). A drain ends with a read that
    # finds nothing (EAGAIN), and at ping rates that read costs 15-45 us, run cold, on the packet's
    # way (bench/README.md section 12). So when the fd is quiet (its last wake-up brought one packet,
    # QUIET or more ago: ping, DNS, a keystroke), the wake-up carries out one packet, yields the CPU
    # (sched_yield) to the task that packet woke on this CPU (the peer node, ping; perf sched showed
    # it otherwise waiting for the rest of this hop), and goes back to epoll without draining: the
    # fds are level-triggered, so anything more waiting is reported at once, and that wake-up, not
    # quiet, drains (section 14: no empty read per quiet wake-up, 4 system calls a round trip).
    # Under load (a wake-up found more, or came sooner) the fd drains first, as bulk needs.
    def _wake(self, step: Callable[[int], int], quiet_from: float) -> float | None:
        """One wake-up of a fd: `step(limit)` carries out up to `limit` reads and returns how many
        packets it handled. The fd's next quiet-from time, or None when the wake-up found nothing."""
        if time.monotonic() >= quiet_from:
            count = step(1)
            if count:
                os.sched_yield()
        else:
            count = step(BATCH)
        if not count:
            return None
        return time.monotonic() + QUIET if count == 1 else math.inf

    def _on_tun_readable(self) -> None:
        quiet_from = self._wake(self._tun_step, self._tun_quiet)
        if quiet_from is not None:
            self._tun_quiet = quiet_from

    def _tun_step(self, limit: int) -> int:
        packets = self._read_tun(limit)
        if packets:
            self._send_packets(packets)
        return len(packets)

    def _read_tun(self, limit: int) -> list:
        """Up to `limit` reads' packets (fewer when the TUN runs dry)."""
        tun = self.tun
        batch: list = []
        reads = 0
        while len(batch) < limit and reads < limit:  # one read may carry a 64 KB TSO super-packet
            try:
                packets = tun.read()
            except OffloadError as e:
                self.bus.emit(PACKET_DROPPED, self.now(), None, reason=e.reason, kind="tun_read", endpoint=None,
                              receiver_index=None)
                reads += 1
                continue
            except OSError as e:
                self._remove_reader(tun.fileno())
                self.stop(f"interface gone ({e.strerror})")
                break
            if packets is None:
                break
            batch += packets
            reads += 1
        return batch

    def _send_packets(self, batch: list) -> None:
        if any(map(kernel_scoped, batch)):
            batch = self.losses.without_local(batch)
        self.apply(self.device.send_packets(batch, self.now()))

    def _on_udp_readable(self, sock: socket.socket) -> None:
        if sock.fileno() < 0:
            return
        quiet_from = self._wake(functools.partial(self._receive, sock), self._udp_quiet)
        if quiet_from is not None:
            self._udp_quiet = quiet_from

    def _receive(self, sock: socket.socket, limit: int) -> int:
        """Up to `limit` receives' datagrams through the core, its actions carried out; how many."""
        device, bus, udp = self.device, self.bus, self.udp
        actions: list = []
        received = 0
        receives = udp.receive(sock, limit)
        if device.wants_look_ahead(self.now()):  # a handshake flood: read the wake-up first, so the
            receives = list(receives)  # device's look-ahead starts on its initiations (protocol/lookahead.py)
            device.look_ahead(receives, self.now())
        for datagrams, remote, local in receives:
            now = self.now()
            if bus.tapping:  # a capture's verdict is the events of one core call: one datagram per call
                here = local or (("::" if sock is udp.v6 else "0.0.0.0"), udp.port)
                for data in datagrams:
                    data = bytes(data)
                    actions += device.receive_datagram(data, remote, now)
                    bus.tap_datagram("in", remote, here, data, now)
            else:
                actions += device.receive_datagrams(datagrams, remote, now)
            received += len(datagrams)
            if received >= BATCH and type(receives) is not list:  # a list read ahead is handled whole
                break
        if received and self.apply(actions) and self.tun is not None and self.tun.fd >= 0:
            # Turnaround: writing to the TUN runs the kernel's receive of those packets, so its answer
            # (an echo reply, TCP's ACK) is usually queued on the TUN by now; read it without a trip
            # through epoll and the loop (bench/README.md section 10).
            self._on_tun_readable()
        return received

    async def _follow_link(self) -> None:
        """The MTU may change under us (`ip link set`), and the padding must follow it; a local
        address may be removed, and no source may stay pinned to it (udp.forget_local)."""
        name = self.tun.name if self.tun is not None else None
        try:
            await netlink.watch(name, lambda mtu: self.device.set_mtu(mtu, self.now()), self.udp.forget_local)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - no rtnetlink here: padding keeps the last MTU, sources
            self.link_error = f"{e.__class__.__name__}: {e}"  # fall over only when a send fails (io counters)

    def _add_reader(self, fd: int, callback: Callable, *args) -> None:
        """The data path's fds: served straight from epoll when the loop is `serve`'s (hotloop.py)."""
        if self._hot is not None:
            self._hot.add_hot(fd, functools.partial(callback, *args) if args else callback)
        else:
            self.loop.add_reader(fd, callback, *args)

    def _remove_reader(self, fd: int) -> None:
        if self._hot is not None:
            self._hot.remove_hot(fd)
        else:
            self.loop.remove_reader(fd)

    def _watch(self) -> None:
        if self.tun is not None:
            self._add_reader(self.tun.fileno(), self._on_tun_readable)
        self.link = self.loop.create_task(self._follow_link())
        self._watch_udp()
        self.kernel_drops = KernelDropWatch(self.udp, self.tun.name if self.tun is not None else None, self.losses)

    def _watch_udp(self) -> None:
        for sock in self.udp.sockets():
            self._add_reader(sock.fileno(), self._on_udp_readable, sock)

    def _unwatch_udp(self) -> None:
        for sock in self.udp.sockets():
            self._remove_reader(sock.fileno())

    # ---------------------------------------------------------------- run-time changes (UAPI)
    def set_listen_port(self, port: int) -> int:
        """Rebind to `port` (0: any); the old sockets stay if the new bind fails (OSError)."""
        if self.loop is not None:
            self._unwatch_udp()
        try:
            bound = self.udp.rebind(port)
        finally:
            if self.loop is not None:
                self._watch_udp()
        self.device.listen_port = bound
        return bound

    def set_fwmark(self, mark: int) -> None:
        self.udp.set_fwmark(mark)
        self.device.fwmark = mark

    def _send_first_keepalives(self) -> None:
        """Peers with a persistent keepalive and an endpoint get one keepalive (so a handshake) as
        the interface comes up, as WG-GO device.go upLocked does (peer.SendKeepalive)."""
        now = self.now()
        for peer in list(self.device.peers.values()):
            if peer.persistent_keepalive and peer.endpoint is not None:
                self.apply(self.device.send_keepalive_now(peer, now))

    def snapshot(self, now: float | None = None) -> dict:
        """Device.snapshot plus the I/O counters, safe to call from another thread (node_report.py)."""
        return node_report.snapshot(self)

    def io_counters(self) -> dict:
        return node_report.io_counters(self)

    def in_loop_thread(self) -> bool:
        """Whether the caller runs on the node's loop thread (node_report.snapshot asks)."""
        return threading.get_ident() == self._thread

    # ---------------------------------------------------------------- lifecycle
    def stop(self, reason: str = "stopped") -> None:
        if self._stopped is not None and not self._stopped.done():
            self.stop_reason = reason
            self._stopped.set_result(reason)

    def serve(self, ready: Callable[["LiveNode"], None] | None = None) -> str:
        """`run` on a loop of its own whose selector serves the TUN and UDP fds directly (hotloop.py)."""
        def loop_factory() -> asyncio.AbstractEventLoop:
            loop, self._hot = new_loop()
            return loop

        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(self.run(ready))

    async def run(self, ready: Callable[["LiveNode"], None] | None = None) -> str:
        """Serve until SIGINT/SIGTERM, `stop()`, or the TUN disappearing; then tear down."""
        self.loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._stopped = self.loop.create_future()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(sig, self.stop, signal.Signals(sig).name)
        try:
            self._watch()
            await self.kernel_drops.start()  # its baseline taken before the interface is announced
            for hook in self.on_start:
                result = hook(self)
                if asyncio.iscoroutine(result):
                    await result
            self.bus.emit(INTERFACE_UP, self.now(), None, interface=self.name, listen_port=self.udp.port,
                          public_key=encode(self.device.public_key))
            self._send_first_keepalives()
            self.reschedule()
            # The start-up's ~55k objects (modules, catalogue, config) out of the collector's sight:
            # a full collection of them took ~30 ms here, a stall of every packet in flight.
            gc.collect()
            gc.freeze()
            if ready is not None:
                ready(self)
            await self._stopped
        finally:
            await self.close()
        return self.stop_reason

    async def close(self) -> None:
        loop = self.loop
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.kernel_drops is not None:  # before the stop hooks close the sinks, as below
            await self.kernel_drops.close()
        # Before the stop hooks: they close the event sinks, and a file sink must record it too.
        self.bus.emit(INTERFACE_DOWN, self.now(), None, interface=self.name, reason=self.stop_reason)
        for hook in reversed(self.on_stop):
            try:
                result = hook(self)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # teardown goes on: the TUN and sockets must still be removed
                pass
        if self.tun is not None and self.tun.fd >= 0:
            self._remove_reader(self.tun.fileno())
        if self.link is not None:
            self.link.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.link
            self.link = None
        self._unwatch_udp()
        self.udp.close()
        if self.tun is not None:
            self.tun.close()  # the last fd of a non-persistent TUN: the interface is deleted
