"""The in-process lab: several nodes in one process, an in-memory network, a clock you control.

Everything a live node does happens here too — the same Device, the same events — but
datagrams travel through `LabNetwork` (with optional loss, duplication, reordering and
delay) and time moves only when the test says so, so a three-minute rekey takes
milliseconds and every run is reproducible from its seed: the network's impairments and each
node's keys, indices, ephemerals, jitter and cookies come from one seeded Entropy.

    lab = Lab(seed=1)
    a = lab.add_node("alpha", "192.0.2.1", 51820, tunnel="10.0.0.1/24")
    b = lab.add_node("bravo", "192.0.2.2", 51820, tunnel="10.0.0.2/24")
    lab.connect(a, b)
    a.ping("10.0.0.2"); lab.run(1.0)
    lab.advance(180)            # timers fire on the way, in order
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
from dataclasses import dataclass
from typing import Callable

from ..events import DEBUG, EventBus, EventRecorder
from ..protocol.actions import SendDatagram, WritePacket
from ..protocol.device import Device
from ..protocol.entropy import Entropy
from . import packets

LAB_EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the lab's wall clock at time 0


@dataclass
class Faults:
    """Underlay impairments applied to every datagram, seeded for reproducibility."""

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # chance a datagram is held back by `reorder_delay`
    delay: float = 0.001  # one-way latency, seconds
    jitter: float = 0.0
    reorder_delay: float = 0.01


@dataclass
class Wire:
    """One datagram observed on the lab network (for captures and assertions)."""

    time: float
    src: tuple
    dst: tuple
    data: bytes
    delivered: bool = True


class LabNetwork:
    def __init__(self, lab: "Lab", faults: Faults | None = None) -> None:
        self.lab = lab
        self.faults = faults or Faults()
        self.hosts: dict[tuple, "LabNode"] = {}
        self.blocked: set[tuple] = set()  # (src_host, dst_host) pairs silently dropped (a firewall)
        self.taps: list[Callable[[Wire], None]] = []
        self.nat: dict[str, str] = {}  # private host -> public host seen by others

    def send(self, src: tuple, dst: tuple, data: bytes) -> None:
        now = self.lab.now
        f, entropy = self.faults, self.lab.entropy
        seen_src = (self.nat.get(src[0], src[0]), src[1])
        target = self.hosts.get(dst)
        dropped = target is None or (src[0], dst[0]) in self.blocked or (f.loss and entropy.fraction() < f.loss)
        wire = Wire(now, seen_src, dst, data, not dropped)
        for tap in self.taps:
            tap(wire)
        if dropped:
            return
        copies = 2 if f.duplicate and entropy.fraction() < f.duplicate else 1
        for _ in range(copies):
            delay = f.delay + (entropy.uniform(0, f.jitter) if f.jitter else 0.0)
            if f.reorder and entropy.fraction() < f.reorder:
                delay += f.reorder_delay
            self.lab.schedule(now + delay, lambda t=target, d=data, s=seen_src: t.deliver(d, s))


class LabNode:
    def __init__(self, lab: "Lab", name: str, host: str, port: int, tunnel: str | None,
                 private_key: bytes | None, level: int) -> None:
        self.lab = lab
        self.name = name
        self.endpoint = (host, port)
        self.bus = EventBus(level)
        self.recorder = EventRecorder()
        self.bus.subscribe(self.recorder, level)
        entropy = lab.entropy.derive()
        self.device = Device(private_key or entropy.private_key(), bus=self.bus, listen_port=port,
                             wall_offset=LAB_EPOCH, entropy=entropy, name=name)
        self.tunnel = ipaddress.ip_interface(tunnel) if tunnel else None
        self.addresses = {str(self.tunnel.ip)} if self.tunnel else set()
        if self.tunnel:
            self.device.interface_addresses.append(self.tunnel)
        self.tun_received: list[bytes] = []  # packets the device wrote to our TUN
        self.answer_pings = True
        self._scheduled: float | None = None

    @property
    def public_key(self) -> bytes:
        return self.device.public_key

    # -- the adapter: carry out the core's actions
    def apply(self, actions: list) -> None:
        bus = self.bus
        for action in actions:
            if type(action) is SendDatagram:
                if bus.tapping:
                    bus.tap_datagram("out", self.endpoint, tuple(action.endpoint[:2]), action.data, self.lab.now)
                self.lab.network.send(self.endpoint, tuple(action.endpoint[:2]), action.data)
            elif type(action) is WritePacket:
                self.tun_received.append(action.packet)
                if self.answer_pings:
                    reply = packets.answer_echo(action.packet, self.addresses)
                    if reply is not None:
                        self.lab.schedule(self.lab.now, lambda r=reply: self.send_packet(r))
        self.reschedule()

    def reschedule(self) -> None:
        when = self.device.next_deadline()
        if when is not None and (self._scheduled is None or when < self._scheduled or self._scheduled < self.lab.now):
            self._scheduled = when
            self.lab.schedule(max(when, self.lab.now), self._tick)

    def _tick(self) -> None:
        self._scheduled = None
        self.apply(self.device.tick(self.lab.now))

    def deliver(self, data: bytes, src: tuple) -> None:
        actions = self.device.receive_datagram(data, src, self.lab.now)
        if self.bus.tapping:
            self.bus.tap_datagram("in", src, self.endpoint, data, self.lab.now)
        self.apply(actions)

    def send_packet(self, packet: bytes) -> None:
        """As if the kernel wrote `packet` into the TUN."""
        self.apply(self.device.send_packet(packet, self.lab.now))

    def ping(self, dst: str, seq: int = 1, payload: bytes = b"wgscope-ping") -> None:
        ver = ipaddress.ip_address(dst).version
        src = next((a for a in self.addresses if ipaddress.ip_address(a).version == ver), None)
        if src is None:
            raise ValueError(f"{self.name} has no IPv{ver} tunnel address")
        self.send_packet(packets.echo(src, dst, seq, payload=payload))

    def echo_replies(self) -> list[int]:
        return [s["seq"] for s in map(packets.summarize, self.tun_received) if s.get("icmp") == "echo_reply"]

    def move(self, host: str, port: int | None = None) -> None:
        """Change this node's underlay address (roaming)."""
        del self.lab.network.hosts[self.endpoint]
        self.endpoint = (host, port or self.endpoint[1])
        self.lab.network.hosts[self.endpoint] = self

    def peer(self, other: "LabNode"):
        return self.device.peers[other.public_key]


