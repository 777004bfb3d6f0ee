"""wgscope against Debian's wireguard-go, each in its own network namespace.

    ns A: wgscope up A.conf         veth 192.0.2.1/24, 2001:db8:1::1/64     tunnel 10.9.0.1, fd00:9::1
    ns B: wireguard-go + wg set     veth 192.0.2.2/24, 2001:db8:1::2/64     tunnel 10.9.0.2, fd00:9::2

wgscope runs as a subprocess (`wgscope up`) and is always terminated; its JSON event log
(--events) is what the tests read to see which side did what.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import require_tools
from livenet import (
    Keys, WgscopeProcess, ping, psk, start_wgscope, start_wireguard_go, tcp_transfer, wg_dump, wg_peer,
    wgscope_config,
)
from netns import Namespace, namespaces, unique, veth

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

A4, B4, B4_MOVED = "192.0.2.1", "192.0.2.2", "192.0.2.3"
A6, B6 = "2001:db8:1::1", "2001:db8:1::2"
PORT_A, PORT_B = 51820, 51821


@dataclass
class Pair:
    a: Namespace
    b: Namespace
    ifa: str
    ifb: str
    node: WgscopeProcess
    events_path: Path
    veth_b: str
    key_a: str

    def events(self, name: str | None = None) -> list[dict]:
        out = []
        for line in self.events_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                ev = json.loads(line)
                if name is None or ev.get("event") == name:
                    out.append(ev)
        return out


@contextlib.contextmanager
def wggo_pair(tmp: Path, *, with_psk: bool = False, outer6: bool = False, wgscope_knows: bool = True,
              wggo_knows: bool = False, keepalive: int | None = None, extra: tuple = (), env: dict | None = None):
    """wgscope in A, wireguard-go in B; who knows whose endpoint decides who can initiate."""
    require_tools("wireguard-go", "wg", "ping")
    with namespaces("A", "B") as (a, b):
        _va, vb = veth(a, f"{A4}/24", b, f"{B4}/24")
        a.run(f"ip -6 addr add {A6}/64 dev {_va} nodad")
        b.run(f"ip -6 addr add {B6}/64 dev {vb} nodad")
        ka, kb = Keys(), Keys()
        shared = psk() if with_psk else None
        ifa, ifb = unique("wsa"), unique("wgb")
        b_endpoint = f"[{B6}]:{PORT_B}" if outer6 else f"{B4}:{PORT_B}"
        a_endpoint = f"[{A6}]:{PORT_A}" if outer6 else f"{A4}:{PORT_A}"
        conf = wgscope_config(tmp / f"{ifa}.conf", ka, listen_port=PORT_A, addresses=["10.9.0.1/24", "fd00:9::1/64"],
                              peers=[dict(public_key=kb.public_b64, allowed_ips=["10.9.0.2/32", "fd00:9::2/128"],
                                          endpoint=b_endpoint if wgscope_knows else None, psk=shared,
                                          keepalive=keepalive)])
        events = tmp / f"{ifa}.events.jsonl"
        node = start_wgscope(a, tmp, ifa, conf, "--events", str(events), "--events-format", "json",
                             "--events-level", "debug", *extra, env=env)
        start_wireguard_go(b, ifb, kb, tmp, listen_port=PORT_B, address=["10.9.0.2/24", "fd00:9::2/64"])
        wg_peer(b, ifb, ka.public_b64, allowed=["10.9.0.1/32", "fd00:9::1/128"],
                endpoint=a_endpoint if wggo_knows else None, psk_text=shared, tmp=tmp)
        try:
            yield Pair(a, b, ifa, ifb, node, events, vb, ka.public_b64)
        finally:
            rc = node.terminate()
            assert rc == 0, f"wgscope exited {rc}:\n{node.output()}"
            assert not a.run(f"ip link show {ifa}", check=False).returncode == 0, "TUN left behind"


def completed(pair: Pair, role: str) -> list[dict]:
    return [e for e in pair.events("handshake_completed") if e["role"] == role]


@pytest.mark.parametrize("with_psk", [False, True], ids=["no-psk", "psk"])
def test_wgscope_initiates_ping_and_tcp(tmp_path, with_psk):
    with wggo_pair(tmp_path, with_psk=with_psk) as p:
        ping(p.a, "10.9.0.2")
        ping(p.b, "10.9.0.1")
        ping(p.a, "fd00:9::2")  # inner IPv6
        tcp_transfer(p.b, p.a, "10.9.0.2", size=4 << 20)
        assert completed(p, "initiator") and not completed(p, "responder")
        dump = wg_dump(p.b, p.ifb)[0]
        assert dump[2] == f"{A4}:{PORT_A}" and int(dump[4]) > 0  # wireguard-go learned us, saw a handshake
        assert int(dump[5]) > 4 << 20  # wireguard-go received the transfer


def test_tun_offload_segments_reach_wireguard_go_intact(tmp_path):
    """With --tun-offload wgscope reads 64 KB TCP super-packets and cuts them itself; the 2022
    wireguard-go writes what it decrypts to its TUN as it is, so every segment must be whole."""
    with wggo_pair(tmp_path, extra=("--tun-offload",)) as p:
        ping(p.a, "10.9.0.2")
        tcp_transfer(p.b, p.a, "10.9.0.2", size=4 << 20)
        tcp_transfer(p.b, p.a, "fd00:9::2", size=2 << 20, port=5203)
        assert "tun offload  csum tso4 tso6" in p.node.output()
        dump = wg_dump(p.b, p.ifb)[0]
        assert int(dump[5]) > 6 << 20


@pytest.mark.parametrize("with_psk", [False, True], ids=["no-psk", "psk"])
def test_wireguard_go_initiates(tmp_path, with_psk):
    with wggo_pair(tmp_path, with_psk=with_psk, wgscope_knows=False, wggo_knows=True) as p:
        ping(p.b, "10.9.0.1")
        ping(p.a, "10.9.0.2")
        ping(p.b, "fd00:9::1")
        tcp_transfer(p.a, p.b, "fd00:9::1", size=2 << 20)  # inner IPv6 TCP, wireguard-go -> wgscope
        assert completed(p, "responder") and not completed(p, "initiator")
        learned = p.events("endpoint_changed")
        assert learned and learned[0]["new"] == f"{B4}:{PORT_B}" and learned[0]["cause"] == "roaming"


def test_outer_ipv6_endpoints(tmp_path):
    with wggo_pair(tmp_path, outer6=True, with_psk=True) as p:
        ping(p.a, "10.9.0.2")
        ping(p.b, "fd00:9::1")
        tcp_transfer(p.b, p.a, "10.9.0.2", size=2 << 20)
        assert wg_dump(p.b, p.ifb)[0][2] == f"[{A6}]:{PORT_A}"
        sent = p.events("handshake_initiation_sent")
        assert sent and sent[0]["endpoint"] == f"[{B6}]:{PORT_B}"


def test_roaming_wireguard_go_moves_mid_flow(tmp_path):
    """wireguard-go's underlay address changes during a TCP transfer; wgscope follows it."""
    with wggo_pair(tmp_path, wgscope_knows=False, wggo_knows=True) as p:
        ping(p.b, "10.9.0.1")

        def move():
            time.sleep(0.5)
            p.b.run(f"sysctl -qw net.ipv4.conf.{p.veth_b}.promote_secondaries=1")  # keep the new one
            p.b.run(f"ip addr add {B4_MOVED}/24 dev {p.veth_b}")
            p.b.run(f"ip addr del {B4}/24 dev {p.veth_b}")
            # wireguard-go 0.0.20220316 pins its source address and falls over only on EINVAL; the
            # kernel answers ENETUNREACH for a vanished source, so re-set the endpoint to unpin it.
            p.b.run(f"wg set {p.ifb} peer {p.key_a} endpoint {A4}:{PORT_A}")

        tcp_transfer(p.a, p.b, "10.9.0.1", size=3 << 20, pace=0.02, during=move)
        moves = [e["new"] for e in p.events("endpoint_changed")]
        assert moves[-1] == f"{B4_MOVED}:{PORT_B}", moves
        ping(p.a, "10.9.0.2")  # and wgscope's own traffic goes to the new address


