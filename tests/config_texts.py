"""Shared by the config tests: deterministic keys, their text, and a full wg-quick file using them."""

import pytest

from wgscope.config import ConfigError, parse
from wgscope.keytext import encode


def key(n: int) -> bytes:
    """A deterministic, valid-looking 32-byte key."""
    return bytes([n]) * 31 + bytes([n ^ 0x5A])


PRIV = key(1)
PUB_A, PUB_B, PUB_C = key(2), key(3), key(4)
PSK = key(5)
K = {name: encode(v) for name, v in dict(PRIV=PRIV, A=PUB_A, B=PUB_B, C=PUB_C, PSK=PSK).items()}
ALL_KEY_TEXTS = list(K.values())

FULL = f"""\
# wg0 on the office router
[Interface]
PrivateKey = {K['PRIV']}
ListenPort = 51820
FwMark = 0x1234
Address = 10.0.0.1/24, fd00::1/64
Address = 192.168.7.1/32
MTU = 1420

# Name = laptop
[Peer]
PublicKey = {K['A']}
PresharedKey = {K['PSK']}
AllowedIPs = 10.0.0.2/32, fd00::2/128 # the laptop
AllowedIPs = 10.9.0.0/16
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = 25

[Peer]
#Name: phone
PublicKey = {K['B']}
AllowedIPs = 10.0.0.3/32
Endpoint = vpn.example.com:4500
PersistentKeepalive = off

[Peer]
PublicKey = {K['C']}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = 192.0.2.7:51820
"""


IFACE = f"[Interface]\nPrivateKey = {K['PRIV']}\n"


def error_of(text: str, path: str = "wg0.conf", **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, path, **kw)
    err = info.value
    assert "\n" not in str(err)
    for k in ALL_KEY_TEXTS:
        assert k not in str(err) and k[:20] not in str(err)
    return err
