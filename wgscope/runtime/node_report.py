"""What a live node reports of itself: the device's snapshot and its I/O counters (dashboard,
metrics, control socket), taken on the node's loop whichever thread asks."""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .live import LiveNode


def snapshot(node: "LiveNode") -> dict:
    """Device.snapshot plus the I/O counters, safe to call from another thread (the metrics
    server's): the snapshot is taken on the loop, between two packets, at the node's own clock."""
    loop = node.loop
    if loop is None or not loop.is_running() or node.in_loop_thread():
        return _taken(node)
    result: concurrent.futures.Future = concurrent.futures.Future()

    def take() -> None:
        try:
            result.set_result(_taken(node))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            result.set_exception(e)

    loop.call_soon_threadsafe(take)
    return result.result(timeout=5)


def _taken(node: "LiveNode") -> dict:
    snap = node.device.snapshot(node.now())
    snap["io"] = io_counters(node)
    return snap


def io_counters(node: "LiveNode") -> dict:
    """How packets crossed the TUN and the sockets: reads, TSO super-packets cut, offloads, and
    what was lost on the way (runtime/losses.py, the kernel's drops: kernel_drops.py)."""
    tun, udp, losses = node.tun, node.udp, node.losses
    io = {"udp_gso": udp.gso, "udp_send_errors": udp.send_errors, "tun_write_drops": losses.tun_write_drops,
          "tun_queue_drops": losses.tun_queue_drops, "udp_lost": dict(udp.lost),
          "udp_gso_fallbacks": udp.gso_fallbacks, "udp_receive_errors": dict(udp.receive_errors),
          "local_ignored": losses.local_ignored, "udp_receive_drops": udp.kernel_drops(),
          "link_error": node.link_error}
    if tun is not None:
        io.update(tun_offload=tun.offload_names(), tun_reads=tun.reads, tun_gso_reads=tun.gso_reads,
                  tun_packets=tun.segments, tun_offload_drops=dict(tun.offload_drops),
                  tun_gso_writes=tun.gso_writes, tun_coalesced=tun.coalesced)
    return io
