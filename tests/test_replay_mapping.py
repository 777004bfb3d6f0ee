"""load_keys walks a capture's blocks for its secrets, then replay reads the same file as columns:
one mapping of the file serves both (blockwalk.mapped), never one of a file that changed since."""

from __future__ import annotations

import numpy as np
import pytest

from wgscope.replay import blockwalk
from wgscope.replay.columns import read_columns, secrets_of
from wgscope.runtime.lab import LAB_EPOCH, Lab
from wgscope.sinks.capture import CaptureWriter


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    lab = Lab(seed=11)
    a, b = lab.alpha_bravo(connect=False)
    path = tmp_path_factory.mktemp("mapping") / "alpha.pcapng"
    cap = CaptureWriter(path, a.bus, wall_offset=LAB_EPOCH, name="alpha", warn=None)
    lab.connect(a, b)
    for i in range(30):
        a.ping("10.0.0.2", seq=i)
    lab.run(2)
    cap.close()
    return path


def _same(x, y) -> None:
    assert (x.frames, x.times, x.src, x.dst) == (y.frames, y.times, y.src, y.dst)
    assert [None if p is None else bytes(p) for p in x.payload] == [None if p is None else bytes(p) for p in y.payload]
    for name in ("transport", "receiver", "counter"):
        assert np.array_equal(getattr(x, name), getattr(y, name))


def test_the_mapping_secrets_of_made_is_the_one_read_columns_reads(capture, monkeypatch):
    blockwalk._LAST_WALK[:] = None, None, None
    fresh = read_columns(capture)
    made = []
    real = blockwalk.mmap.mmap
    monkeypatch.setattr(blockwalk.mmap, "mmap", lambda *a, **k: made.append(1) or real(*a, **k))
    assert secrets_of(capture)  # the DSB's key log
    assert blockwalk._LAST_WALK[2] is not None
    shared = read_columns(capture)
    assert len(made) == 1 and blockwalk._LAST_WALK[2] is None  # taken, not kept twice
    _same(shared, fresh)


def test_a_file_changed_after_the_walk_is_mapped_and_walked_again(capture, tmp_path):
    copy = tmp_path / "copy.pcapng"
    copy.write_bytes(capture.read_bytes())
    assert secrets_of(copy)
    assert blockwalk._LAST_WALK[2] is not None
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 2])  # another size: another identity
    cols = read_columns(copy)
    blockwalk._LAST_WALK[:] = None, None, None
    _same(cols, read_columns(copy))  # what a reading with nothing left over gives
    assert len(cols) < len(read_columns(capture))


def test_a_file_of_packet_block_types_gets_no_chain_arrays():
    """The chain's arrays hold the offsets of words equal to 6; a file that is mostly such words
    (no capture) would make them several times its own size: past one in 16 words the walk's plain
    loop takes the file instead."""
    from wgscope.replay.blockwalk import _Chain

    chain = _Chain(np.full(1 << 18, 6, dtype="<u4").tobytes())
    assert len(chain.cand) == 0 and chain.follow(0) is None
    sparse = np.zeros(1 << 18, dtype="<u4")
    sparse[::64] = 6  # one in 64 words: still chained (none of these is a real block)
    assert len(_Chain(sparse.tobytes()).cand) == len(sparse) // 64
