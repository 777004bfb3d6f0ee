"""Coverage-guided fuzzing of wgscope's receive path with atheris (libFuzzer for Python).

Each input is turned into a datagram — raw bytes, or a mutation of a packet captured from a
real lab session (bit flip, truncation, extension, type/reserved change, spliced field, replay),
optionally with a recomputed mac1 so it reaches the Noise code — and handed to
Device.receive_datagram of one of two lab nodes holding an established tunnel. Any
exception is a finding; so is a datagram that changes the node's protocol state, an index
table that disagrees with the keypairs, or a tunnel that stops carrying pings (checked
every CHECK_EVERY inputs).

    .venv/bin/pip install atheris        # not a test dependency
    .venv/bin/python fuzz/atheris_receive.py -max_total_time=600 fuzz/corpus

See fuzz/README.md.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

with atheris.instrument_imports():
    import wgscope.protocol  # noqa: F401  (instrument the whole core)
    from wgscope.protocol import antireplay, cookie, device, entropy, ip, messages, noise, receive  # noqa: F401
    from fuzz_session import (
        ATTACKER, ATTACKER6, OPS, Session, consistency_problems, fingerprint, mutate, remac,
    )

CHECK_EVERY = 5000
SOURCES = None


class Finding(AssertionError):
    pass


class Harness:
    def __init__(self) -> None:
        self.session = Session()
        self.inputs = 0
        self._remember()

    def _remember(self) -> None:
        self.before = {n.name: fingerprint(n.device) for n in self.session.nodes}

    def one(self, data: bytes) -> None:
        s = self.session
        fdp = atheris.FuzzedDataProvider(data)
        mode = fdp.ConsumeIntInRange(0, 3)
        source = (ATTACKER, ATTACKER6, None)[fdp.ConsumeIntInRange(0, 2)]
        fix_mac = fdp.ConsumeBool()
        if mode == 0:  # raw bytes, to node a or b
            target = s.nodes[fdp.ConsumeIntInRange(0, 1)]
            datagram = fdp.ConsumeBytes(fdp.remaining_bytes())
            src = source or (s.b.endpoint if target is s.a else s.a.endpoint)
        else:  # a mutation of a captured packet
            wire = s.wires[fdp.ConsumeIntInRange(0, len(s.wires) - 1)]
            other = s.wires[fdp.ConsumeIntInRange(0, len(s.wires) - 1)]
            op = OPS[fdp.ConsumeIntInRange(0, len(OPS) - 1)]
            x, y = fdp.ConsumeIntInRange(0, 1 << 20), fdp.ConsumeIntInRange(0, 1 << 20)
            extra = fdp.ConsumeBytes(fdp.remaining_bytes()) or b"\x00"
            datagram = mutate(wire.data, op, x, y, other.data, extra)
            target, src = s.node_at(wire.dst), source or wire.src
        if fix_mac:
            datagram = remac(datagram, target.public_key)
        # Actions (cookie replies under load, nothing else) are not carried: they would change the peer.
        target.device.receive_datagram(datagram, src, s.lab.now)
        target.recorder.clear()  # the lab keeps events in memory; a long run must not
        after = fingerprint(target.device)
        if after != self.before[target.name]:
            raise Finding(f"{target.name}: protocol state changed by {datagram.hex()} from {src}")
        self.inputs += 1
        if self.inputs % CHECK_EVERY == 0:
            self.check_tunnel()

    def check_tunnel(self) -> None:
        s = self.session
        for node in s.nodes:
            problems = consistency_problems(node.device, s.lab.now)
            if problems:
                raise Finding(f"{node.name}: {problems}")
        if not s.tunnel_works():
            raise Finding("the tunnel stopped carrying pings")
        self._remember()


def main() -> None:
    harness = Harness()
    atheris.Setup(sys.argv, harness.one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
