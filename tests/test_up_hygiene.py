"""`wgscope up` and `down` around a node that runs: refusals touch nothing, leftovers of a killed
node are recovered, names are checked first, /etc/wireguard/NAME.conf is found, and the keys of
a configuration are either carried out (Table) or refused naming wg-quick, never ignored."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from livenet import WGSCOPE, Keys, wgscope_config
from netns import namespaces, unique, veth, wait_for

pytestmark = [pytest.mark.timeout(120)]
PID_DIR = Path("/run/wgscope")
SOCK_DIR = Path("/var/run/wireguard")


def run(*args: str, netns: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    argv = (["ip", "netns", "exec", netns] if netns else []) + [WGSCOPE, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def one_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def links(ns) -> str:
    return ns.run("ip -o link").stdout


@pytest.mark.root
def test_a_refused_up_leaves_the_running_node_alone():
    """A node serves NAME in one namespace; `up NAME` in another is refused before it creates
    anything, and the first node's pid file and socket stay, so `down` still finds it."""
    with namespaces("H1", "H2") as (n1, n2):
        name = unique("wsh")
        assert run("up", "--ifname", name, "--daemon", netns=n1.name).returncode == 0
        pid = (PID_DIR / f"{name}.pid").read_text()
        line = one_line(run("up", "--ifname", name, "--daemon", netns=n2.name))
        assert f"'{name}' is in use" in line and pid.strip() in line
        assert (PID_DIR / f"{name}.pid").read_text() == pid
        assert (SOCK_DIR / f"{name}.sock").exists()
        assert name not in links(n2)
        assert run("down", name).returncode == 0
        wait_for(lambda: not (SOCK_DIR / f"{name}.sock").exists(), 10, what="the socket to go")
        assert name not in links(n1) and not (PID_DIR / f"{name}.pid").exists()


