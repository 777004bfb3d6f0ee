"""--events: structlog JSON lines and console lines, the level filter, and no cost when off."""

from __future__ import annotations

import argparse
import contextlib
import io
import json

from lab_helpers import pair
from wgscope.events import CATALOGUE, DEBUG, INFO, TRACE, EventBus
from wgscope.runtime.lab import LAB_EPOCH
from wgscope.sinks.jsonlog import EventLogSink
from wgscope.sinks.setup import add_sink_arguments, attach_sinks


def run_ping(level_text: str, fmt: str = "json"):
    lab, a, b = pair(seed=3, connect=False, level=INFO)
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    args = parser.parse_args(["--events", "-", "--events-level", level_text, "--events-format", fmt])
    with contextlib.redirect_stdout(out):  # "-" is whatever stdout is when the sink is made
        sinks = attach_sinks(a.bus, args, lambda: a.device.snapshot(lab.now), "alpha", warn=None)
    lab.connect(a, b)
    a.ping("10.0.0.2", 1)
    lab.run(1)
    sinks.close()
    return out.getvalue().splitlines(), a


def test_json_lines_carry_name_level_category_time_peer_and_fields():
    lines, a = run_ping("info")
    records = [json.loads(line) for line in lines]
    names = [r["event"] for r in records]
    assert names[:3] == ["peer_added", "handshake_initiation_created", "handshake_initiation_sent"]
    assert "handshake_completed" in names
    for r in records:
        et = CATALOGUE[r["event"]]
        assert r["level"] == "info" and r["category"] == et.category and r["node"] == "alpha"
        assert set(et.fields) <= set(r)  # every catalogue field is present
        assert r["timestamp"].startswith("2026-01-01T00:00:0") and r["timestamp"].endswith("Z")
    done = next(r for r in records if r["event"] == "handshake_completed")
    assert done["role"] == "initiator" and done["peer"] == next(iter(a.device.peers.values())).name
    assert list(records[0])[:6] == ["timestamp", "level", "event", "category", "node", "peer"]


def test_level_filter():
    info, _ = run_ping("info")
    debug, _ = run_ping("debug")
    trace, _ = run_ping("trace")
    levels = lambda lines: {json.loads(line)["level"] for line in lines}  # noqa: E731
    assert levels(info) == {"info"}
    assert levels(debug) == {"info", "debug"}
    assert levels(trace) == {"info", "debug", "trace"}
    assert len(info) < len(debug) < len(trace)
    names = {json.loads(line)["event"] for line in trace}
    assert {"transport_sent", "transport_received", "route_found"} <= names


def test_console_rendering_is_one_readable_line_per_event():
    lines, a = run_ping("info", fmt="console")
    assert lines and not any(line.lstrip().startswith("{") for line in lines)
    done = next(line for line in lines if "handshake_completed" in line)
    peer = next(iter(a.device.peers.values())).name
    assert f"peer={peer[:8]} " in done and peer not in done  # shortened peer
    assert "role=initiator" in done and done.startswith("00:00:00.")
    assert "\x1b[" not in done  # no colour when not a terminal


def test_auto_format_picks_json_off_a_terminal_and_console_on_one():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert EventLogSink(io.StringIO(), "auto").format == "json"
    tty = Tty()
    sink = EventLogSink(tty, "auto", LAB_EPOCH)
    assert sink.format == "console"
    bus = EventBus(INFO)
    bus.subscribe(sink, INFO)
    bus.emit(CATALOGUE["peer_removed"], 1.5, "x" * 44)
    assert "\x1b[" in tty.getvalue()  # coloured on a terminal
    assert "peer_removed" in tty.getvalue()


def test_events_file_and_bus_levels_when_off(tmp_path):
    # With only an INFO sink the core never builds per-packet events: bus.trace stays False.
    lab, a, b = pair()
    assert not a.bus.trace
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    path = tmp_path / "events.jsonl"
    sinks = attach_sinks(a.bus, parser.parse_args(["--events", str(path)]), None, "alpha", warn=None)
    assert not a.bus.trace and sinks.events.format == "json"
    a.ping("10.0.0.2")
    lab.run(1)
    sinks.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records and all(CATALOGUE[r["event"]].level >= INFO for r in records)
    sinks = attach_sinks(a.bus, parser.parse_args(["--events", str(path), "--events-level", "trace"]), None, "a",
                         warn=None)
    assert a.bus.trace
    sinks.close()
    assert not a.bus.trace and a.bus.level == DEBUG  # back to the lab's own recorder level


def test_bad_events_path_is_one_line_error(tmp_path):
    import pytest
    from wgscope.cli import UserError

    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    with pytest.raises(UserError, match="cannot write events to"):
        attach_sinks(EventBus(), parser.parse_args(["--events", str(tmp_path / "no" / "such.jsonl")]), None, "x")
    assert TRACE < DEBUG < INFO