class Lab:
    def __init__(self, seed: int = 0, faults: Faults | None = None, level: int = DEBUG) -> None:
        self.entropy = Entropy.seeded(seed)
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.network = LabNetwork(self, faults)
        self.nodes: dict[str, LabNode] = {}
        self.level = level

    def add_node(self, name: str, host: str, port: int = 51820, tunnel: str | None = None,
                 private_key: bytes | None = None) -> LabNode:
        node = LabNode(self, name, host, port, tunnel, private_key, self.level)
        self.nodes[name] = node
        self.network.hosts[node.endpoint] = node
        return node

    def connect(self, a: LabNode, b: LabNode, psk: bytes | None = None, a_knows_endpoint: bool = True,
                b_knows_endpoint: bool = True, keepalive: int = 0) -> None:
        """Configure a and b as each other's peer; each routes the other's tunnel address."""
        def routes(n: LabNode) -> list[str]:
            return [f"{n.tunnel.ip}/{n.tunnel.max_prefixlen}"] if n.tunnel else []

        a.device.add_peer(b.public_key, preshared_key=psk, endpoint=b.endpoint if a_knows_endpoint else None,
                          allowed_ips=routes(b), persistent_keepalive=keepalive, label=b.name, now=self.now)
        b.device.add_peer(a.public_key, preshared_key=psk, endpoint=a.endpoint if b_knows_endpoint else None,
                          allowed_ips=routes(a), persistent_keepalive=keepalive, label=a.name, now=self.now)

    def alpha_bravo(self, *, keys: tuple = (None, None), connect: bool = True, **connect_kw) -> tuple:
        """The two-node set-up of the demo and the tests: alpha at 192.0.2.1:51820 with tunnel
        address 10.0.0.1/24, bravo at 192.0.2.2:51820 with 10.0.0.2/24; `keys` their private
        keys (None: from the lab's seed); connected (with `connect_kw`) unless `connect` is False."""
        a = self.add_node("alpha", "192.0.2.1", 51820, tunnel="10.0.0.1/24", private_key=keys[0])
        b = self.add_node("bravo", "192.0.2.2", 51820, tunnel="10.0.0.2/24", private_key=keys[1])
        if connect:
            self.connect(a, b, **connect_kw)
        return a, b

    def schedule(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), fn))

    def run_until(self, t: float, max_steps: int = 1_000_000) -> None:
        """Process everything due up to time t, in time order; then the clock reads t."""
        steps = 0
        while self._queue and self._queue[0][0] <= t:
            when, _, fn = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            fn()
            steps += 1
            if steps >= max_steps:
                raise RuntimeError(f"lab did not settle within {max_steps} steps")
        self.now = max(self.now, t)

    def run(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    advance = run  # "jump 3 minutes": timers due on the way fire in order
