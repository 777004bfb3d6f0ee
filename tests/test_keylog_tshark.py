"""tshark, given only wgscope's --keylog, decrypts wgscope <-> wireguard-go traffic captured on
the veth (not our own --capture): the handshake and the tunnelled ICMP, with wgscope as
initiator and as responder, with and without a pre-shared key."""

from __future__ import annotations

import base64
import os
import signal
import stat
import subprocess
import time

import pytest
from pyshark_util import read_packets

from conftest import require_tools
from livenet import Keys, psk, start_wgscope, start_wireguard_go, wg_peer, wgscope_config
from netns import namespaces, unique, veth, wait_for

pytestmark = pytest.mark.root

A_UNDER, B_UNDER = "192.0.2.1", "192.0.2.2"
A_TUN, B_TUN = "10.44.0.1", "10.44.0.2"
PORT = 51820


def tshark_count(path, display_filter: str, *opts: str) -> int:
    out = subprocess.run(["tshark", "-r", str(path), *opts, "-Y", display_filter], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return len([line for line in out.stdout.splitlines() if line.strip()])


class WireCapture:
    """tshark -i on a veth inside a namespace, bounded by -a duration, stopped with SIGINT."""

    def __init__(self, ns, dev: str, path, tmp) -> None:
        self.path = path
        self.err = tmp / f"{dev}.tshark.err"
        self._err = open(self.err, "wb")
        self.proc = ns.popen(["tshark", "-n", "-i", dev, "-f", "udp", "-a", "duration:30", "-w", str(path)],
                             stdout=subprocess.DEVNULL, stderr=self._err)
        # "Capturing on" is printed before dumpcap has the interface open; tshark 4.0 also reports
        # "Capture started." once dumpcap runs. Wait for that, then a moment for the socket.
        wait_for(lambda: b"Capture started" in self.err.read_bytes() or self.proc.poll() is not None, 15,
                 what="tshark to start capturing")
        assert self.proc.poll() is None, self.err.read_text()
        time.sleep(0.5)

    def stop(self) -> None:
        time.sleep(1.0)  # let dumpcap write the last replies before it is interrupted
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(15)
        self._err.close()


def keylog_option(keylog) -> tuple[str, str]:
    return ("-o", f"wg.keylog_file:{keylog}")


def check_keylog_and_log(keylog, log: str, role: str, ours, theirs, shared) -> None:
    """The key log (0600) holds this handshake's keys; the node's own output names it but holds none."""
    assert stat.S_IMODE(os.stat(keylog).st_mode) == 0o600
    text = keylog.read_text()
    assert f"{role} handshake" in text
    assert f"LOCAL_STATIC_PRIVATE_KEY = {ours.private_b64}\n" in text
    assert f"REMOTE_STATIC_PUBLIC_KEY = {theirs.public_b64}\n" in text
    if shared:
        assert f"PRESHARED_KEY = {shared}\n" in text
    # the node's own output (events at trace level) names the handshake but holds no key
    assert '"event": "handshake_completed"' in log
    secrets = [line.split(" = ")[1] for line in text.splitlines() if " = " in line and "PUBLIC" not in line]
    for key in {k for k in secrets if k != "A" * 43 + "="}:
        assert key not in log and base64.b64decode(key).hex() not in log


def check_tshark_decrypts(wire, keylog) -> None:
    """tshark decrypts the wire capture with the key log, and only with it."""
    assert tshark_count(wire, "wg") >= 5  # the wire really carries WireGuard
    assert tshark_count(wire, "icmp") == 0  # nothing decrypts without keys
    keyed = keylog_option(keylog)
    assert tshark_count(wire, "wg.handshake_ok == 1", *keyed) >= 1
    assert tshark_count(wire, "icmp.type == 8", *keyed) >= 3
    assert tshark_count(wire, "icmp.type == 0", *keyed) >= 3
    assert tshark_count(wire, f"ip.src == {A_TUN} || ip.src == {B_TUN}", *keyed) >= 6


def check_replay_agrees(wire, keylog, log: str) -> None:
    """wgscope replay, given the same wire capture and key log, reproduces what the node reported."""
    from wgscope.replay.driver import replay_capture
    replayed = replay_capture(wire, keylogs=[str(keylog)])
    reported = log.count('"event": "handshake_completed"')
    assert len(replayed.handshakes) == reported >= 1
    assert all(h.outcome == "completed" for h in replayed.handshakes)
    icmp = sum(n for flow, n in replayed.inner.items() if flow.startswith("icmp"))
    assert icmp == tshark_count(wire, "icmp", *keylog_option(keylog)) >= 6
    assert not [f for f in replayed.findings if f.kind in ("decryption_failed", "unknown_receiver_index")]


def check_own_capture(own, role: str, theirs) -> None:
    """The node's own capture needs no key log at all: its Decryption Secrets Blocks carry the keys."""
    assert stat.S_IMODE(os.stat(own).st_mode) == 0o600
    assert tshark_count(own, "wg.handshake_ok == 1") >= 1
    assert tshark_count(own, "icmp.type == 0") >= 3
    from wgscope.pcap import read_capture
    from wgscope.sinks.capture import parse_comment
    verdicts = [parse_comment(p.comment) for p in read_capture(own)]
    first = "out" if role == "initiator" else "in"
    assert (verdicts[0]["dir"], verdicts[0]["kind"], verdicts[0]["verdict"]) == (
        first, "initiation", "sent" if first == "out" else "accepted")
    assert verdicts[0]["peer"] == theirs.public_b64[:8]


@pytest.mark.parametrize("role", ["initiator", "responder"])
@pytest.mark.parametrize("with_psk", [False, True], ids=["no-psk", "psk"])
def test_tshark_decrypts_wire_capture_with_our_keylog(tmp_path, role, with_psk):
    require_tools("wireguard-go", "wg", "tshark", "ping")
    ours, theirs = Keys(), Keys()
    shared = psk() if with_psk else None
    keylog = tmp_path / "wgscope.keys"
    wire = tmp_path / "wire.pcapng"
    own = tmp_path / "own.pcapng"  # wgscope's --capture of the same traffic
    with namespaces("kla", "klb") as (a, b):
        va, _vb = veth(a, f"{A_UNDER}/24", b, f"{B_UNDER}/24")
        wg_if, scope_if = unique("klg"), unique("kls")
        start_wireguard_go(b, wg_if, theirs, tmp_path, listen_port=PORT, address=[f"{B_TUN}/24"])
        wg_peer(b, wg_if, ours.public_b64, allowed=[f"{A_TUN}/32"], endpoint=f"{A_UNDER}:{PORT}", psk_text=shared,
                tmp=tmp_path)
        config = wgscope_config(tmp_path / f"{scope_if}.conf", ours, listen_port=PORT, addresses=[f"{A_TUN}/24"],
                                peers=[{"public_key": theirs.public_b64, "allowed_ips": [f"{B_TUN}/32"],
                                        "endpoint": f"{B_UNDER}:{PORT}", "psk": shared}])
        node = start_wgscope(a, tmp_path, scope_if, config, "--keylog", str(keylog), "--events", "-",
                             "--events-level", "trace", "--capture", str(own))
        assert "holds session secrets" in node.output()  # the startup warning
        cap = WireCapture(a, va, wire, tmp_path)
        try:
            src, dst = (a, B_TUN) if role == "initiator" else (b, A_TUN)
            r = src.run(f"ping -c 3 -i 0.2 -W 2 -w 10 {dst}", check=False, timeout=20)
            assert r.returncode == 0, f"ping failed:\n{r.stdout}{r.stderr}\n{node.output()}"
        finally:
            cap.stop()
            node.terminate()

    check_keylog_and_log(keylog, node.output(), role, ours, theirs, shared)
    check_tshark_decrypts(wire, keylog)
    check_replay_agrees(wire, keylog, node.output())
    check_own_capture(own, role, theirs)

    if role == "initiator" and with_psk:  # and once through pyshark
        replies = read_packets(wire, display_filter="icmp.type == 0",
                               override_prefs={"wg.keylog_file": str(keylog)})
        assert len(replies) >= 3
        assert all(p.get_multiple_layers("ip")[1].src == B_TUN for p in replies)
