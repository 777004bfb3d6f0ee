"""Shared by the capture-file tests (test_pcap_writer, test_pcap_reader, test_pcap_wireshark,
test_pcap_hostile): a mixed IPv4/IPv6 sample written by our pcapng writer, hand-built pcapng
blocks for the parts of the formats our writers never produce, and Wireshark's tools."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from wgscope.pcap import PcapngWriter, build_udp_frame

from test_pcap_frames import WRAPPERS  # hand-built link-layer headers

V4 = (("192.0.2.1", 51820), ("198.51.100.7", 41414))
V6 = (("2001:db8::1", 51820), ("2001:db8:ffff::2", 41414))
KEYLOG = (
    "LOCAL_STATIC_PRIVATE_KEY = QChaGDXeH3eQsbFAhueUNWFdq9KfpF3yl+eITjZbXEk=\n"
    "REMOTE_STATIC_PUBLIC_KEY = HzgTY6aWXtuSyW/PUquZtg8LB/DyMwEXGkPiEmdSsUU=\n"
)
T0 = 1_700_000_000


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian/Ubuntu: apt-get install tshark wireshark-common)")
    return path


def run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{argv[0]} failed: {proc.stderr}"
    return proc.stdout


def tshark_fields(path, *fields: str, prefs: tuple[str, ...] = ()) -> list[list[str]]:
    argv = [need("tshark"), "-n", "-r", str(path)]
    for pref in prefs:
        argv += ["-o", pref]
    argv += ["-T", "fields", "-E", "separator=|"]
    for f in fields:
        argv += ["-e", f]
    return [line.split("|") for line in run(*argv).splitlines()]


def sample_packets():
    """(data, timestamp, comment) for a mixed v4/v6 capture."""
    return [
        (build_udp_frame(*V4, b"\x01\0\0\0" + b"i" * 144), T0 + 2**-20, "handshake initiation"),
        (build_udp_frame(V4[1], V4[0], b"\x02\0\0\0" + b"r" * 88), T0 + 0.25, None),
        (build_udp_frame(*V6, b"\x04\0\0\0" + b"d" * 29), T0 + 1.5, "transport, odd length: ünïcode ✓"),
        (build_udp_frame(V6[1], V6[0], b"\x04\0\0\0" + b"\0" * 28), T0 + 2.75, ""),
    ]


def write_sample(path, with_secrets: bool = True):
    with PcapngWriter(path) as w:
        if with_secrets:
            w.write_wireguard_secrets(KEYLOG)
        for data, ts, comment in sample_packets():
            w.write_packet(data, ts, comment=comment)


def walk_blocks(raw: bytes, bo: str = "<"):
    off = 0
    while off < len(raw):
        btype, blen = struct.unpack_from(bo + "II", raw, off)
        assert blen % 4 == 0 and blen >= 12
        assert struct.unpack_from(bo + "I", raw, off + blen - 4)[0] == blen
        yield btype, raw[off + 8 : off + blen - 4]
        off += blen
    assert off == len(raw)



# --- hand-built files: the parts of the formats our writers never produce -------------


def block(bo: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack(bo + "II", btype, len(body) + 12) + body + struct.pack(bo + "I", len(body) + 12)


def opt(bo: str, code: int, value: bytes) -> bytes:
    return struct.pack(bo + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def end_opts(bo: str) -> bytes:
    return struct.pack(bo + "HH", 0, 0)


def shb(bo: str) -> bytes:
    return block(bo, 0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def handmade_pcapng(bo: str) -> tuple[bytes, list[tuple]]:
    """Two sections; interfaces with different link types, resolutions and offsets;
    EPB, SPB, obsolete PB, and blocks a reader must skip.  Returns (file, expected)."""
    eth4 = WRAPPERS["ethernet-vlan"][1](build_udp_frame(*V4, b"eth"))
    raw6 = build_udp_frame(*V6, b"raw")
    sll2 = WRAPPERS["sll2"][1](build_udp_frame(*V4, b"sll2"))
    out = [shb(bo)]
    out.append(block(bo, 1, struct.pack(bo + "HHI", 1, 0, 0)))  # Ethernet, default µs
    out.append(block(bo, 1, struct.pack(bo + "HHI", 101, 0, 0) + opt(bo, 9, b"\x8a") + opt(bo, 14, struct.pack(bo + "q", 100)) + end_opts(bo)))  # RAW, 2^-10 s, +100 s
    out.append(block(bo, 0x0A, struct.pack(bo + "II", 0x544C534B, 5) + b"tlskl"))  # TLS secrets: not ours
    ts = (T0 * 10**6) + 250_000
    out.append(block(bo, 6, struct.pack(bo + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(eth4), len(eth4)) + eth4 + b"\0" * (-len(eth4) % 4) + opt(bo, 1, b"first") + opt(bo, 1, b"second") + end_opts(bo)))
    out.append(block(bo, 5, struct.pack(bo + "IIII", 0, 0, 0, 0)))  # Interface Statistics Block
    out.append(block(bo, 0x40000BAD, b"custom, do not copy"))
    out.append(block(bo, 0x12345678, b"unknown"))
    tick = 1024 * 3 + 512  # 3.5 s at 2^-10
    out.append(block(bo, 6, struct.pack(bo + "IIIII", 1, 0, tick, len(raw6), len(raw6)) + raw6))
    out.append(block(bo, 3, struct.pack(bo + "I", len(eth4)) + eth4))  # SPB -> interface 0
    out.append(block(bo, 0x0A, struct.pack(bo + "II", 0x57474B4C, len(KEYLOG)) + KEYLOG.encode()))
    out.append(block(bo, 2, struct.pack(bo + "HHIIII", 0, 0, ts >> 32, (ts & 0xFFFFFFFF) + 1, len(eth4), len(eth4)) + eth4 + b"\0" * (-len(eth4) % 4) + opt(bo, 1, b"old PB") + end_opts(bo)))
    # A new section: interfaces start over.
    out.append(shb(bo))
    out.append(block(bo, 1, struct.pack(bo + "HHI", 276, 0, 0) + opt(bo, 9, b"\x03") + end_opts(bo)))  # ms
    out.append(block(bo, 6, struct.pack(bo + "IIIII", 0, 0, 5000, len(sll2), len(sll2)) + sll2))
    expected = [  # frame 2 is the custom block: Wireshark numbers it as a frame
        (1, T0 + 0.25, 1, eth4, "first\nsecond"),
        (3, 103.5, 101, raw6, None),
        (4, 103.5, 1, eth4, None),  # SPB: no timestamp of its own
        (5, T0 + 0.250001, 1, eth4, "old PB"),
        (6, 5.0, 276, sll2, None),
    ]
    return b"".join(out), expected

