"""What a live TUN hands the core besides unicast traffic: the kernel's own multicast (router
solicitations, IGMP/MLD) must not be answered with ICMP errors (RFC 1122 §3.2.2, RFC 4443 §2.4 e)."""

from wgscope.protocol import ip
from wgscope.runtime import packets


def test_no_icmp_error_for_multicast_or_broadcast_destinations():
    for dst in ("ff02::2", "ff02::16"):
        assert ip.icmp_unreachable(packets.echo("fe80::1", dst, 1)) is None
    for dst in ("224.0.0.22", "239.1.2.3", "255.255.255.255"):
        assert ip.icmp_unreachable(packets.echo("10.0.0.1", dst, 1)) is None


def test_unicast_still_answered():
    assert packets.summarize(ip.icmp_unreachable(packets.echo("10.0.0.1", "10.0.0.9", 1)))["icmp"] == "unreachable"
    assert ip.icmp_unreachable(packets.echo("fd00::1", "fd00::9", 1)) is not None
