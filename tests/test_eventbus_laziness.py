"""The bus builds an Event only for a sink that wants it (issue 16, item 3): by level, by name, or
later from the history a control socket keeps for views that attach later. Every event a sink
wants still reaches it, in order."""

from __future__ import annotations

from wgscope.events import (
    DEBUG, ENDPOINT_CHANGED, HANDSHAKE_RESPONSE_SENT, INFO, KEEPALIVE_RECEIVED, PEER_ADDED, EventBus,
)


def _bus() -> tuple[EventBus, list]:
    bus = EventBus(INFO)
    stamped: list = []
    bus.wall = lambda now: stamped.append(now) or now + 100.0  # read once per Event built
    return bus, stamped


def _sent(bus: EventBus, now: float) -> None:
    bus.emit(HANDSHAKE_RESPONSE_SENT, now, "p", endpoint="198.51.100.1:1", sender_index=1, receiver_index=2)


def test_no_event_is_built_when_no_sink_wants_it():
    bus, stamped = _bus()
    _sent(bus, 1.0)
    assert stamped == []
    seen = []
    unsubscribe = bus.subscribe(seen.append, INFO)
    _sent(bus, 2.0)
    assert stamped == [2.0] and [(e.name, e.wall) for e in seen] == [("handshake_response_sent", 102.0)]
    unsubscribe()
    _sent(bus, 3.0)
    assert stamped == [2.0]


def test_a_named_sink_gets_its_names_only_and_costs_the_others_nothing():
    bus, stamped = _bus()
    moved, everything = [], []
    bus.subscribe(moved.append, INFO, names=frozenset({ENDPOINT_CHANGED.name, PEER_ADDED.name}))
    _sent(bus, 1.0)
    bus.emit(ENDPOINT_CHANGED, 2.0, "p", old=None, new="198.51.100.1:1", cause="roaming")
    assert stamped == [2.0] and [e.name for e in moved] == ["endpoint_changed"]
    bus.subscribe(everything.append, DEBUG)  # a level sink beside it: both get what they want, once each
    bus.emit(KEEPALIVE_RECEIVED, 3.0, "p")
    bus.emit(PEER_ADDED, 4.0, "p", allowed_ips=[], endpoint=None, persistent_keepalive=0, has_psk=False)
    assert [e.name for e in everything] == ["keepalive_received", "peer_added"]
    assert [e.name for e in moved] == ["endpoint_changed", "peer_added"]
    assert moved[-1] is everything[-1]


def test_the_history_keeps_the_last_events_as_emitted_and_builds_them_when_read():
    bus, stamped = _bus()
    read = bus.keep_history(3, INFO)
    for i in range(5):
        _sent(bus, float(i))
        bus.emit(KEEPALIVE_RECEIVED, float(i), "p")  # DEBUG: below the history's level
    assert stamped == []
    history = read()
    assert [(e.name, e.time, e.wall, e.level) for e in history] == [("handshake_response_sent", t, t + 100.0, INFO)
                                                                      for t in (2.0, 3.0, 4.0)]
    assert history[0].fields == {"endpoint": "198.51.100.1:1", "sender_index": 1, "receiver_index": 2}
    read = bus.keep_history(3, DEBUG)  # the level follows; what was kept stays
    bus.emit(KEEPALIVE_RECEIVED, 9.0, "p")
    assert [e.name for e in read()] == ["handshake_response_sent"] * 2 + ["keepalive_received"]
    bus.forget_history()
    assert bus.level == INFO
    _sent(bus, 10.0)
    assert [e.time for e in read()] == [3.0, 4.0, 9.0]
