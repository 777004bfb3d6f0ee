"""The control socket over a real unix socket: protocol, permissions, bounded queues, lifecycle."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat

import pytest

from lab_helpers import pair

from wgscope.events import DEBUG, INFO, KEEPALIVE_RECEIVED, EventBus
from wgscope.sinks.control import control_path, start_control_server


def lab_pair():
    return pair(seed=3)


async def read_until(reader, pred, timeout=5.0):
    """Messages until one satisfies pred; returns (all read, the match)."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads(await reader.readline())
            seen.append(msg)
            if pred(msg):
                return seen, msg


def test_control_path(monkeypatch, tmp_path):
    monkeypatch.delenv("WGSCOPE_CONTROL_DIR", raising=False)
    if os.geteuid() == 0:
        assert str(control_path("wg0")) == "/run/wgscope/wg0.ctl"
    monkeypatch.setenv("WGSCOPE_CONTROL_DIR", str(tmp_path))
    assert control_path("wg0") == tmp_path / "wg0.ctl"
    for bad in ("", "../x", "a/b", ".."):
        with pytest.raises(ValueError):
            control_path(bad)


def test_hello_snapshot_events_ping_and_modes(tmp_path):
    lab, a, b = lab_pair()
    path = tmp_path / "sock" / "alpha.ctl"

    async def main():
        server = await start_control_server("alpha", a.bus, a.device.snapshot, lambda: lab.now, path=path, rate=20)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        reader, writer = await asyncio.open_unix_connection(str(path))
        hello = json.loads(await reader.readline())
        assert hello["type"] == "hello" and hello["name"] == "alpha" and hello["version"]
        _, snap = await read_until(reader, lambda m: m["type"] == "snapshot")
        assert snap["data"]["peers"][0]["label"] == "bravo" and snap["data"]["peers"][0]["tx_packets"] == 0

        a.ping("10.0.0.2")
        lab.run(1.0)
        seen, done = await read_until(reader, lambda m: m.get("event") == "handshake_completed")
        assert done["peer"] == a.peer(b).name and done["fields"]["role"] == "initiator"
        assert any(m.get("event") == "timer_armed" for m in seen)  # DEBUG events while a client is attached
        _, snap = await read_until(reader, lambda m: m["type"] == "snapshot" and m["data"]["peers"][0]["rx_packets"])
        peer = snap["data"]["peers"][0]
        assert peer["tx_packets"] == 1 and peer["keypairs"]["current"] is not None

        writer.write(b'{"cmd": "ping"}\nnot json\n')
        _, pong = await read_until(reader, lambda m: m["type"] == "pong")
        _, err = await read_until(reader, lambda m: m["type"] == "error")
        assert "read-only" in err["message"]
        writer.close()
        await server.close()
        assert not path.exists()

    asyncio.run(main())


def test_sink_level_follows_clients(tmp_path):
    """An idle control socket costs the data path nothing: DEBUG events are built only while attached."""
    bus = EventBus(INFO)
    path = tmp_path / "n.ctl"

    async def main():
        server = await start_control_server("n", bus, lambda now: {"peers": []}, lambda: 0.0, path=path)
        assert not bus.debug
        reader, writer = await asyncio.open_unix_connection(str(path))
        await reader.readline()
        assert bus.debug and bus.level == DEBUG
        writer.close()
        async with asyncio.timeout(5):
            while server.clients:
                await asyncio.sleep(0.01)
        assert not bus.debug
        await server.close()
        assert bus.level == INFO

    asyncio.run(main())


def test_slow_client_is_bounded_and_told_what_it_missed(tmp_path):
    bus = EventBus(INFO)
    path = tmp_path / "slow.ctl"
    limit = 100

    async def main():
        server = await start_control_server("slow", bus, lambda now: {"peers": [], "pad": "x" * 2000},
                                            lambda: 0.0, path=path, rate=50, queue_limit=limit)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(str(path))
        sock.setblocking(False)
        async with asyncio.timeout(5):
            while not server.clients:
                await asyncio.sleep(0.01)
        (client,) = server.clients
        # The client reads nothing while the node emits 20 000 events (~3 MB of JSON).
        for burst in range(200):
            for i in range(100):
                bus.emit(KEEPALIVE_RECEIVED, float(burst), "peer-key-" + "p" * 40)
            await asyncio.sleep(0)
            assert len(client.events) <= limit
            assert client.writer.transport.get_write_buffer_size() < 1_000_000
        await asyncio.sleep(0.1)
        assert client.dropped_total > 10_000
        assert server.stats()["dropped"] == [client.dropped_total]

        # Now it reads: it is told how many it missed, and the stream goes on.
        reader, writer = await asyncio.open_unix_connection(sock=sock)  # keep writer: it owns the socket
        _, missed = await read_until(reader, lambda m: m["type"] == "missed")
        assert missed["count"] > 0
        bus.emit(KEEPALIVE_RECEIVED, 999.0, "late")
        await read_until(reader, lambda m: m.get("peer") == "late", timeout=10)
        writer.close()
        await server.close()

    asyncio.run(main())


def test_socket_in_use_and_stale_socket(tmp_path):
    path = tmp_path / "dup.ctl"

    async def main():
        first = await start_control_server("dup", EventBus(), lambda now: {}, lambda: 0.0, path=path)
        with pytest.raises(OSError, match="in use"):
            await start_control_server("dup", EventBus(), lambda now: {}, lambda: 0.0, path=path)
        await first.close()
        stale = socket.socket(socket.AF_UNIX)  # a socket file left behind by a node that died
        stale.bind(str(path))
        stale.close()
        second = await start_control_server("dup", EventBus(), lambda now: {}, lambda: 0.0, path=path)
        await second.close()

    asyncio.run(main())


def test_a_late_client_gets_the_history_and_an_idle_socket_builds_no_event(tmp_path):
    """While no client is attached the bus keeps the last HISTORY INFO events as the core emitted
    them and builds no Event (no wall-clock stamp is even read); a client that attaches gets them."""
    from wgscope.events import HANDSHAKE_INITIATION_CONSUMED, TIMER_ARMED
    from wgscope.sinks.control import HISTORY

    bus = EventBus(INFO)
    stamped = []
    bus.wall = lambda now: stamped.append(now) or now + 1000.0
    path = tmp_path / "h.ctl"

    async def main():
        server = await start_control_server("h", bus, lambda now: {"peers": []}, lambda: 0.0, path=path)
        for i in range(HISTORY + 5):
            bus.emit(HANDSHAKE_INITIATION_CONSUMED, float(i), "p", endpoint="198.51.100.1:1", sender_index=i)
            bus.emit(TIMER_ARMED, float(i), "p", timer="send_keepalive", due_in=10.0)  # DEBUG: not kept
        assert stamped == []
        reader, writer = await asyncio.open_unix_connection(str(path))
        seen, _ = await read_until(reader, lambda m: m["type"] == "snapshot")
        events = [m for m in seen if m["type"] == "event"]
        assert [m["fields"]["sender_index"] for m in events] == list(range(5, HISTORY + 5))
        assert events[0]["wall"] == 1005.0 and events[0]["event"] == "handshake_initiation_consumed"
        writer.close()
        await server.close()

    asyncio.run(main())
