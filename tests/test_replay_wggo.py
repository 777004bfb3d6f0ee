"""A wireguard-go <-> wireguard-go capture replayed with only the static private keys.

Two wireguard-go instances in namespaces joined by a veth; tshark captures on the veth while
ping crosses the tunnel and a passive keepalive follows 10 s later (WP §6.5).
"""

from __future__ import annotations

import time

import pytest

from conftest import require_tools
from netns import namespaces, unique, veth, wait_for
from livenet import Keys, ping, start_wireguard_go, wg_peer
from wgscope.protocol.constants import KEEPALIVE_TIMEOUT
from wgscope.replay import replay_capture

pytestmark = pytest.mark.root

CAPTURE_SECONDS = 15


def conf(path, keys: Keys, peer: Keys, allowed: str):
    path.write_text(f"[Interface]\nPrivateKey = {keys.private_b64}\n\n[Peer]\nPublicKey = {peer.public_b64}\n"
                    f"AllowedIPs = {allowed}\n")
    path.chmod(0o600)
    return str(path)


def test_wireguard_go_pair_with_static_keys_only(tmp_path):
    require_tools("wireguard-go", "wg", "tshark", "ping")
    ka, kb = Keys(), Keys()
    with namespaces("ra", "rb") as (na, nb):
        va, _vb = veth(na, "192.0.2.1/24", nb, "192.0.2.2/24")
        ia, ib = unique("rpa"), unique("rpb")
        start_wireguard_go(na, ia, ka, tmp_path, listen_port=51820, address=["10.66.0.1/24"])
        start_wireguard_go(nb, ib, kb, tmp_path, listen_port=51821, address=["10.66.0.2/24"])
        wg_peer(na, ia, kb.public_b64, allowed=["10.66.0.2/32"], endpoint="192.0.2.2:51821")
        wg_peer(nb, ib, ka.public_b64, allowed=["10.66.0.1/32"], endpoint="192.0.2.1:51820")
        cap = tmp_path / "wggo.pcapng"
        log = tmp_path / "tshark.log"
        shark = na.popen(["tshark", "-i", va, "-f", "udp", "-w", str(cap), "-a", f"duration:{CAPTURE_SECONDS}"],
                         stdout=open(log, "wb"), stderr=open(tmp_path / "tshark.err", "wb"))
        wait_for(lambda: b"Capturing on" in (tmp_path / "tshark.err").read_bytes() or shark.poll() is not None,
                 15, what="tshark to start capturing")
        time.sleep(0.3)
        ping(na, "10.66.0.2", count=3)
        shark.wait(CAPTURE_SECONDS + 10)
        dump_a = na.run(f"wg show {ia} dump").stdout.splitlines()[1].split("\t")
    assert shark.returncode == 0, (tmp_path / "tshark.err").read_text()

    r = replay_capture(cap, configs=[conf(tmp_path / "a.conf", ka, kb, "10.66.0.2/32"),
                                     conf(tmp_path / "b.conf", kb, ka, "10.66.0.1/32")])
    # Both peers identified by their static keys.
    assert {p.public_key for p in r.parties} == {ka.public, kb.public}
    alpha = next(p for p in r.parties if p.public_key == ka.public)
    # Every handshake identified and completed; one session each.
    assert r.handshakes and all(h.identified and h.outcome == "completed" for h in r.handshakes)
    assert r.handshakes[0].initiator is alpha
    assert len(r.sessions) == len(r.handshakes)
    assert all(s.sealed_reason == "no_ephemeral_key" and not s.decryptable for s in r.sessions)
    assert any("transport data needs ephemeral keys" in n for n in r.notices), r.notices
    # Headers still tell: 3 pings and 3 replies (plus alpha's confirmation) on session 1.
    s = r.sessions[0]
    assert s.i2r.data_packets >= 3 and s.r2i.data_packets >= 3
    # The passive keepalive: alpha answers the last reply KEEPALIVE_TIMEOUT later.
    assert alpha.keepalives >= 1
    assert r.findings_of("keepalive_timing") == []
    last_reply = s.r2i.last_time
    assert KEEPALIVE_TIMEOUT - 0.05 <= s.i2r.last_time - last_reply <= KEEPALIVE_TIMEOUT + 1.0
    assert r.findings == [], [f.as_dict() for f in r.findings]
    # wg's transfer counters agree with the packets seen: alpha's tx bytes are transport sizes plus
    # the initiation; wireguard-go counts the whole UDP payload of what it sent.
    assert int(dump_a[6]) >= alpha.tx_bytes
