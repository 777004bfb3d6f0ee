"""The binary trace (--events FILE.wgtrace): every event comes back with its catalogue name and
fields, in order, with wall time; losses are counted and announced; damaged files fail cleanly."""

from __future__ import annotations

import json
import os
import threading

import pytest

from wgscope.events import (
    CATALOGUE, EVENTS_LOST, FLUSH_RECORDS, M64, PACKED, ROUTE_FOUND, SOURCE_ALLOWED, TRACE, TRANSPORT_SENT, EventBus,
    EventRecorder,
)
from wgscope.runtime.lab import LAB_EPOCH, Lab
from wgscope.trace.format import MAGIC, TraceFormatError
from wgscope.trace.reader import read_events
from wgscope.trace.writer import TraceWriter


def _normal(ev):
    """An Event as JSON would carry it (tuples become lists)."""
    return (ev.name, ev.time, ev.peer, json.loads(json.dumps(ev.fields, default=str)), ev.level, ev.wall)


def traced_lab(tmp_path, pings=20):
    lab = Lab(seed=5, level=TRACE)
    a, b = lab.alpha_bravo(connect=False)
    writer = TraceWriter(tmp_path / "alpha.wgtrace", a.bus, TRACE, node="alpha")
    a.recorder.clear()
    lab.connect(a, b)
    for seq in range(pings):
        a.ping("10.0.0.2", seq)
        lab.run(0.5)
    writer.close()
    return a, writer


def test_every_event_of_a_lab_run_comes_back_in_order_with_its_fields(tmp_path):
    a, writer = traced_lab(tmp_path)
    recorded = [_normal(e) for e in a.recorder.events]
    read = [_normal(e) for e in read_events(tmp_path / "alpha.wgtrace")]
    assert read == recorded
    names = {r[0] for r in read}
    assert {"transport_sent", "transport_received", "route_found", "source_allowed", "timer_armed",
            "handshake_completed", "peer_added"} <= names
    for name, _t, _p, fields, level, wall in read:
        assert set(fields) == set(CATALOGUE[name].fields) and level == CATALOGUE[name].level
        assert wall >= LAB_EPOCH  # the lab's wall clock, not the protocol clock
    assert writer.lost == 0 and writer.records == len(read)


def test_packed_records_decode_to_the_catalogue_fields(tmp_path):
    bus = EventBus(TRACE)
    bus.wall = lambda now: now + 1000.0
    recorder = EventRecorder()
    bus.subscribe(recorder, TRACE)
    writer = TraceWriter(tmp_path / "t.wgtrace", bus)
    v6 = int.from_bytes(bytes.fromhex("20010db8000000000000000000000001"), "big")
    bus.record(TRANSPORT_SENT, 1.5, "peerA", 7, M64, 1420)
    bus.record(ROUTE_FOUND, 1.5, "peerA", 4, 0, 0x0A000002)
    bus.record(SOURCE_ALLOWED, 2.0, None, 6, v6 >> 64, v6 & M64)
    writer.close()
    read = list(read_events(tmp_path / "t.wgtrace"))
    assert [_normal(e) for e in read] == [_normal(e) for e in recorder.events]
    assert read[0].fields == {"receiver_index": 7, "counter": M64, "size": 1420} and read[0].wall == 1001.5
    assert read[1].fields == {"dst": "10.0.0.2"} and read[2].fields == {"src": "2001:db8::1"}
    assert set(PACKED) <= set(CATALOGUE)


def test_records_without_an_event_sink_build_no_event(tmp_path):
    bus = EventBus()
    writer = TraceWriter(tmp_path / "t.wgtrace", bus)
    assert bus.trace and bus.record == bus._record  # a tuple appended, nothing else
    for i in range(FLUSH_RECORDS * 2 + 5):
        bus.record(TRANSPORT_SENT, i * 1e-4, "p", 1, i, 100)
    writer.close()
    counters = [e.fields["counter"] for e in read_events(tmp_path / "t.wgtrace")]
    assert counters == list(range(FLUSH_RECORDS * 2 + 5))
    assert writer.blocks >= 2


def test_a_writer_that_cannot_keep_up_counts_the_loss_and_announces_it(tmp_path):
    """The file is a FIFO nobody reads yet: the writer thread blocks, the queue fills, blocks are lost."""
    fifo = tmp_path / "slow.wgtrace"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    bus = EventBus()
    recorder = EventRecorder()
    bus.subscribe(recorder)
    writer = TraceWriter(fifo, bus, queue_blocks=2)
    for i in range(FLUSH_RECORDS * 40):
        bus.record(TRANSPORT_SENT, i * 1e-6, "p", 1, i, 100)
    lost = recorder.of("events_lost")
    assert lost and {e.fields["reason"] for e in lost} == {"queue_full"}
    assert sum(e.fields["lost"] for e in lost) == lost[-1].fields["total"] == writer.lost > 0
    drained = bytearray()
    done = threading.Event()

    def drain():
        os.set_blocking(reader, True)
        while chunk := os.read(reader, 1 << 20):
            drained.extend(chunk)
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    writer.close()
    done.wait(30)
    os.close(reader)
    copy = tmp_path / "copy.wgtrace"
    copy.write_bytes(bytes(drained))
    read = list(read_events(copy))
    kept = [e for e in read if e.name == "transport_sent"]
    assert len(kept) + writer.lost >= FLUSH_RECORDS * 40  # lost ones are the only ones missing
    assert len(kept) == writer.records - len([e for e in read if e.name != "transport_sent"])
    assert "events_lost" in {e.name for e in read}  # the file itself says where its gaps are


def test_a_failing_disk_is_reported_as_loss(tmp_path):
    bus = EventBus()
    recorder = EventRecorder()
    bus.subscribe(recorder)
    writer = TraceWriter(tmp_path / "t.wgtrace", bus)
    writer.write_error = OSError(28, "No space left on device")
    for i in range(FLUSH_RECORDS * 2):
        bus.record(TRANSPORT_SENT, 0.0, "p", 1, i, 100)
    lost = recorder.of("events_lost")
    assert lost and {e.fields["reason"] for e in lost} == {"write_failed"}
    assert lost[-1].fields["sink"] == str(tmp_path / "t.wgtrace") and lost[-1].level == EVENTS_LOST.level
    assert sum(e.fields["lost"] for e in lost) == lost[-1].fields["total"] == writer.lost >= FLUSH_RECORDS * 2
    writer.close()


def test_a_torn_file_reads_to_its_last_whole_block_and_garbage_is_refused(tmp_path):
    a, _writer = traced_lab(tmp_path, pings=3)
    path = tmp_path / "alpha.wgtrace"
    whole = list(read_events(path))
    data = path.read_bytes()
    torn = tmp_path / "torn.wgtrace"
    torn.write_bytes(data[:-7])
    assert 0 < len(list(read_events(torn))) < len(whole)
    bad = tmp_path / "bad.wgtrace"
    bad.write_bytes(MAGIC + b"\xff\xff\xff\xff")
    with pytest.raises(TraceFormatError):
        list(read_events(bad))
    second = data.index(b"WGB1", data.index(b"WGB1") + 1)
    junk = tmp_path / "junk.wgtrace"
    junk.write_bytes(data[:second] + b"JUNK" + data[second + 4:])
    with pytest.raises(TraceFormatError):
        list(read_events(junk))
