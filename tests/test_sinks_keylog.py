"""--keylog: Wireshark's WireGuard key log, one block per handshake, both roles, 0600, flushed."""

from __future__ import annotations

import argparse
import io
import os
import stat

from lab_helpers import pair
from wgscope.keytext import encode
from wgscope.sinks.keylog import KeylogWriter
from wgscope.sinks.setup import add_sink_arguments, attach_sinks

PSK = bytes(range(1, 33))


def blocks(text: str) -> list[dict[str, str]]:
    out, cur = [], {}
    for line in text.splitlines():
        if line.startswith("#"):
            cur = {"comment": line}
            out.append(cur)
        else:
            key, _, value = line.partition(" = ")
            cur[key] = value
    return out


def test_keylog_blocks_for_initiator_and_responder(tmp_path):
    lab, a, b = pair(psk=PSK)
    warn_a, warn_b = io.StringIO(), io.StringIO()
    ka = KeylogWriter(tmp_path / "a.keys", name="alpha", warn=warn_a)
    kb = KeylogWriter(tmp_path / "b.keys", name="bravo", warn=warn_b)
    a.bus.subscribe_secrets(ka)
    b.bus.subscribe_secrets(kb)
    assert "holds session secrets" in warn_a.getvalue() and str(tmp_path / "a.keys") in warn_a.getvalue()
    for path in (tmp_path / "a.keys", tmp_path / "b.keys"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    a.ping("10.0.0.2")
    lab.run(1)
    # flushed per handshake: readable before close
    [ba] = blocks((tmp_path / "a.keys").read_text())
    [bb] = blocks((tmp_path / "b.keys").read_text())
    assert "initiator handshake" in ba["comment"] and "responder handshake" in bb["comment"]
    assert ba["LOCAL_STATIC_PRIVATE_KEY"] == encode(a.device.identity.private)
    assert ba["REMOTE_STATIC_PUBLIC_KEY"] == encode(b.public_key)
    assert bb["LOCAL_STATIC_PRIVATE_KEY"] == encode(b.device.identity.private)
    assert bb["REMOTE_STATIC_PUBLIC_KEY"] == encode(a.public_key)
    assert ba["PRESHARED_KEY"] == bb["PRESHARED_KEY"] == encode(PSK)
    assert ba["LOCAL_EPHEMERAL_PRIVATE_KEY"] != bb["LOCAL_EPHEMERAL_PRIVATE_KEY"]
    # Wireshark links a PSK to the ephemeral key line just before it: the order matters
    text = (tmp_path / "a.keys").read_text().splitlines()
    assert [line.split(" = ")[0] for line in text[1:]] == [
        "LOCAL_STATIC_PRIVATE_KEY", "REMOTE_STATIC_PUBLIC_KEY", "LOCAL_EPHEMERAL_PRIVATE_KEY", "PRESHARED_KEY"]
    assert "=" not in text[0]  # the comment line is not mistaken for a key by Wireshark
    lab.advance(130)  # REKEY_AFTER_TIME: a second handshake appends a second block
    a.ping("10.0.0.2", 2)
    lab.run(1)
    ka.close()
    kb.close()
    assert len(blocks((tmp_path / "a.keys").read_text()) + blocks((tmp_path / "b.keys").read_text())) == 4


def test_keylog_appends_and_narrows_permissions(tmp_path):
    path = tmp_path / "keys"
    path.write_text("# earlier run\n")
    path.chmod(0o644)
    KeylogWriter(path, warn=None).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == "# earlier run\n"


def test_zero_psk_is_written_as_zeroes(tmp_path):
    lab, a, b = pair()
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    sinks = attach_sinks(a.bus, parser.parse_args(["--keylog", str(tmp_path / "k")]), None, "alpha", warn=None)
    a.ping("10.0.0.2")
    lab.run(1)
    sinks.close()
    [block] = blocks((tmp_path / "k").read_text())
    assert block["PRESHARED_KEY"] == encode(bytes(32))
