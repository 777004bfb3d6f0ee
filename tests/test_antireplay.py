from wgscope.protocol.constants import REJECT_AFTER_MESSAGES, REPLAY_WINDOW_SIZE
from wgscope.protocol.antireplay import DUPLICATE, LIMIT, TOO_OLD, AntiReplayWindow


def test_in_order_and_duplicates():
    w = AntiReplayWindow()
    for c in range(100):
        assert w.check(c) is None
    assert w.check(50) == DUPLICATE
    assert w.check(99) == DUPLICATE
    assert w.check(0) == DUPLICATE


def test_out_of_order_within_window():
    w = AntiReplayWindow()
    assert w.check(1000) is None
    assert w.check(1000 - REPLAY_WINDOW_SIZE) is None  # exactly the window's edge
    assert w.check(999) is None
    assert w.check(999) == DUPLICATE


def test_too_old_after_slide():
    w = AntiReplayWindow()
    assert w.check(20000) is None
    assert w.check(20000 - REPLAY_WINDOW_SIZE - 1) == TOO_OLD
    assert w.check(20000 - REPLAY_WINDOW_SIZE) is None
    # a far jump clears the whole ring: old bits do not linger as false duplicates
    assert w.check(20000 + 10 * REPLAY_WINDOW_SIZE) is None
    assert w.check(20000 + 10 * REPLAY_WINDOW_SIZE - 5) is None
    assert w.check(20000) == TOO_OLD


def test_far_future_counter_then_window_moves():
    w = AntiReplayWindow()
    assert w.check(0) is None
    assert w.check(2**40) is None
    assert w.check(1) == TOO_OLD
    assert w.check(2**40 - 1) is None
    assert w.check(2**40) == DUPLICATE


def test_counter_limits():
    w = AntiReplayWindow()
    assert w.check(REJECT_AFTER_MESSAGES) == LIMIT
    assert w.check(2**64 - 1) == LIMIT
    assert w.check(REJECT_AFTER_MESSAGES - 1) is None
    assert w.check(REJECT_AFTER_MESSAGES - 1) == DUPLICATE
    assert w.check(REJECT_AFTER_MESSAGES - 2) is None


def test_ring_reuse_does_not_leak_bits():
    """Bits from a block that wrapped around the ring must be cleared on the slide."""
    w = AntiReplayWindow()
    for c in range(0, 64 * 200, 7):
        assert w.check(c) is None, c
    for c in range(64 * 200 - REPLAY_WINDOW_SIZE + 1, 64 * 200, 7):
        if c % 7:
            assert w.check(c) is None, c
