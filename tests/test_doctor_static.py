"""`wgscope doctor CONFIG`: each static check against a config file with exactly that mistake.

Fixtures: tests/configs/doctor/*.conf (keys are throwaway, generated for these files).
What wg itself does with duplicate peers and equal prefixes was measured with `wg setconf` on
wireguard-go: the later [Peer] section replaces the earlier one's AllowedIPs, and a prefix
listed by two peers ends up with the later peer (test_wg_gives_equal_prefix_to_later_peer).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from conftest import require_tools
from netns import namespaces, unique, veth, wait_for
from wgscope.cli import main

CONFIGS = pathlib.Path(__file__).parent / "configs" / "doctor"
WGSCOPE = [sys.executable, "-m", "wgscope.cli"]


def doctor(capsys, *args) -> tuple[int, dict]:
    rc = main(["doctor", "--json", *map(str, args)])
    return rc, json.loads(capsys.readouterr().out)


def problems(doc: dict) -> set[str]:
    return {f["code"] for f in doc["findings"] if f["severity"] in ("warning", "error")}


@pytest.mark.parametrize("name, code", [
    ("malformed_key", "malformed_key"),
    ("own_key", "peer_key_is_own_key"),
    ("zero_key", "zero_public_key"),
    ("duplicate_peer", "duplicate_peer"),
    ("overlapping_allowed_ips", "overlapping_allowed_ips"),
    ("endpoint_in_allowed_ips", "endpoint_in_allowed_ips"),
    ("mtu_too_large", "mtu_too_large"),
    ("endpoint_unresolved", "endpoint_unresolved"),
    ("parse_error", "config_parse_error"),
])
def test_each_mistake_is_found_alone(capsys, name, code):
    rc, doc = doctor(capsys, CONFIGS / f"{name}.conf")
    assert problems(doc) == {code}, doc["findings"]
    assert rc == 3 and doc["status"] == "problem"
    first = next(f for f in doc["findings"] if f["code"] == code)
    assert first["explanation"] and first["fix"]
    assert doc["verdict"].startswith("problem: ")


def test_healthy_config_says_healthy(capsys):
    rc, doc = doctor(capsys, CONFIGS / "healthy.conf")
    assert rc == 0 and doc["status"] == "healthy" and problems(doc) == set()
    assert doc["verdict"].startswith("healthy")


def test_psk_on_some_peers_is_a_hint_not_an_error(capsys):
    rc, doc = doctor(capsys, CONFIGS / "psk_partial.conf")
    assert rc == 0 and problems(doc) == set()
    hint = next(f for f in doc["findings"] if f["code"] == "psk_partial")
    assert "beta" in hint["evidence"][0] and "--probe" in hint["explanation"]


def test_overlap_says_which_peer_wins(capsys):
    _, doc = doctor(capsys, CONFIGS / "overlapping_allowed_ips.conf")
    f = next(f for f in doc["findings"] if f["code"] == "overlapping_allowed_ips")
    assert "(beta)" in f["explanation"].split("gets")[0]  # the later [Peer] takes the prefix


def test_text_output_puts_the_verdict_first(capsys):
    rc = main(["doctor", str(CONFIGS / "own_key.conf")])
    out = capsys.readouterr().out
    assert rc == 3
    first = out.splitlines()[0]
    assert "problem" in first and "own public key" in first
    assert "fix:" in out and "Traceback" not in out


def test_missing_file_is_one_line(capsys):
    rc, doc = doctor(capsys, CONFIGS / "no-such.conf")
    assert rc == 3 and problems(doc) == {"config_unreadable"}


def test_peer_filter(capsys):
    rc = main(["doctor", str(CONFIGS / "healthy.conf"), "--peer", "nobody"])
    assert rc == 1 and "no [Peer]" in capsys.readouterr().err
    rc, doc = doctor(capsys, CONFIGS / "own_key.conf", "--peer", "alpha")
    assert rc == 0 and problems(doc) == set()


@pytest.mark.root
def test_ipv6_underlay_needs_80_bytes(tmp_path):
    """MTU 1440 fits a 1500-byte IPv4 path (1440 + 60) but not IPv6 (1440 + 80), looked up per route."""
    text = (CONFIGS / "healthy.conf").read_text()
    v6 = text.replace("198.51.100.2:51820", "[2001:db8:9::2]:51820").replace("Address = 10.20.0.1/24",
                                                                             "Address = 10.20.0.1/24\nMTU = 1440")
    v4 = text.replace("Address = 10.20.0.1/24", "Address = 10.20.0.1/24\nMTU = 1440")
    (tmp_path / "v6.conf").write_text(v6)
    (tmp_path / "v4.conf").write_text(v4)
    with namespaces("dm", "dn") as (a, b):
        veth(a, "2001:db8:9::1/64", b, "2001:db8:9::2/64", mtu=1500)
        a.run("ip addr add 198.51.100.1/24 dev lo")  # a route for the IPv4 endpoints (lo: MTU 65536)
        a.run("ip link set lo mtu 1500")
        out6 = json.loads(a.run(f"{' '.join(WGSCOPE)} doctor --json {tmp_path / 'v6.conf'}", check=False).stdout)
        out4 = json.loads(a.run(f"{' '.join(WGSCOPE)} doctor --json {tmp_path / 'v4.conf'}", check=False).stdout)
    mtu6 = [f for f in out6["findings"] if f["code"] == "mtu_too_large"]
    assert len(mtu6) == 1 and "2001:db8:9::2" in mtu6[0]["title"] and "at most 1420" in mtu6[0]["title"]
    assert any("1500" in e for e in mtu6[0]["evidence"])
    assert problems(out4) == set()


@pytest.mark.root
def test_wg_gives_equal_prefix_to_later_peer(tmp_path):
    """The behaviour the overlap and duplicate explanations describe, checked against real wg."""
    require_tools("wg", "wireguard-go")
    cfg = tmp_path / "dup.conf"
    text = (CONFIGS / "overlapping_allowed_ips.conf").read_text()
    setconf = "\n".join(line for line in text.splitlines() if not line.startswith("Address"))
    cfg.write_text(setconf)
    later = [line.split("= ", 1)[1] for line in setconf.splitlines() if line.startswith("PublicKey")][1]
    with namespaces("dw") as (n,):
        ifname = unique("dwg")
        n.popen(["wireguard-go", "-f", ifname], env={"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: n.run(f"ip link show {ifname}", check=False).returncode == 0, 5, what="wireguard-go")
        n.run(f"wg setconf {ifname} {cfg}")
        shown = n.run(f"wg show {ifname} allowed-ips").stdout
    owners = {line.split("\t")[1].strip(): line.split("\t")[0] for line in shown.splitlines() if "\t" in line}
    assert owners.get("10.20.0.0/28") == later


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "1e308"])
def test_probe_timeout_must_be_a_sane_number_of_seconds(capsys, timeout):
    """Refused before any probe: nan passes a `<= 0` test, and select() cannot wait 1e308 s."""
    rc = main(["doctor", str(CONFIGS / "healthy.conf"), "--probe", "--timeout", timeout])
    assert rc == 1 and "--timeout must be seconds above 0 and at most 3600" in capsys.readouterr().err
