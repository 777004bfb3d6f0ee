"""Shared lab set-ups for the protocol tests."""

from wgscope.runtime.lab import Lab


def pair(seed=1, psk=None, keepalive=0, **kw):
    lab = Lab(seed=seed, **kw)
    a = lab.add_node("alpha", "192.0.2.1", 51820, tunnel="10.0.0.1/24")
    b = lab.add_node("bravo", "192.0.2.2", 51820, tunnel="10.0.0.2/24")
    lab.connect(a, b, psk=psk, keepalive=keepalive)
    return lab, a, b


def times(node, name, **match):
    return [e.time for e in node.recorder.events
            if e.name == name and all(e.fields.get(k) == v for k, v in match.items())]
