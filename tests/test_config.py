"""wg-quick and setconf text parsed: valid files, wg-quick keys and warnings, one-line errors
that never echo key material. Files and DNS: test_config_io.py; the setconf emitter:
test_config_setconf.py."""

import ipaddress

import pytest

from config_texts import ALL_KEY_TEXTS, FULL, IFACE, K, PRIV, PSK, PUB_A, PUB_B, PUB_C, error_of
from wgscope.config import ConfigError, EndpointError, WireGuardConfig, parse
from wgscope.keytext import encode
from wgscope.protocol.crypto import public_key


# ---------------------------------------------------------------- valid configurations


def test_full_config():
    cfg = parse(FULL, "wg0.conf")
    assert isinstance(cfg, WireGuardConfig) and cfg.path == "wg0.conf"
    ic = cfg.interface
    assert ic.private_key == PRIV
    assert ic.listen_port == 51820
    assert ic.fwmark == 0x1234
    assert ic.addresses == [ipaddress.ip_interface("10.0.0.1/24"), ipaddress.ip_interface("fd00::1/64"),
                            ipaddress.ip_interface("192.168.7.1/32")]
    assert ic.mtu == 1420
    assert [p.public_key for p in cfg.peers] == [PUB_A, PUB_B, PUB_C]

    a, b, c = cfg.peers
    assert a.name == "laptop" and a.line == 11
    assert a.preshared_key == PSK
    assert a.allowed_ips == [ipaddress.ip_network(n) for n in ("10.0.0.2/32", "fd00::2/128", "10.9.0.0/16")]
    assert a.endpoint == ("2001:db8::1", 51820)
    assert a.persistent_keepalive == 25

    assert b.name == "phone" and b.line == 19
    assert b.preshared_key is None
    assert b.endpoint == ("vpn.example.com", 4500)
    assert b.persistent_keepalive == 0

    assert c.name is None and c.line == 26
    assert c.allowed_ips == [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
    assert c.endpoint == ("192.0.2.7", 51820)
    assert cfg.warnings == []
    assert c.lines["Endpoint"] == 29


def test_repr_hides_private_and_preshared_keys():
    cfg = parse(FULL)
    text = repr(cfg)
    assert K["PRIV"] not in text and K["PSK"] not in text
    assert repr(PRIV) not in text and repr(PSK) not in text


def test_minimal_interface_only():
    cfg = parse("[Interface]\nListenPort = 0\n")
    assert cfg.interface.listen_port == 0
    assert cfg.interface.private_key is None
    assert cfg.peers == []
    assert any("no PrivateKey" in w for w in cfg.warnings)


def test_whitespace_case_and_comment_variants():
    text = (
        "\ufeff  [ interface ]  # hi\r\n"
        f"\tprivatekey={K['PRIV']}\r\n"
        "LISTENPORT   =\t 51820   \r\n"
        "\r\n"
        "   # just a comment\r\n"
        "[PEER]\r\n"
        f"  Public Key  =  {K['A']}   # inline comment\r\n"
        "allowedips=10.0.0.0/24 # office\r\n"
        "AllowedIPs = 10.1.0.0/24 ,  10.2.0.0/24 ,\r\n"
        "endpoint=host-1.example.org:1\r\n"
    )
    cfg = parse(text)
    assert cfg.interface.private_key == PRIV
    assert cfg.interface.listen_port == 51820
    (p,) = cfg.peers
    assert p.public_key == PUB_A
    assert [str(n) for n in p.allowed_ips] == ["10.0.0.0/24", "10.1.0.0/24", "10.2.0.0/24"]
    assert p.endpoint == ("host-1.example.org", 1)
    assert cfg.warnings == []


def test_file_without_trailing_newline_and_empty_allowed_ips():
    cfg = parse(f"{IFACE}[Peer]\nPublicKey = {K['A']}\nAllowedIPs =")
    assert cfg.peers[0].allowed_ips == []
    assert any("no AllowedIPs" in w for w in cfg.warnings)


def test_allowed_ips_host_bits_are_masked_with_a_warning():
    cfg = parse(f"{IFACE}[Peer]\nPublicKey = {K['A']}\nAllowedIPs = 10.0.0.1/24, 10.0.0.0/24, fd00::5/64\n")
    assert [str(n) for n in cfg.peers[0].allowed_ips] == ["10.0.0.0/24", "fd00::/64"]
    assert any(w.startswith("<string>:5: AllowedIPs: 10.0.0.1/24 has host bits set") for w in cfg.warnings)


def test_address_without_prefix_is_a_host_address():
    cfg = parse("[Interface]\nAddress = 10.0.0.1, fd00::1\n")
    assert [str(a) for a in cfg.interface.addresses] == ["10.0.0.1/32", "fd00::1/128"]


def test_endpoint_forms():
    def ep(value):
        return parse(f"{IFACE}[Peer]\nPublicKey = {K['A']}\nAllowedIPs = 10.0.0.0/8\nEndpoint = {value}\n").peers[0].endpoint

    assert ep("192.0.2.1:51820") == ("192.0.2.1", 51820)
    assert ep("[2001:db8::1]:65535") == ("2001:db8::1", 65535)
    assert ep("[fe80::1%eth0]:5") == ("fe80::1%eth0", 5)
    assert ep("wg.example.com:443") == ("wg.example.com", 443)
    assert ep("localhost:1") == ("localhost", 1)


def test_name_comments():
    text = (
        f"{IFACE}\n"
        "# Name = alpha\n"
        "# some other remark\n"
        "[Peer]\n"                       # 6
        f"PublicKey = {K['A']}\n"
        "AllowedIPs = 10.0.0.1/32\n"
        "# Name = beta\n"                # directly above the next [Peer]
        "[Peer]\n"                       # 10
        f"PublicKey = {K['B']}\n"
        "AllowedIPs = 10.0.0.2/32\n"
        "\n"
        "[Peer]\n"                       # 14
        f"PublicKey = {K['C']}\n"
        "#name:   gamma delta  \n"       # inside the section
        "AllowedIPs = 10.0.0.3/32\n"
        "# Name = gamma-again\n"         # a second name for the same peer: warned, ignored
    )
    cfg = parse(text)
    assert [(p.name, p.line) for p in cfg.peers] == [("alpha", 6), ("beta", 10), ("gamma delta", 14)]
    assert any("already named 'gamma delta'" in w for w in cfg.warnings)


def test_name_comment_at_the_end_of_a_section_before_a_blank_line_stays_with_it():
    text = f"{IFACE}[Peer]\nPublicKey = {K['A']}\nAllowedIPs = 10.0.0.1/32\n# Name = a\n\n[Peer]\nPublicKey = {K['B']}\n"
    a, b = parse(text).peers
    assert (a.name, b.name) == ("a", None)


def test_name_comment_in_interface_is_not_a_peer_name():
    cfg = parse(f"[Interface]\n# Name = router\nPrivateKey = {K['PRIV']}\n[Peer]\nPublicKey = {K['A']}\nAllowedIPs = 10.0.0.0/8\n")
    assert cfg.peers[0].name is None


def test_keepalive_and_fwmark_forms():
    cfg = parse(f"[Interface]\nFwMark = off\n[Peer]\nPublicKey = {K['A']}\nAllowedIPs = 10.0.0.0/8\nPersistentKeepalive = 65535\n")
    assert cfg.interface.fwmark == 0
    assert cfg.peers[0].persistent_keepalive == 65535
    assert parse("[Interface]\nFwMark = 51820\n").interface.fwmark == 51820
    assert parse("[Interface]\nListenPort = 1\n").interface.fwmark is None


# ---------------------------------------------------------------- wg-quick keys and warnings


def test_wg_quick_keys_are_stored_and_warned_about():
    text = (
        "[Interface]\n"
        f"PrivateKey = {K['PRIV']}\n"
        "DNS = 1.1.1.1, example.internal\n"   # 3
        "DNS = 9.9.9.9\n"
        "Table = off\n"                       # 5
        "PreUp = echo pre\n"
        "PostUp = iptables -A FORWARD -i %i -j ACCEPT; echo done\n"
        "PostUp = echo second\n"
        "PreDown = echo predown\n"
        "PostDown = echo postdown\n"
        "SaveConfig = true\n"                 # 11
    )
    cfg = parse(text, "wg0.conf")
    ic = cfg.interface
    assert ic.dns == ["1.1.1.1", "example.internal", "9.9.9.9"]
    assert ic.table == "off"
    assert ic.pre_up == ["echo pre"]
    assert ic.post_up == ["iptables -A FORWARD -i %i -j ACCEPT; echo done", "echo second"]
    assert ic.pre_down == ["echo predown"] and ic.post_down == ["echo postdown"]
    assert ic.save_config is True
    assert cfg.warnings == [
        "wg0.conf:3: DNS is wg-quick's and is ignored by wgscope",
        "wg0.conf:5: Table is wg-quick's and is ignored by wgscope",
        "wg0.conf:6: PreUp is wg-quick's and is ignored by wgscope",
        "wg0.conf:7: PostUp is wg-quick's and is ignored by wgscope",
        "wg0.conf:9: PreDown is wg-quick's and is ignored by wgscope",
        "wg0.conf:10: PostDown is wg-quick's and is ignored by wgscope",
        "wg0.conf:11: SaveConfig is wg-quick's and is ignored by wgscope",
    ]


def test_small_mtu_with_ipv6_warns():
    cfg = parse(f"{IFACE}Address = fd00::1/64\nMTU = 1000\n", "wg0.conf")
    assert cfg.interface.mtu == 1000
    assert cfg.warnings == ["wg0.conf:4: MTU: 1000 is below 1280, the minimum for IPv6; IPv6 through this tunnel will not work"]
    assert parse(f"{IFACE}Address = 10.0.0.1/24\nMTU = 1000\n").warnings == []
    cfg = parse(f"{IFACE}MTU = 576\n[Peer]\nPublicKey = {K['A']}\nAllowedIPs = ::/0\n")
    assert any("MTU: 576 is below 1280" in w for w in cfg.warnings)


def test_peer_that_is_the_interface_itself_warns():
    own = encode(public_key(PRIV))
    cfg = parse(f"{IFACE}[Peer]\nPublicKey = {own}\nAllowedIPs = 10.0.0.0/8\n")
    assert cfg.warnings == ["<string>:4: PublicKey: this peer is the interface itself; wg ignores such a peer"]


def test_overlapping_allowed_ips_warn():
    text = f"{IFACE}[Peer]\nPublicKey = {K['A']}\nAllowedIPs = 10.0.0.0/24\n[Peer]\nPublicKey = {K['B']}\nAllowedIPs = 10.0.0.0/24\n"
    cfg = parse(text)
    assert cfg.warnings == ["<string>:8: AllowedIPs: 10.0.0.0/24 is also claimed by the [Peer] on line 3; "
                            "the later peer gets it, as in wg"]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("text, line, message", [
    ("[Interface]\n[Foo]\n", 2, "unknown section [Foo]; expected [Interface] or [Peer]"),
    ("[Interface\n", 1, "malformed section header; expected [Interface] or [Peer]"),
    ("[Interface] junk\n", 1, "malformed section header; expected [Interface] or [Peer]"),
    ("[Interface]\nColour = blue\n", 2, "unknown key 'Colour' in [Interface]"),
    ("[Interface]\nListenPort\n", 2, "expected 'Key = Value'"),
    ("[Interface]\n = 5\n", 2, "expected 'Key = Value', found no key before '='"),
    ("ListenPort = 5\n[Interface]\n", 1, "ListenPort: outside any section; put it under [Interface]"),
    ("Foo = 5\n", 1, "unknown key 'Foo' outside any section"),
    ("[Interface]\nPublicKey = x\n", 2, "PublicKey: not valid in [Interface]; it belongs in [Peer]"),
    ("[Interface]\n[Peer]\nListenPort = 1\n", 3, "ListenPort: not valid in [Peer]; it belongs in [Interface]"),
    ("[Interface]\n[Peer]\nAddress = 10.0.0.1/24\n", 3, "Address: not valid in [Peer]; it belongs in [Interface]"),
    ("[Interface]\nListenPort = 1\n\nlistenport = 2\n", 4, "ListenPort: set twice in this section (first on line 2)"),
    ("[Interface]\nMTU = 1420\nMtu = 1420\n", 3, "MTU: set twice in this section (first on line 2)"),
    ("[Interface]\n[Interface]\n", 2, "[Interface]: a second [Interface] section (the first is on line 1)"),
    ("\n# nothing\n", 1, "no [Interface] section"),
    ("", 1, "no [Interface] section"),
    ("[Interface]\nListenPort = 65536\n", 2, "ListenPort: must be a port 0..65535, got 65536"),
    ("[Interface]\nListenPort = -1\n", 2, "ListenPort: must be a port 0..65535, got '-1'"),
    ("[Interface]\nListenPort = http\n", 2, "ListenPort: must be a port 0..65535, got 'http'"),
    ("[Interface]\nListenPort =\n", 2, "ListenPort: empty value"),
    ("[Interface]\nMTU = 575\n", 2, "MTU: must be a number 576..65535, got 575"),
    ("[Interface]\nMTU = 65536\n", 2, "MTU: must be a number 576..65535, got 65536"),
    ("[Interface]\nFwMark = mark\n", 2, "FwMark: must be a number (decimal or 0x hex) or 'off', got 'mark'"),
    ("[Interface]\nFwMark = 0x100000000\n", 2, "FwMark: must fit in 32 bits"),
    ("[Interface]\nAddress = 10.0.0.1/24, 10.0.0.300/24\n", 2,
     "Address: '10.0.0.300/24' is not an IP address with a prefix, like 10.0.0.1/24"),
    ("[Interface]\nSaveConfig = yes\n", 2, "SaveConfig: must be true or false, got 'yes'"),
    ("[Interface]\nPrivateKey = abc\n", 2, "PrivateKey: must be 44 characters of base64 (32 bytes), got 3 characters"),
])
def test_errors(text, line, message):
    err = error_of(text)
    assert (err.path, err.line, err.message) == ("wg0.conf", line, message)
    assert str(err) == f"wg0.conf:{line}: {message}"


PEER_HEAD = f"[Interface]\nPrivateKey = {K['PRIV']}\n\n[Peer]\n"  # [Peer] on line 4


@pytest.mark.parametrize("body, line, message", [
    ("AllowedIPs = 10.0.0.0/8\n", 4, "[Peer] has no PublicKey"),
    (f"PublicKey = {K['A'][:-2]}=\n", 5, "PublicKey: must be 44 characters of base64 (32 bytes), got 43 characters"),
    (f"PublicKey = {K['A'][:-1]}!\n", 5, "PublicKey: must be 44 characters of base64 (32 bytes), got 44 characters"),
    (f"PublicKey = {'*' * 43}=\n", 5, "PublicKey: is not valid base64"),
    (f"PublicKey = {K['A']}\nPresharedKey = {K['PSK']}x\n", 6,
     "PresharedKey: must be 44 characters of base64 (32 bytes), got 45 characters"),
    (f"PublicKey = {K['A']}\nAllowedIPs = 10.0.0.0/8\nAllowedIPs = 10.0.0.0/33 # bad\n", 7,
     "AllowedIPs: '10.0.0.0/33' is not an IP network, like 10.0.0.0/24"),
    (f"PublicKey = {K['A']}\nEndpoint = 192.0.2.1\n", 6,
     "Endpoint: '192.0.2.1' has no port, like 192.0.2.1:51820, [2001:db8::1]:51820 or vpn.example.com:51820"),
    (f"PublicKey = {K['A']}\nEndpoint = 192.0.2.1:\n", 6,
     "Endpoint: '192.0.2.1:' has no port, like 192.0.2.1:51820, [2001:db8::1]:51820 or vpn.example.com:51820"),
    (f"PublicKey = {K['A']}\nEndpoint = 2001:db8::1:51820\n", 6,
     "Endpoint: IPv6 addresses need brackets, like [2001:db8::1]:51820"),
    (f"PublicKey = {K['A']}\nEndpoint = [2001:db8::1]\n", 6,
     "Endpoint: '[2001:db8::1]' needs a port after ']', like 192.0.2.1:51820, [2001:db8::1]:51820 or vpn.example.com:51820"),
    (f"PublicKey = {K['A']}\nEndpoint = [2001:db8::1:51820\n", 6, "Endpoint: '[2001:db8::1:51820' has '[' without ']'"),
    (f"PublicKey = {K['A']}\nEndpoint = [not v6!]:1\n", 6, "Endpoint: 'not v6!' inside brackets is not an IPv6 address"),
    (f"PublicKey = {K['A']}\nEndpoint = host:0\n", 6, "Endpoint: must be a port 1..65535, got 0"),
    (f"PublicKey = {K['A']}\nEndpoint = host:70000\n", 6, "Endpoint: must be a port 1..65535, got 70000"),
    (f"PublicKey = {K['A']}\nEndpoint = :51820\n", 6,
     "Endpoint: ':51820' has no host, like 192.0.2.1:51820, [2001:db8::1]:51820 or vpn.example.com:51820"),
    (f"PublicKey = {K['A']}\nEndpoint = a/b:1\n", 6, "Endpoint: 'a/b' is not a host name or IP address"),
    (f"PublicKey = {K['A']}\nPersistentKeepalive = 65536\n", 6,
     "PersistentKeepalive: must be seconds 0..65535, got 65536"),
    (f"PublicKey = {K['A']}\nPersistentKeepalive = on\n", 6,
     "PersistentKeepalive: must be seconds 0..65535, got 'on'"),
    (f"PublicKey = {K['A']}\nEndpoint = a:1\nendpoint = b:2\n", 7, "Endpoint: set twice in this section (first on line 6)"),
    (f"PublicKey = {K['A']}\nPublicKey = {K['B']}\n", 6, "PublicKey: set twice in this section (first on line 5)"),
    (f"PublicKey = {K['A']}\n\n[Peer]\nPublicKey = {K['A']}\n", 8,
     "PublicKey: the same peer as the [Peer] on line 4 (this [Peer] is on line 7); each peer needs its own key"),
    (f"PublicKey = {K['A']}\nMagic = 1\n", 6, "unknown key 'Magic' in [Peer]"),
])
def test_peer_errors(body, line, message):
    err = error_of(PEER_HEAD + body)
    assert str(err) == f"wg0.conf:{line}: {message}"


def test_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
    assert issubclass(EndpointError, ConfigError)


# ---------------------------------------------------------------- no key material in errors


FIELDS_TAKING_A_VALUE = ["PrivateKey", "ListenPort", "FwMark", "Address", "MTU", "SaveConfig",
                         "PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"]


@pytest.mark.parametrize("field", FIELDS_TAKING_A_VALUE)
@pytest.mark.parametrize("mangle", [
    lambda k: k,                 # a valid key in the wrong place
    lambda k: k[:-1],            # truncated
    lambda k: k + "A",           # too long
    lambda k: k[:10] + "!" + k[11:],  # a bad character
    lambda k: k + ":51820",      # pasted into Endpoint
    lambda k: "[" + k + "]:1",
    lambda k: "10.0.0.0/8, " + k,
    lambda k: k + "/24",
])
def test_no_key_material_in_error_messages(field, mangle):
    secret = K["PSK"]
    value = mangle(secret)
    section = "[Interface]" if field in ("PrivateKey", "ListenPort", "FwMark", "Address", "MTU", "SaveConfig") else "[Peer]"
    if section == "[Interface]":
        text = f"[Interface]\n{field} = {value}\n"
    else:
        pub = f"PublicKey = {K['A']}\n" if field != "PublicKey" else ""
        text = f"[Interface]\n[Peer]\n{pub}{field} = {value}\nPersistentKeepalive = x\n"
    try:
        parse(text, "wg0.conf")
    except ConfigError as err:
        msg = str(err)
    else:  # it was valid (e.g. a key where a key belongs): force an error after it
        with pytest.raises(ConfigError) as info:
            parse(text + "Bogus = 1\n", "wg0.conf")
        msg = str(info.value)
    for fragment in (secret, secret[:16], secret[8:30], secret[-20:]):
        assert fragment not in msg


@pytest.mark.parametrize("text", [
    f"[Interface]\n{K['PSK']}\n",               # a bare key line
    f"[Interface]\n{K['PSK']} = 1\n",           # a key where a key name goes
    f"{K['PSK']}\n",
    f"[{K['PSK']}]\n",
    f"[Interface]\nPrivateKey {K['PSK']}\n",    # missing '='
    f"[Interface]\nPrivate Key: {K['PSK']}\n",
])
def test_no_key_material_in_syntax_errors(text):
    err = error_of(text)
    assert K["PSK"][:12] not in str(err)


def test_key_material_not_in_warnings():
    cfg = parse(FULL.replace("MTU = 1420", "MTU = 1000") + f"[Peer]\nPublicKey = {encode(public_key(PRIV))}\n")
    for w in cfg.warnings:
        for k in ALL_KEY_TEXTS:
            assert k not in w
