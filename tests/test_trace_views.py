"""One event stream, many readers: the same events, names and fields reach `wgscope events`
(JSON and console lines, filtered), a pandas DataFrame, the control socket and JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from test_control import read_until
from wgscope.cli import main as cli
from wgscope.events import CATALOGUE, INFO, TRACE, iso_wall
from wgscope.runtime.lab import LAB_EPOCH, Lab
from wgscope.sinks.control import start_control_server
from wgscope.sinks.setup import add_sink_arguments, attach_sinks
from wgscope.trace.frame import load_events
from wgscope.trace.reader import read_events
from wgscope.trace.writer import TraceWriter


def recorded(tmp_path, *sink_args, pings=4):
    """A lab run with alpha's sinks made from command-line options, as `wgscope up` makes them."""
    lab = Lab(seed=9, level=INFO)
    a, b = lab.alpha_bravo(connect=False)
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    sinks = attach_sinks(a.bus, parser.parse_args(list(sink_args)), None, "alpha", warn=None)
    lab.connect(a, b)
    for seq in range(pings):
        a.ping("10.0.0.2", seq)
        lab.run(1.0)
    sinks.close()
    return a, b


def test_wgtrace_and_jsonl_files_read_back_as_the_same_events(tmp_path):
    trace, jsonl = tmp_path / "a.wgtrace", tmp_path / "a.jsonl"
    recorded(tmp_path, "--events", str(trace), "--events-level", "trace")
    assert trace.read_bytes().startswith(b"WGSTRACE")
    recorded(tmp_path, "--events", str(jsonl), "--events-level", "trace")
    assert json.loads(jsonl.read_text().splitlines()[0])["event"] == "peer_added"
    from_trace, from_jsonl = list(read_events(trace)), list(read_events(jsonl))
    assert [(e.name, e.peer, e.fields, e.level) for e in from_trace] == \
           [(e.name, e.peer, json.loads(json.dumps(e.fields)), e.level) for e in from_jsonl]
    assert [round(e.wall, 6) for e in from_trace] == [round(e.wall, 6) for e in from_jsonl]
    assert {"transport_sent", "source_allowed", "timer_armed"} <= {e.name for e in from_trace}


def test_events_command_prints_filtered_json_and_console_lines(tmp_path, capsys):
    trace = tmp_path / "a.wgtrace"
    a, b = recorded(tmp_path, "--events", str(trace), "--events-level", "trace")
    peer = a.peer(b).name
    assert cli(["events", str(trace), "--format", "json"]) == 0
    every = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(every) == len(list(read_events(trace)))
    for r in every:
        assert set(CATALOGUE[r["event"]].fields) <= set(r) and r["node"] == "alpha"
        assert r["timestamp"].startswith("2026-01-01T00:00:0") and isinstance(r["time"], float)

    assert cli(["events", str(trace), "--format", "json", "--kind", "handshake,transport_*",
                "--peer", peer[:6], "--level", "trace", "--since", "1.0", "--until", iso_wall(LAB_EPOCH + 2.5)]) == 0
    some = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert some and {r["event"] for r in some} == {"transport_sent", "transport_received"}
    assert all(1.0 <= r["time"] <= 2.5 and r["peer"] == peer for r in some)

    assert cli(["events", str(trace), "--format", "console", "--kind", "handshake_completed"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("00:00:0") and "handshake_completed" in line and "role=initiator" in line

    assert cli(["events", str(trace), "--count"]) == 0
    assert "transport_sent" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--since", "yesterday"], "neither protocol seconds"),
    ([], "not a wgscope JSON event"),
])
def test_events_command_refuses_bad_input_in_one_line(tmp_path, capsys, args, message):
    junk = tmp_path / "junk.wgtrace"
    junk.write_text("hello\n")
    assert cli(["events", str(junk), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_dataframe_has_the_catalogue_names(tmp_path):
    trace = tmp_path / "a.wgtrace"
    recorded(tmp_path, "--events", str(trace), "--events-level", "trace")
    df = load_events(trace)
    assert list(df.columns[:6]) == ["event", "level", "category", "time", "wall", "peer"]
    assert len(df) == len(list(read_events(trace)))
    sent = df[df.event == "transport_sent"]
    assert len(sent) == 4 and list(sent["counter"]) == [0, 1, 2, 3] and str(sent["counter"].dtype) == "Int64"
    assert str(df["wall"].dtype) == "datetime64[ns, UTC]" and df["wall"].iloc[0].year == 2026
    fields = {f for et in CATALOGUE.values() for f in et.fields}
    assert set(df.columns[6:]) <= fields
    only = load_events(trace, kinds=["routing"])
    assert set(only.event) == {"route_found", "source_allowed"}


def test_control_socket_client_can_ask_for_every_packet(tmp_path):
    lab = Lab(seed=3, level=INFO)
    a, b = lab.alpha_bravo()
    writer_file = TraceWriter(tmp_path / "a.wgtrace", a.bus, TRACE)
    path = tmp_path / "alpha.ctl"

    async def main():
        server = await start_control_server("alpha", a.bus, a.device.snapshot, lambda: lab.now, path=path)
        reader, writer = await asyncio.open_unix_connection(str(path))
        writer.write(b'{"cmd": "level", "level": "trace"}\n')
        await read_until(reader, lambda m: m["type"] == "level")
        a.ping("10.0.0.2")
        lab.run(1.0)
        _, sent = await read_until(reader, lambda m: m.get("event") == "transport_sent")
        assert set(sent["fields"]) == set(CATALOGUE["transport_sent"].fields)
        assert sent["wall"] == LAB_EPOCH + sent["time"] and sent["timestamp"] == iso_wall(sent["wall"])
        writer.close()
        await server.close()

    asyncio.run(main())
    writer_file.close()
    names = [e.name for e in read_events(tmp_path / "a.wgtrace")]
    assert names.count("transport_sent") == 1  # the file got the same packet once, as a record