@pytest.mark.root
def test_what_a_killed_node_left_is_recovered():
    """SIGKILL leaves the pid file and the UAPI socket behind: `down` says so and clears the pid
    file, and a new `up` of the same name replaces the stale socket and serves."""
    with namespaces("K") as (ns,):
        name = unique("wsk")
        assert run("up", "--ifname", name, "--daemon", netns=ns.name).returncode == 0
        pid = int((PID_DIR / f"{name}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: name not in links(ns), 10, what="the TUN to go with its last fd")
        assert (SOCK_DIR / f"{name}.sock").exists()
        r = run("up", "--ifname", name, "--daemon", netns=ns.name)
        assert r.returncode == 0, r.stderr
        assert int((PID_DIR / f"{name}.pid").read_text()) != pid
        ns.run(f"wg show {name}")
        assert run("down", name).returncode == 0
        (PID_DIR / f"{name}.pid").write_text(f"{pid}\n")  # a stale pid file alone
        assert "stale" in one_line(run("down", name))
        assert not (PID_DIR / f"{name}.pid").exists()


def run_all(argvs: list[list[str]], netns: str) -> list[subprocess.CompletedProcess]:
    """Several `wgscope` runs at once (each is mostly Python starting up)."""
    procs = [subprocess.Popen(["ip", "netns", "exec", netns, WGSCOPE, *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for argv in argvs]
    results = []
    for argv, p in zip(argvs, procs):
        out, err = p.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(argv, p.returncode, out, err))
    return results


@pytest.fixture
def refused(monkeypatch, capsys):
    """Run `wgscope up ...` in this process where building the node would fail the test: what is
    refused must be refused before anything is created. Returns the one line on stderr."""
    from wgscope import cli
    from wgscope.commands import node

    def must_not_build(*_a, **_k):
        raise AssertionError("the node was built: the refusal came too late")

    monkeypatch.setattr(node, "build_node", must_not_build)

    def up(*args: str) -> str:
        assert cli.main(["up", *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        return err[0]

    return up


@pytest.mark.parametrize("name", ["bad name", "sixteen-chars-xx", "a/b", "wg:0", ".", "wg%d"])
def test_invalid_interface_names_are_refused_before_anything_is_made(refused, name):
    assert f"invalid interface name {name!r}" in refused("--ifname", name, "--daemon")


def test_a_file_name_that_is_no_interface_name_is_refused(refused, tmp_path):
    conf = wgscope_config(tmp_path / "my wg.conf", Keys(), listen_port=None, addresses=[], peers=[])
    assert "invalid interface name 'my wg'" in refused(str(conf))


@pytest.mark.root
def test_up_name_finds_etc_wireguard(tmp_path):
    """`wgscope up NAME` reads /etc/wireguard/NAME.conf, as `wg-quick up NAME` does."""
    with namespaces("E") as (ns,):
        name = unique("wse")
        etc = Path("/etc/wireguard")
        etc.mkdir(mode=0o700, exist_ok=True)
        conf = wgscope_config(etc / f"{name}.conf", Keys(), listen_port=None, addresses=["10.5.0.1/24"], peers=[])
        try:
            r = run("up", name, "--daemon", netns=ns.name)
            assert r.returncode == 0, r.stderr
            assert "10.5.0.1/24" in ns.run(f"ip addr show {name}").stdout
            assert run("down", name).returncode == 0
        finally:
            conf.unlink()
        assert f"no {etc / name}.conf" in one_line(run("up", name))


def _peer_config(tmp: Path, name: str, allowed: str, table: str | None, extra: str = "") -> Path:
    conf = wgscope_config(tmp / f"{name}.conf", Keys(), listen_port=None, addresses=["10.5.0.1/24"],
                          peers=[dict(public_key=Keys().public_b64, allowed_ips=[allowed])])
    text = conf.read_text().replace("[Peer]", (f"Table = {table}\n" if table else "") + extra + "\n[Peer]", 1)
    conf.write_text(text)
    return conf


@pytest.mark.root
def test_table_is_honoured_and_the_mtu_chosen_as_wg_quick_does(tmp_path):
    """Table = off: no route for AllowedIPs; a number: the routes go in that table. (Unset, auto,
    the main table: every live test with a configuration file routes through it.) None of the
    files sets MTU: the route to the endpoint goes over a PPPoE-sized link (1492), so the
    interface gets 1492 - 80, as wg-quick's set_mtu_up."""
    tables = {"off": unique("wst"), "1234": unique("wst")}
    with namespaces("T", "U") as (ns, other):
        veth(ns, "192.0.2.1/24", other, "192.0.2.2/24", mtu=1492)
        confs = []
        for i, (t, name) in enumerate(tables.items()):
            conf = _peer_config(tmp_path, name, f"10.7{i}.0.0/16", t)
            conf.write_text(conf.read_text() + "Endpoint = 192.0.2.2:51820\n")
            confs.append(conf)
        for r in run_all([["up", str(c), "--daemon"] for c in confs], ns.name):
            assert r.returncode == 0, r.stderr
            assert "mtu 1412 (route to 192.0.2.2 mtu 1492 - 80)" in r.stdout, r.stdout
        main = ns.run("ip route show").stdout
        numbered = ns.run("ip route show table 1234").stdout
        assert "10.70.0.0/16" not in main + numbered  # off
        assert "10.71.0.0/16" in numbered and "10.71.0.0/16" not in main  # 1234
        assert all("mtu 1412" in ns.run(f"ip link show {name}").stdout for name in tables.values())
        for r in run_all([["down", name] for name in tables.values()], ns.name):
            assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("key, value, allowed", [
    ("PostUp", "iptables -A INPUT -j ACCEPT", "10.77.0.0/16"), ("PreDown", "true", "10.77.0.0/16"),
    ("DNS", "10.77.0.53", "10.77.0.0/16"), ("Table", "vpn", "10.77.0.0/16"), ("SaveConfig", "true", "10.77.0.0/16"),
    (None, None, "0.0.0.0/0"), (None, None, "::/0")])
def test_what_only_wg_quick_does_is_refused_naming_it(refused, tmp_path, key, value, allowed):
    """Never the opposite of what a key says: a hook, DNS, a named table, SaveConfig or a /0 with
    wg-quick's policy routing are refused in one line naming wg-quick, before anything is made."""
    conf = _peer_config(tmp_path, unique("wsq"), allowed, None, f"{key} = {value}" if key else "")
    line = refused(str(conf))
    assert "wg-quick" in line and "WG_QUICK_USERSPACE_IMPLEMENTATION=wgscope-userspace" in line
    assert (key or f"AllowedIPs {allowed}") in line


@pytest.mark.parametrize("argv, env, expected", [
    (["wg0"], {}, ["up", "--ifname", "wg0", "--daemon"]),
    (["-f", "wg0"], {}, ["up", "--ifname", "wg0", "--foreground"]),
    (["wg0"], {"WG_PROCESS_FOREGROUND": "1"}, ["up", "--ifname", "wg0", "--foreground"]),
    (["--foreground", "wg0"], {}, ["up", "--ifname", "wg0", "--foreground"]),
    (["wg0", "wg1"], {}, None), ([], {}, None), (["--verbose", "wg0"], {}, None)])
def test_wgscope_userspace_takes_wireguard_gos_arguments(argv, env, expected):
    """wireguard-go [-f/--foreground] INTERFACE-NAME, WG_PROCESS_FOREGROUND=1 (its main.go)."""
    from wgscope.commands.userspace import argv_for_up

    assert argv_for_up(argv, env) == expected
