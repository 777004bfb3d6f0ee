"""Shared lab set-ups for the protocol tests."""

from wgscope.runtime.lab import Lab


def pair(seed=1, psk=None, keepalive=0, *, keys=(None, None), connect=True, **lab_kw):
    """A lab with alpha and bravo (Lab.alpha_bravo), connected unless `connect` is False."""
    lab = Lab(seed=seed, **lab_kw)
    a, b = lab.alpha_bravo(keys=keys, connect=connect, psk=psk, keepalive=keepalive)
    return lab, a, b


def times(node, name, **match):
    return [e.time for e in node.recorder.events
            if e.name == name and all(e.fields.get(k) == v for k, v in match.items())]


def recording_node_bus(expect_name=None):
    """(recorder, node_bus) for replay_capture(node_bus=...): every re-executed side's events, at
    TRACE, into one EventRecorder; `expect_name`, if given, is the only side name allowed."""
    from wgscope.events import TRACE, EventBus, EventRecorder

    rec = EventRecorder()

    def node_bus(name):
        assert expect_name is None or name == expect_name, name
        bus = EventBus(TRACE)
        bus.subscribe(rec, TRACE)
        return bus

    return rec, node_bus