def test_persistent_keepalive_on_the_wire(tmp_path):
    """PersistentKeepalive = 1: tshark in B sees a 32-byte transport message about every second."""
    require_tools("tshark")
    with wggo_pair(tmp_path, keepalive=1) as p:
        ping(p.a, "10.9.0.2", count=1)
        r = p.b.run(f"tshark -n -i {p.veth_b} -a duration:5 -f 'udp and src host {A4}' "
                    f"-T fields -e frame.time_epoch -e udp.length", timeout=30)
        times = [float(t) for t, length in (ln.split("\t") for ln in r.stdout.split("\n") if ln.strip())
                 if int(length) == 8 + 32]
        assert len(times) >= 3, r.stdout + r.stderr
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert all(0.7 < g < 1.6 for g in gaps), gaps
        assert p.events("keepalive_sent")


def test_rekey_initiated_by_wgscope(tmp_path):
    """Timers x0.02 (REKEY_AFTER_TIME 2.4 s): wgscope rekeys during a transfer; nothing is lost."""
    with wggo_pair(tmp_path, env={"WGSCOPE_TIMER_SCALE": "0.02"}) as p:
        ping(p.a, "10.9.0.2", count=1)
        tcp_transfer(p.b, p.a, "10.9.0.2", size=3 << 20, pace=0.08)
        wanted = [e["reason"] for e in p.events("rekey_wanted")]
        assert "rekey_after_time" in wanted, wanted
        assert len(completed(p, "initiator")) >= 2
        ping(p.a, "10.9.0.2")


