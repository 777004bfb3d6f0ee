import ipaddress

from wgscope.protocol.allowedips import AllowedIPs


def test_longest_prefix_v4_overlaps():
    t = AllowedIPs()
    t.insert("0.0.0.0/0", "default")
    t.insert("10.0.0.0/8", "a")
    t.insert("10.1.0.0/16", "b")
    t.insert("10.1.2.3/32", "c")
    assert t.lookup("10.1.2.3") == "c"
    assert t.lookup("10.1.2.4") == "b"
    assert t.lookup("10.200.0.1") == "a"
    assert t.lookup("192.0.2.1") == "default"


def test_longest_prefix_v6_and_families_are_separate():
    t = AllowedIPs()
    t.insert("2001:db8::/32", "a")
    t.insert("2001:db8:1::/48", "b")
    t.insert("2001:db8:1::1/128", "c")
    assert t.lookup("2001:db8:1::1") == "c"
    assert t.lookup("2001:db8:1::2") == "b"
    assert t.lookup("2001:db8:2::1") == "a"
    assert t.lookup("2001:db9::1") is None
    assert t.lookup("10.0.0.1") is None
    t.insert("::/0", "any6")
    assert t.lookup("10.0.0.1") is None and t.lookup("fe80::1") == "any6"


def test_reinsert_moves_range_between_peers_and_removal():
    t = AllowedIPs()
    t.insert("10.0.0.0/24", "a")
    t.insert("10.0.0.0/24", "b")  # same range given to b: a loses it
    assert t.lookup("10.0.0.9") == "b"
    assert t.networks("a") == []
    t.insert("10.0.0.77/24", "b")  # host bits are masked
    assert t.networks("b") == [ipaddress.ip_network("10.0.0.0/24")]
    t.remove_peer("b")
    assert t.lookup("10.0.0.9") is None and len(t) == 0


def test_many_entries():
    t = AllowedIPs()
    for i in range(20000):
        t.insert(ipaddress.IPv4Network((0x0A000000 + (i << 8), 24)), i % 7)
    assert t.lookup("10.0.5.1") == 5 % 7 and len(t) == 20000
