import os
import shutil
import signal

import pytest

IS_ROOT = os.geteuid() == 0

# Every event emitted in the tests (and in the wgscope processes they start, which inherit the
# environment) must carry exactly its catalogue fields (wgscope/events.py, EventBus strict).
os.environ["WGSCOPE_STRICT_EVENTS"] = "1"


def pytest_collection_modifyitems(config, items):
    """Root-only tests skip with a reason off root; in CI (root) nothing real may be skipped."""
    for item in items:
        if "root" in item.keywords and not IS_ROOT:
            item.add_marker(pytest.mark.skip(reason="needs root: creates network namespaces and TUN devices"))


def require_tools(*tools: str) -> None:
    """Skip (off CI) or fail (in CI) when a Debian tool the test drives is missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        msg = f"missing tools: {', '.join(missing)} (make test installs them as root)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


# The signals whose handling a library may wire to an asyncio loop (add_signal_handler also
# points the process's signal wakeup fd at that loop).
_WATCHED_SIGNALS = (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM)
_SIGNALS_AT_START = {s: signal.getsignal(s) for s in _WATCHED_SIGNALS}
_WAKEUP_FD_AT_START = signal.set_wakeup_fd(-1)  # reading it means setting it: put it straight back
signal.set_wakeup_fd(_WAKEUP_FD_AT_START)


@pytest.fixture(autouse=True)
def signals_left_as_found():
    """A test leaves the process's signal handling as it found it. A handler left wired to an
    asyncio loop that no longer runs (pyshark's SIGCHLD watcher did) fills that loop's self-pipe,
    and every later child reaped in this process is reported as an unraisable BlockingIOError
    from asyncio's _sighandler_noop, in whichever test happens to be running."""
    yield
    changed = [s for s in _WATCHED_SIGNALS if signal.getsignal(s) != _SIGNALS_AT_START[s]]
    wakeup_fd = signal.set_wakeup_fd(_WAKEUP_FD_AT_START)
    for s in changed:  # put them back, so one leak does not fail every later test
        signal.signal(s, _SIGNALS_AT_START[s])
    assert not changed and wakeup_fd == _WAKEUP_FD_AT_START, (
        f"signal handling left wired: {[s.name for s in changed]}, wakeup fd {wakeup_fd}")
