"""Memory per configured peer, measured with tracemalloc.

    python -m bench.memory_per_peer [--peers 5000] [--json OUT.json]

Three figures, each the traced Python heap growth divided by the number of peers:
  configured   add_peer with one /32 allowed IP (keys, precomputed DH, timers, cookie state)
  session      plus an established session (a keypair: two AEAD contexts, a replay window)
  staged_full  plus a full staged queue of 1420-byte packets (QUEUE_STAGED_SIZE per peer; the bound)
Sessions are made with wgscope's own core on both sides, in memory (no network, no root).
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import sys
import tracemalloc


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def measure(peers: int = 5000, sessions: int = 200) -> dict:
    from wgscope.events import INFO, EventBus
    from wgscope.protocol.actions import SendDatagram
    from wgscope.protocol.constants import QUEUE_STAGED_SIZE
    from wgscope.protocol.crypto import public_key
    from wgscope.protocol.entropy import generate_private_key
    from wgscope.protocol.device import Device
    from wgscope.runtime import packets

    keys = [generate_private_key() for _ in range(max(peers, sessions))]
    publics = [public_key(k) for k in keys]
    hub_key = generate_private_key()
    net = ipaddress.ip_network("10.64.0.0/14")

    tracemalloc.start()
    hub = Device(hub_key, bus=EventBus(INFO), listen_port=51820)
    base = _traced()
    for i in range(peers):
        hub.add_peer(publics[i], endpoint=("192.0.2.9", 40000 + i % 20000),
                     allowed_ips=[ipaddress.ip_network(f"{net[i + 1]}/32")])
    configured = _traced() - base

    # sessions with the first `sessions` peers: each peer is a Device of its own (not counted)
    before = _traced()
    spokes = []
    tracemalloc.stop()
    for i in range(sessions):
        spoke = Device(keys[i], bus=EventBus(INFO), listen_port=51820)
        spoke.add_peer(hub.public_key, endpoint=("192.0.2.1", 51820), allowed_ips=["0.0.0.0/0"])
        spokes.append(spoke)
    tracemalloc.start()
    before = _traced()
    now = 1.0
    for i, spoke in enumerate(spokes):
        src = ("192.0.2.9", 40000 + i)
        ping = packets.echo(str(net[i + 1]), "10.64.0.0", 1)
        for act in spoke.send_packet(ping, now):
            for reply in hub.receive_datagram(act.data, src, now):
                if type(reply) is SendDatagram:
                    for back in spoke.receive_datagram(reply.data, ("192.0.2.1", 51820), now):
                        if type(back) is SendDatagram:
                            hub.receive_datagram(back.data, src, now)
        now += 0.02  # 50 handshakes a second: below the under-load threshold (WG-GO IsUnderLoad)
    established = sum(1 for p in hub.peers.values() if p.keypairs.current is not None)
    with_session = _traced() - before

    # the staged queues of peers with no session, filled to their bound
    fill = min(peers - sessions, 200)
    before = _traced()
    full = packets.udp("10.64.0.0", 1, "10.64.0.1", 2, bytes(1420 - 28))
    for i in range(sessions, sessions + fill):
        dst = str(net[i + 1])
        pkt = full[:16] + ipaddress.ip_address(dst).packed + full[20:]
        for n in range(QUEUE_STAGED_SIZE + 10):
            hub.send_packet(pkt[:-2] + n.to_bytes(2, "big"), now)  # a fresh buffer, as each TUN read is
    staged = _traced() - before
    tracemalloc.stop()
    return {
        "peers": peers,
        "configured_bytes_per_peer": round(configured / peers),
        "sessions": established,
        "session_bytes_per_peer": round(with_session / max(established, 1)),
        "staged_full_peers": fill,
        "staged_full_bytes_per_peer": round(staged / max(fill, 1)),
        "staged_limit": QUEUE_STAGED_SIZE,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers", type=int, default=5000)
    p.add_argument("--sessions", type=int, default=200)
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args(argv)
    result = measure(a.peers, min(a.sessions, a.peers))
    print(f"memory per configured peer: {result['configured_bytes_per_peer']} bytes ({a.peers} peers)")
    print(f"  + an established session:  {result['session_bytes_per_peer']} bytes ({result['sessions']} sessions)")
    print(f"  + a full staged queue:      {result['staged_full_bytes_per_peer']} bytes "
          f"({result['staged_limit']} packets of 1420 bytes)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
