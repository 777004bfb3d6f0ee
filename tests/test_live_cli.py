"""`wgscope up` / `down` as a user meets them: one-line errors, daemon mode, clean teardown."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from livenet import WGSCOPE, Keys, start_wgscope, wgscope_config
from netns import namespaces, unique, wait_for

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, netns: str | None = None, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    argv = (["ip", "netns", "exec", netns] if netns else []) + [WGSCOPE, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.mark.root
def test_without_net_admin_one_line(tmp_path):
    """Dropping to nobody: the explanation, not a traceback."""
    tmp_path.chmod(0o755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", WGSCOPE, "up",
                        "--ifname", unique("wsn")], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    line = one_line_error(r)
    assert "root or CAP_NET_ADMIN" in line


def test_config_error_names_file_and_line(tmp_path):
    conf = tmp_path / "wg9.conf"
    conf.write_text("[Interface]\nPrivateKey = not-a-key\n")
    line = one_line_error(run("up", str(conf)))
    assert "wg9.conf" in line and ":2" in line


def test_down_unknown_interface():
    line = one_line_error(run("down", "wgsnothere0"))
    assert "no wgscope node is serving wgsnothere0" in line


@pytest.mark.parametrize("name", ["../../etc/x", "a/b", ""])
def test_down_takes_an_interface_name_not_a_path(name):
    """`down` reads /run/wgscope/NAME.pid: a NAME that is a path is refused as `up` refuses it."""
    line = one_line_error(run("down", name))
    assert f"invalid interface name {name!r}" in line


@pytest.mark.root
def test_empty_ifname_is_refused_not_ignored(tmp_path):
    """--ifname '' is an invalid name, not "no --ifname" (which would take the file's name)."""
    conf = tmp_path / "wg9.conf"
    conf.write_text(f"[Interface]\nPrivateKey = {Keys().private_b64}\n")
    conf.chmod(0o600)
    with namespaces("E") as (ns,):
        line = one_line_error(run("up", "--ifname", "", str(conf), netns=ns.name, timeout=10))
    assert "invalid interface name ''" in line


@pytest.mark.root
def test_daemon_bare_interface_wg_and_down():
    """--daemon returns once TUN and UAPI socket are ready; wg configures it; down removes it."""
    with namespaces("D") as (ns,):
        name = unique("wsd")
        r = run("up", "--ifname", name, "--daemon", netns=ns.name)
        assert r.returncode == 0, r.stderr
        assert f"interface {name} up" in r.stdout and f"/var/run/wireguard/{name}.sock" in r.stdout
        try:
            ns.run(f"ip link show {name}")
            k = Keys()
            keyfile = Path(f"/tmp/{name}.key")
            keyfile.write_text(k.private_b64)
            keyfile.chmod(0o600)
            ns.run(f"wg set {name} private-key {keyfile} listen-port 0")
            keyfile.unlink()
            show = ns.run(f"wg show {name}").stdout
            assert f"public key: {k.public_b64}" in show
            port = int(ns.run(f"wg show {name} listen-port").stdout)
            assert port > 0
            assert f":{port} " in ns.run("ss -uanH").stdout  # the rebind to a kernel-chosen port
        finally:
            d = run("down", name)
        assert d.returncode == 0, d.stderr
        wait_for(lambda: ns.run(f"ip link show {name}", check=False).returncode != 0, 5, what="TUN removed")
        assert not Path(f"/var/run/wireguard/{name}.sock").exists()


@pytest.mark.root
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_removes_tun_socket_and_addresses(tmp_path, sig):
    with namespaces("S") as (ns,):
        name = unique("wss")
        conf = wgscope_config(tmp_path / f"{name}.conf", Keys(), listen_port=51820, addresses=["10.6.0.1/24"],
                              peers=[dict(public_key=Keys().public_b64, allowed_ips=["10.6.1.0/24"],
                                          endpoint="192.0.2.9:51820")])
        node = start_wgscope(ns, tmp_path, name, conf)
        assert "10.6.1.0/24 dev " + name in ns.run("ip route").stdout
        assert "mtu 1420" in ns.run(f"ip link show {name}").stdout
        os.killpg(node.proc.pid, sig)
        assert node.proc.wait(10) == 0
        assert f"interface {name} down ({sig.name})" in node.output()
        assert ns.run(f"ip link show {name}", check=False).returncode != 0
        assert not Path(f"/var/run/wireguard/{name}.sock").exists()
        assert "0.0.0.0:51820" not in ns.run("ss -uanH").stdout


@pytest.mark.root
def test_deleting_the_link_or_the_uapi_socket_stops_the_node(tmp_path):
    """As with wireguard-go: `ip link del NAME` or removing NAME.sock ends the process cleanly."""
    with namespaces("L") as (ns,):
        name = unique("wsl")
        node = start_wgscope(ns, tmp_path, name, None)
        ns.run(f"ip link del {name}")
        assert node.proc.wait(5) == 0
        assert "down (interface gone" in node.output()
        assert not Path(f"/var/run/wireguard/{name}.sock").exists()

        name = unique("wsl")
        node = start_wgscope(ns, tmp_path, name, None)
        Path(f"/var/run/wireguard/{name}.sock").unlink()
        assert node.proc.wait(5) == 0
        assert "down (UAPI socket removed)" in node.output()
        assert ns.run(f"ip link show {name}", check=False).returncode != 0