def test_cookie_reply_under_forced_load(tmp_path):
    """wgscope under load answers wireguard-go's initiation with a cookie reply; wireguard-go retries
    after REKEY_TIMEOUT (5 s) with mac2 and the handshake completes."""
    with wggo_pair(tmp_path, wgscope_knows=False, wggo_knows=True, extra=("--force-under-load",)) as p:
        ping(p.b, "10.9.0.1", count=1, timeout=15)
        assert p.events("cookie_reply_sent")
        assert completed(p, "responder")
        rejected = [e["reason"] for e in p.events("handshake_initiation_rejected")]
        assert "bad_mac2" in rejected
        ping(p.a, "10.9.0.2")


def test_transfer_counters_agree_with_wireguard_go(tmp_path):
    """`wg show dump` transfer on both sides counts the same datagrams: what one received is what
    the other sent, handshake messages included (WG-GO peer.SendBuffers adds every datagram to
    txBytes; receive.go adds consumed initiations, responses and transport messages to rxBytes)."""
    with wggo_pair(tmp_path) as p:
        ping(p.a, "10.9.0.2")
        ping(p.b, "10.9.0.1")

        def counters():
            ours, theirs = wg_dump(p.a, p.ifa)[0], wg_dump(p.b, p.ifb)[0]
            return (int(ours[5]), int(ours[6])), (int(theirs[5]), int(theirs[6]))  # (rx, tx)

        # nothing is in flight once both sides report the same; a passive keepalive (10 s after
        # the last data) could be, for a moment, so allow a few looks
        deadline = time.monotonic() + 5
        while True:
            (a_rx, a_tx), (b_rx, b_tx) = counters()
            if (a_rx, a_tx) == (b_tx, b_rx) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (a_rx, a_tx) == (b_tx, b_rx), ((a_rx, a_tx), (b_rx, b_tx))
        # 6 echo requests and 6 replies each way, plus one initiation (148) and one response (92)
        assert a_tx > 148 + 6 * 32 and a_rx > 92 + 6 * 32
