"""wg-quick files loaded from disk, and Endpoint host names resolved as wg resolves them."""

import os
import socket

import pytest

from config_texts import FULL, IFACE, PRIV
from wgscope import config as wgconfig
from wgscope.config import ConfigError, EndpointError, load, resolve_address, resolve_endpoint


# ---------------------------------------------------------------- files


def test_load_file(tmp_path):
    p = tmp_path / "wg0.conf"
    p.write_text(FULL)
    p.chmod(0o600)
    cfg = load(p)
    assert cfg.path == str(p) and len(cfg.peers) == 3 and cfg.warnings == []
    cfg = load(str(p))
    assert cfg.interface.private_key == PRIV


def test_load_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load("wg0.conf")
    assert str(info.value) == "wg0.conf: cannot read: No such file or directory"
    assert info.value.line is None


def test_load_directory(tmp_path):
    with pytest.raises(ConfigError, match="cannot read: Is a directory"):
        load(tmp_path)


def test_load_not_utf8(tmp_path):
    p = tmp_path / "bad.conf"
    p.write_bytes(b"[Interface]\nListenPort = 1\n# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load(p)
    assert str(info.value) == f"{p}:3: cannot read: not UTF-8 text"


def test_load_error_carries_file_name(tmp_path):
    p = tmp_path / "wg9.conf"
    p.write_text("[Interface]\nListenPort = 99999\n")
    with pytest.raises(ConfigError) as info:
        load(p)
    assert str(info.value) == f"{p}:2: ListenPort: must be a port 0..65535, got 99999"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_world_readable_file_with_private_key_warns(tmp_path):
    p = tmp_path / "wg0.conf"
    p.write_text(IFACE)
    p.chmod(0o644)
    assert any("accessible to other users" in w for w in load(p).warnings)
    p.chmod(0o600)
    assert not any("accessible to other users" in w for w in load(p).warnings)


# ---------------------------------------------------------------- resolving endpoints


def fake_getaddrinfo(results):
    def getaddrinfo(host, port, *args, **kw):
        if isinstance(results, Exception):
            raise results
        return [(fam, socket.SOCK_DGRAM, 17, "", (addr, port) if fam == socket.AF_INET else (addr, port, 0, 0))
                for fam, addr in results]
    return getaddrinfo


def test_resolve_prefers_ipv4(monkeypatch):
    monkeypatch.setattr(wgconfig.socket, "getaddrinfo",
                        fake_getaddrinfo([(socket.AF_INET6, "2001:db8::1"), (socket.AF_INET, "192.0.2.1")]))
    assert resolve_endpoint("vpn.example.com", 51820) == ("192.0.2.1", 51820)


def test_resolve_uses_ipv6_when_only_ipv6(monkeypatch):
    monkeypatch.setattr(wgconfig.socket, "getaddrinfo", fake_getaddrinfo([(socket.AF_INET6, "2001:db8::1")]))
    assert resolve_endpoint("v6.example.com", 1) == ("2001:db8::1", 1)


def test_resolve_failure(monkeypatch):
    monkeypatch.setattr(wgconfig.socket, "getaddrinfo",
                        fake_getaddrinfo(socket.gaierror(socket.EAI_NONAME, "Name or service not known")))
    with pytest.raises(EndpointError) as info:
        resolve_endpoint("nope.invalid", 51820)
    assert str(info.value) == "Endpoint: cannot resolve nope.invalid:51820: Name or service not known"
    assert (info.value.host, info.value.port) == ("nope.invalid", 51820)
    with pytest.raises(EndpointError) as info:
        resolve_endpoint("nope.invalid", 51820, path="wg0.conf", line=14)
    assert str(info.value) == "wg0.conf:14: Endpoint: cannot resolve nope.invalid:51820: Name or service not known"
    assert isinstance(info.value, ConfigError)


def test_resolve_literals_without_dns():
    assert resolve_endpoint("192.0.2.9", 7) == ("192.0.2.9", 7)
    assert resolve_endpoint("2001:db8::9", 7) == ("2001:db8::9", 7)


def test_resolve_address_gives_the_family_and_a_connectable_address(monkeypatch):
    """doctor's probe connects a socket to the endpoint `up` would use: same choice, with the family
    and the IPv6 scope id a link-local address needs."""
    assert resolve_address("192.0.2.9", 7) == (socket.AF_INET, ("192.0.2.9", 7))
    assert resolve_address("fe80::1%lo", 7) == (socket.AF_INET6, ("fe80::1", 7, 0, socket.if_nametoindex("lo")))
    monkeypatch.setattr(wgconfig.socket, "getaddrinfo",
                        fake_getaddrinfo([(socket.AF_INET6, "2001:db8::1"), (socket.AF_INET, "192.0.2.1")]))
    assert resolve_address("vpn.example.com", 51820) == (socket.AF_INET, ("192.0.2.1", 51820))
