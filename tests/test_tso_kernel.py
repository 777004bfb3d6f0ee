"""Segmentation against the kernel itself: the kernel's TCP (TSO) and UDP (USO) send through a
TUN with offloads, and every packet `Tun.read` hands on must be one a host accepts, carrying
exactly the bytes the socket sent (tests/tso_loop.py does the work inside a namespace)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from netns import namespaces

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
LOOP = Path(__file__).parent / "tso_loop.py"


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_kernel_super_packets_are_cut_into_valid_packets(family, proto):
    with namespaces("T") as (ns,):
        args = f"{sys.executable} {LOOP} {family} {3_000_000 if proto == 'tcp' else 240_000}"
        r = ns.run(args + (" udp" if proto == "udp" else ""), timeout=90)
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["received"] == report["sent"], report
    assert report["bad_checksums"] == 0 and report["drops"] == {}, report
    assert report["gso_reads"] > 0, report  # the kernel did hand super-packets
    assert report["reads"] < report["bytes"] // 1200, report  # far fewer reads than packets
