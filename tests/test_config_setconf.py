"""The setconf emitter: wg-quick keys dropped, and parse(to_setconf_text(cfg)) gives cfg back."""

import ipaddress
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config_texts import FULL, K, PUB_A, error_of
from wgscope.config import (
    ConfigError, InterfaceConfig, PeerConfig, WireGuardConfig, parse, parse_setconf, to_setconf_text,
)


# ---------------------------------------------------------------- setconf


def test_to_setconf_text_drops_wg_quick_keys():
    text = to_setconf_text(parse(FULL))
    for word in ("Address", "MTU", "DNS"):
        assert word not in text
    assert text == f"""\
[Interface]
PrivateKey = {K['PRIV']}
ListenPort = 51820
FwMark = 4660

# Name = laptop
[Peer]
PublicKey = {K['A']}
PresharedKey = {K['PSK']}
AllowedIPs = 10.0.0.2/32, fd00::2/128, 10.9.0.0/16
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = 25

# Name = phone
[Peer]
PublicKey = {K['B']}
AllowedIPs = 10.0.0.3/32
Endpoint = vpn.example.com:4500

[Peer]
PublicKey = {K['C']}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = 192.0.2.7:51820
"""


def strip_wg_quick(cfg: WireGuardConfig) -> WireGuardConfig:
    ic = cfg.interface
    return replace(cfg, interface=InterfaceConfig(private_key=ic.private_key, listen_port=ic.listen_port,
                                                  fwmark=ic.fwmark))


def comparable(cfg: WireGuardConfig):
    return cfg.interface, [replace(p, line=0) for p in cfg.peers]


def test_setconf_roundtrip_of_full_config():
    cfg = parse(FULL)
    again = parse_setconf(to_setconf_text(cfg))
    assert comparable(again) == comparable(strip_wg_quick(cfg))


@pytest.mark.parametrize("line", ["Address = 10.0.0.1/24", "MTU = 1420", "DNS = 1.1.1.1", "Table = off",
                                  "PreUp = true", "PostUp = true", "PreDown = true", "PostDown = true",
                                  "SaveConfig = false"])
def test_setconf_rejects_wg_quick_keys(line):
    key = line.split(" ")[0]
    err = error_of(f"[Interface]\n{line}\n", setconf=True)
    assert str(err) == f"wg0.conf:2: {key}: a wg-quick key, which `wg setconf` does not accept"
    with pytest.raises(ConfigError):
        parse_setconf(f"[Interface]\n{line}\n")
    parse(f"[Interface]\n{line}\n")  # fine for wg-quick


def test_setconf_accepts_its_own_keys():
    cfg = parse_setconf(f"[Interface]\nPrivateKey = {K['PRIV']}\nListenPort = 1\nFwMark = 0\n"
                        f"[Peer]\nPublicKey = {K['A']}\nAllowedIPs = 10.0.0.0/8\n")
    assert cfg.interface.fwmark == 0 and cfg.peers[0].public_key == PUB_A


# property test: parse(to_setconf_text(cfg)) reproduces cfg

keys_st = st.binary(min_size=32, max_size=32)
v4_net = st.builds(lambda a, p: ipaddress.IPv4Network((a, p), strict=False),
                   st.integers(0, 2**32 - 1), st.integers(0, 32))
v6_net = st.builds(lambda a, p: ipaddress.IPv6Network((a, p), strict=False),
                   st.integers(0, 2**128 - 1), st.integers(0, 128))
hostname = st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z][a-z0-9-]{0,15}){0,3}", fullmatch=True)
host = st.one_of(
    hostname,
    st.integers(0, 2**32 - 1).map(lambda a: str(ipaddress.IPv4Address(a))),
    st.integers(0, 2**128 - 1).map(lambda a: str(ipaddress.IPv6Address(a))),
)
name = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=20) \
    .map(str.strip).filter(bool)


@st.composite
def peer_st(draw):
    nets = draw(st.lists(st.one_of(v4_net, v6_net), max_size=5, unique=True))
    return PeerConfig(
        public_key=draw(keys_st),
        preshared_key=draw(st.none() | keys_st),
        allowed_ips=nets,
        endpoint=draw(st.none() | st.tuples(host, st.integers(1, 65535))),
        persistent_keepalive=draw(st.integers(0, 65535)),
        name=draw(st.none() | name),
    )


@st.composite
def config_st(draw):
    peers = draw(st.lists(peer_st(), max_size=5, unique_by=lambda p: p.public_key))
    ic = InterfaceConfig(
        private_key=draw(st.none() | keys_st),
        listen_port=draw(st.none() | st.integers(0, 65535)),
        fwmark=draw(st.none() | st.integers(0, 2**32 - 1)),
    )
    return WireGuardConfig(path="gen.conf", interface=ic, peers=peers, warnings=[])


@settings(max_examples=200, deadline=None)
@given(config_st())
def test_setconf_text_roundtrips(cfg):
    text = to_setconf_text(cfg)
    for parser in (parse, parse_setconf):
        again = parser(text)
        assert comparable(again) == comparable(cfg)
