"""Secrets at the edges of a live node.

- The files a live `wgscope up` makes are private even under `umask 000`: key log and capture
  0600, UAPI socket 0600, control socket 0600 in a 0700 directory.
- A configuration with a malformed key fails with one line that does not echo the key
  (foreground and --daemon), never a traceback.
- Malformed key lines sent to the UAPI socket are refused without the key reaching the log.

Covered elsewhere and not repeated: no key material in events/logs/snapshots in the lab and
the live node's output (tests/test_no_secrets.py), the UAPI socket refusing non-root clients
(tests/test_uapi_wg.py::test_non_root_clients_are_refused), sink file modes in isolation
(tests/test_sinks_keylog.py, tests/test_sinks_capture.py), config error texts
(tests/test_config.py).
"""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess

import pytest
from live_faults_helpers import live_pair
from livenet import WGSCOPE, Keys, WgscopeProcess, ping, wgscope_config
from netns import namespaces, unique, wait_for

from wgscope.runtime.uapi_socket import socket_path
from wgscope.sinks.control import control_path

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def fragments(text: str, width: int = 10) -> set[str]:
    return {text[i:i + width] for i in range(len(text) - width + 1)}


def leaked(secret: str, output: str) -> list[str]:
    return [f for f in fragments(secret) if f in output]


def test_live_files_are_private_under_a_permissive_umask(tmp_path):
    tmp_path.chmod(0o755)
    keylog, capture, events = tmp_path / "keys.log", tmp_path / "cap.pcapng", tmp_path / "events.jsonl"
    with live_pair(tmp_path, prefix="wss") as p:
        log = tmp_path / "node.log"
        out = open(log, "wb")
        cmd = (f"umask 000; exec {WGSCOPE} up {p.conf} --ifname {p.ifa} --keylog {keylog} --capture {capture} "
               f"--events {events} --events-format json --events-level debug")
        proc = p.a.popen(["sh", "-c", cmd], stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: f"interface {p.ifa} up" in log.read_text() or proc.poll() is not None, 15, what="up")
        assert proc.poll() is None, log.read_text()
        try:
            ping(p.a, "10.9.0.2")  # a handshake: the key log gets a block
            wait_for(lambda: keylog.exists() and keylog.stat().st_size > 0, 5, what="key log")
            assert mode(keylog) == 0o600 and mode(capture) == 0o600
            assert mode(socket_path(p.ifa)) == 0o600
            ctl = control_path(p.ifa)
            assert mode(ctl) == 0o600 and mode(ctl.parent) == 0o700
            assert p.keys_a.private_b64 in keylog.read_text()  # the positive control: keys went there
            for text in (events.read_text(), log.read_text()):
                assert not leaked(p.keys_a.private_b64, text) and p.keys_a.private.hex() not in text
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(10)
            out.close()


def _mangles(key_b64: str) -> dict[str, str]:
    raw = base64.b64decode(key_b64)
    return {
        "short": key_b64[:-2],
        "bad_character": key_b64[:20] + "!" + key_b64[21:],
        "33_bytes": base64.b64encode(raw + b"\x01").decode(),
        "trailing": key_b64 + "AAAA",
    }


@pytest.mark.parametrize("field", ["PrivateKey", "PresharedKey"])
@pytest.mark.parametrize("how", ["short", "bad_character", "33_bytes", "trailing"])
@pytest.mark.parametrize("daemon", [False, True], ids=["foreground", "daemon"])
def test_bad_key_in_config_fails_with_one_line_that_does_not_echo_it(tmp_path, field, how, daemon):
    me, peer = Keys(), Keys()
    secret = Keys().private_b64
    ifname = unique("wsk")
    conf = wgscope_config(tmp_path / f"{ifname}.conf", me, listen_port=None, addresses=["10.9.9.1/24"],
                          peers=[dict(public_key=peer.public_b64, allowed_ips=["10.9.9.2/32"], psk=secret)])
    text = conf.read_text()
    target = me.private_b64 if field == "PrivateKey" else secret
    bad = _mangles(target)[how]
    conf.write_text(text.replace(f"{field} = {target}", f"{field} = {bad}"))
    with namespaces("K") as (ns,):
        r = ns.run(f"{WGSCOPE} up {conf} --ifname {ifname}" + (" --daemon" if daemon else ""), check=False)
        assert ns.run(f"ip link show {ifname}", check=False).returncode != 0
    output = r.stdout + r.stderr
    assert r.returncode == 1, output
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in output, output
    assert field in r.stderr or "key" in r.stderr.lower(), r.stderr  # it says what is wrong ...
    for s in (target, bad, me.private_b64, secret):
        assert not leaked(s, output), f"{field} ({how}) echoed: {r.stderr!r}"  # ... not what it was


def test_malformed_key_lines_over_uapi_never_reach_the_log(tmp_path):
    events = tmp_path / "events.jsonl"
    secret = os.urandom(32).hex()
    with live_pair(tmp_path, prefix="wsu") as p:
        node = WgscopeProcess(p.a, [str(p.conf), "--ifname", p.ifa, "--events", str(events), "--events-format",
                                    "json", "--events-level", "debug"], tmp_path / "node.log")
        node.wait_ready(p.ifa)
        try:
            requests = [
                f"set=1\nprivate_key={secret[:-1]}\n\n",           # 63 hex digits
                f"set=1\nprivate_key={secret}0\n\n",               # 65
                f"set=1\nprivate_key={secret[:30]}zz{secret[32:]}\n\n",
                f"set=1\nprivate_key {secret}\n\n",                # no '='
                f"set=1\nprivate_key:{secret}\n\n",
                f"private_key={secret}\n\n",                     # no set=1: unknown operation
                f"set=1\npublic_key={os.urandom(32).hex()}\npreshared_key={secret[:-2]}\n\n",
                f"set=1\npublic_key={os.urandom(32).hex()}\npreshared_key\t{secret}\n\n",
            ]
            for req in requests:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(5)
                    s.connect(socket_path(p.ifa))
                    s.sendall(req.encode())
                    answer = s.recv(100).decode()
                assert answer.startswith("errno=-") and answer != "errno=-0\n\n", (req, answer)
            ping(p.a, "10.9.0.2")  # still serving, with its own key
            wait_for(lambda: '"uapi_' in events.read_text(), 5, what="uapi events")
        finally:
            assert node.terminate() == 0
        text = events.read_text() + node.output()
        lines = [ln for ln in text.splitlines() if leaked(secret, ln)]
        assert not lines, f"a key from a malformed UAPI line reached the log: {lines}"
