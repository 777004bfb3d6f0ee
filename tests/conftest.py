import os
import shutil

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
