"""Helpers for the live-node tests: wgscope and wireguard-go as real processes in namespaces.

Every process is started through Namespace.popen, so namespaces() terminates it (SIGTERM,
then SIGKILL) when the test ends, pass or fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from netns import Namespace, unique, wait_for
from wgscope.keytext import encode
from wgscope.protocol.crypto import public_key
from wgscope.protocol.entropy import generate_private_key

ROOT = Path(__file__).resolve().parent.parent
WGSCOPE = str(ROOT / ".venv" / "bin" / "wgscope")
PYTHON = sys.executable


class Keys:
    def __init__(self) -> None:
        self.private = generate_private_key()
        self.public = public_key(self.private)
        self.private_b64 = encode(self.private)
        self.public_b64 = encode(self.public)


def psk() -> str:
    return encode(os.urandom(32))


def write_private(path: Path, keys: Keys) -> Path:
    path.write_text(keys.private_b64 + "\n")
    path.chmod(0o600)
    return path


def wgscope_config(path: Path, keys: Keys, *, listen_port: int | None, addresses: list[str],
                   peers: list[dict], mtu: int | None = None) -> Path:
    lines = ["[Interface]", f"PrivateKey = {keys.private_b64}"]
    if listen_port is not None:
        lines.append(f"ListenPort = {listen_port}")
    if addresses:
        lines.append(f"Address = {', '.join(addresses)}")
    if mtu:
        lines.append(f"MTU = {mtu}")
    for p in peers:
        lines += ["", "[Peer]", f"PublicKey = {p['public_key']}", f"AllowedIPs = {', '.join(p['allowed_ips'])}"]
        if p.get("name"):
            lines.append(f"# Name = {p['name']}")
        if p.get("endpoint"):
            lines.append(f"Endpoint = {p['endpoint']}")
        if p.get("psk"):
            lines.append(f"PresharedKey = {p['psk']}")
        if p.get("keepalive"):
            lines.append(f"PersistentKeepalive = {p['keepalive']}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


class WgscopeProcess:
    def __init__(self, ns: Namespace, args: list[str], log: Path, env: dict | None = None) -> None:
        self.ns = ns
        self.log = log
        self._out = open(log, "wb")
        self.proc = ns.popen([WGSCOPE, "up", *args], env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, ifname: str, timeout: float = 15) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"wgscope exited {self.proc.returncode}:\n{self.output()}")
            return f"interface {ifname} up" in self.output()
        wait_for(ready, timeout, what=f"wgscope {ifname} to start")

    def terminate(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
        rc = self.proc.wait(timeout)
        self._out.close()
        return rc


def start_wgscope(ns: Namespace, tmp: Path, ifname: str, config: Path | None = None, *extra: str,
                  env: dict | None = None) -> WgscopeProcess:
    args = ([str(config)] if config else []) + ["--ifname", ifname, *extra]
    node = WgscopeProcess(ns, args, tmp / f"{ifname}.log", env=env)
    node.wait_ready(ifname)
    return node


def start_wireguard_go(ns: Namespace, ifname: str, keys: Keys, tmp: Path, *, listen_port: int,
                       address: list[str] = ()) -> subprocess.Popen:
    """wireguard-go in the foreground, configured with `wg set`."""
    proc = ns.popen(["wireguard-go", ifname], env={"WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": os.environ.get("WGGO_LOG", "error")},
                    stdout=open(tmp / f"{ifname}.wggo.log", "wb"), stderr=subprocess.STDOUT)
    wait_for(lambda: Path(f"/var/run/wireguard/{ifname}.sock").exists(), 10, what=f"{ifname}.sock")
    key = write_private(tmp / f"{ifname}.key", keys)
    ns.run(f"wg set {ifname} private-key {key} listen-port {listen_port}")
    for addr in address:
        ns.run(f"ip addr add {addr} dev {ifname}" + (" nodad" if ":" in addr else ""))
    ns.run(f"ip link set {ifname} up")
    return proc


def wg_peer(ns: Namespace, ifname: str, peer_pub: str, *, allowed: list[str], endpoint: str | None = None,
            psk_text: str | None = None, keepalive: int | None = None, tmp: Path | None = None) -> None:
    cmd = f"wg set {ifname} peer {peer_pub} allowed-ips {','.join(allowed)}"
    if endpoint:
        cmd += f" endpoint {endpoint}"
    if keepalive is not None:
        cmd += f" persistent-keepalive {keepalive}"
    if psk_text:
        f = tmp / unique("psk")
        f.write_text(psk_text + "\n")
        f.chmod(0o600)
        cmd += f" preshared-key {f}"
    ns.run(cmd)


def ping(ns: Namespace, dst: str, count: int = 3, timeout: float = 10) -> None:
    """Ping until `count` replies arrive (the first may be lost to the handshake)."""
    six = "-6 " if ":" in dst else ""
    r = ns.run(f"ping {six}-c {count} -i 0.2 -W 2 -w {int(timeout)} {dst}", check=False, timeout=timeout + 5)
    assert r.returncode == 0, f"ping {dst} from {ns.name} failed:\n{r.stdout}{r.stderr}"


def wg_dump(ns: Namespace, ifname: str) -> list[list[str]]:
    """`wg show IF dump` peer lines: pub, psk, endpoint, allowed, handshake, rx, tx, keepalive."""
    out = ns.run(f"wg show {ifname} dump").stdout.strip().splitlines()
    return [line.split("\t") for line in out[1:]]


TCP_SERVER = r"""
import hashlib, socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print('listening', flush=True)
s.settimeout(20)
c, _ = s.accept(); c.settimeout(float(sys.argv[3]))
h = hashlib.sha256(); n = 0
while True:
    d = c.recv(65536)
    if not d: break
    h.update(d); n += len(d)
print(n, h.hexdigest(), flush=True)
"""

TCP_CLIENT = r"""
import hashlib, os, socket, sys, time
data = os.urandom(int(sys.argv[3]))
for _ in range(50):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4])); break
    except OSError:
        time.sleep(0.1)
if len(sys.argv) > 5:  # pace: sleep between chunks so a mid-flow event (roaming, rekey) can happen
    pause = float(sys.argv[5])
    for i in range(0, len(data), 65536):
        c.sendall(data[i:i + 65536]); time.sleep(pause)
else:
    c.sendall(data)
c.close()
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
"""


def tcp_transfer(server_ns: Namespace, client_ns: Namespace, server_ip: str, size: int = 4 << 20,
                 port: int = 5201, pace: float | None = None, during=None, timeout: float = 40,
                 stall: float = 12) -> str:
    """Send `size` random bytes over TCP through the tunnel; the sha256 on both ends must match.
    `stall`: how long either end may wait for progress (a lossy path backs TCP off for long)."""
    server = server_ns.popen([PYTHON, "-c", TCP_SERVER, server_ip, str(port), str(stall + 3)],
                             stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "listening"
    args = [PYTHON, "-c", TCP_CLIENT, server_ip, str(port), str(size), str(stall)] + ([str(pace)] if pace else [])
    client = client_ns.popen(args, stdout=subprocess.PIPE, text=True)
    if during is not None:
        during()
    sent, _ = client.communicate(timeout=timeout)
    got, _ = server.communicate(timeout=timeout)
    assert client.returncode == 0 and sent.strip(), f"client failed: {sent!r}"
    assert got.strip() == sent.strip(), f"transfer differs: sent {sent.strip()} received {got.strip()}"
    return got.strip()
