"""--capture: the lab node's traffic as pcapng that tshark decrypts with no key log (DSB),
a verdict comment on every packet, and the Lua plugin turning comments into fields."""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess

import pytest
from pyshark_util import read_packets

from conftest import require_tools
from lab_helpers import pair

from wgscope.pcap import CaptureReader, read_capture
from wgscope.runtime.lab import LAB_EPOCH
from wgscope.sinks.capture import CaptureWriter, parse_comment

ROOT = pathlib.Path(__file__).resolve().parent.parent
LUA = ROOT / "dissectors" / "wgscope.lua"
PSK = bytes(range(32))


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """alpha's capture: a PSK handshake and two pings, a cookie round under forced load, and
    three bad datagrams (bad mac1, unknown type, unknown index)."""
    path = tmp_path_factory.mktemp("cap") / "alpha.pcapng"
    lab, a, b = pair(seed=7, connect=False)
    writer = CaptureWriter(path, a.bus, LAB_EPOCH, "alpha", warn=None)
    lab.connect(a, b, psk=PSK)
    a.ping("10.0.0.2", 1)
    lab.run(1)
    a.ping("10.0.0.2", 2)
    lab.run(1)
    # bravo initiates while alpha is under load: cookie reply, retry with mac2, accepted
    a.device.set_forced_load(True, lab.now)
    lab.advance(200)  # past REJECT_AFTER_TIME: the old sessions are gone
    b.ping("10.0.0.1", 3)
    lab.run(8)
    a.device.set_forced_load(None, lab.now)
    lab.network.send(b.endpoint, a.endpoint, b"\x01\0\0\0" + bytes(144))
    lab.network.send(b.endpoint, a.endpoint, b"\x09garbage")
    lab.network.send(b.endpoint, a.endpoint, b"\x04\0\0\0" + bytes(40))
    lab.run(1)
    writer.close()
    return path, writer, a, b


def tshark(*args: str, lua: bool = False) -> list[str]:
    cmd = ["tshark", *(["-X", f"lua_script:{LUA}"] if lua else []), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_capture_file_is_private_and_every_packet_has_a_verdict(capture):
    path, writer, _, _ = capture
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    packets = list(read_capture(path))
    assert len(packets) == writer.packets > 10
    for p in packets:
        fields = parse_comment(p.comment)
        assert fields["dir"] in ("in", "out") and fields["verdict"] in ("accepted", "dropped", "sent"), p.comment
        assert " | " in p.comment  # the human-readable half


def test_comments_tell_the_story(capture):
    path, _, a, b = capture
    rows = [parse_comment(p.comment) for p in read_capture(path)]
    story = [(r["dir"], r["kind"], r["verdict"], r.get("reason")) for r in rows]
    assert story[:2] == [("out", "initiation", "sent", None), ("in", "response", "accepted", None)]
    # under load: bravo's initiation without mac2 is answered with a cookie reply, the retry is accepted
    i = story.index(("in", "initiation", "dropped", "bad_mac2"))
    assert story[i + 1] == ("out", "cookie_reply", "sent", None)
    assert ("in", "initiation", "accepted", None) in story[i + 2:]
    assert story[-3:] == [("in", "initiation", "dropped", "bad_mac1"), ("in", "unknown", "dropped", "unknown_type"),
                          ("in", "transport", "dropped", "unknown_index")]
    bravo = b.device.public_key
    from wgscope.keytext import short
    assert rows[0]["peer"] == short(bravo)
    assert all(r["peer"] == short(bravo) for r in rows if r["kind"] == "transport" and r["verdict"] != "dropped")


def test_secrets_block_precedes_the_packets_it_decrypts(capture):
    path, writer, _, _ = capture
    reader = CaptureReader(path)
    seen = []
    for p in reader:
        if parse_comment(p.comment)["kind"] in ("initiation", "response") and parse_comment(p.comment)["verdict"] != "dropped":
            seen.append(len(reader.secrets))
    assert seen[0] >= 1
    assert len(reader.secrets) == writer.secrets_blocks >= 2
    assert all("LOCAL_EPHEMERAL_PRIVATE_KEY = " in s and "PRESHARED_KEY = " in s for s in reader.secrets)


def test_tshark_decrypts_our_capture_with_no_keylog(capture):
    require_tools("tshark")
    path, _, _, _ = capture
    ok = tshark("-r", str(path), "-Y", "wg.handshake_ok == 1")
    assert len(ok) >= 2  # both handshakes (alpha initiator, then alpha responder)
    icmp = tshark("-r", str(path), "-Y", "icmp", "-T", "fields", "-e", "icmp.type", "-e", "icmp.seq")
    types = sorted(line.split("\t")[0] for line in icmp)
    assert types.count("8") == 3 and types.count("0") == 3  # three echo requests, three replies


def test_pyshark_reads_decrypted_traffic(capture):
    require_tools("tshark")
    path, _, _, _ = capture
    replies = read_packets(path, display_filter="icmp.type == 0")
    assert len(replies) == 3
    outer_inner = [r.get_multiple_layers("ip") for r in replies]
    assert all(len(ips) == 2 for ips in outer_inner)  # the tunnelled packet is dissected inside WireGuard
    assert {inner.src for _, inner in outer_inner} == {"10.0.0.1", "10.0.0.2"}
    assert {outer.src for outer, _ in outer_inner} == {"192.0.2.1", "192.0.2.2"}
    handshakes = read_packets(path, display_filter="wg.handshake_ok == 1")
    assert handshakes and all(p.wg.handshake_ok == "1" for p in handshakes)


def test_lua_plugin_filters_by_wgscope_fields(capture):
    require_tools("tshark")
    path, _, _, _ = capture
    dropped = tshark("-r", str(path), "-Y", 'wgscope.verdict == "dropped"', "-T", "fields",
                     "-e", "wgscope.kind", "-e", "wgscope.reason", lua=True)
    assert ["initiation\tbad_mac2", "initiation\tbad_mac1", "unknown\tunknown_type",
            "transport\tunknown_index"] == dropped
    cookie = tshark("-r", str(path), "-Y", 'wgscope.kind == "cookie_reply" && wgscope.dir == "out"', lua=True)
    assert len(cookie) == 1
    indexed = tshark("-r", str(path), "-Y", "wgscope.index > 0 && wgscope.verdict == \"accepted\"",
                     "-T", "fields", "-e", "wgscope.index", "-e", "wg.sender", "-e", "wg.receiver", lua=True)
    assert indexed and all(line.split("\t")[0] for line in indexed)


def test_pyshark_with_the_lua_plugin(capture):
    require_tools("tshark")
    path, _, _, _ = capture
    packets = read_packets(path, custom_parameters=["-X", f"lua_script:{LUA}"])
    hits = [p for p in packets if "wgscope" in p and p.wgscope.get_field_value("reason") == "bad_mac1"]
    assert len(hits) == 1 and hits[0].wgscope.kind == "initiation"
