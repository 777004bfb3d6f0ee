"""pyshark drives tshark through the main thread's current asyncio loop, and attaches an asyncio
SafeChildWatcher to it (its fix for a reaping race of the thread-based watcher: "Unknown child
process pid, will report returncode 255"). That watcher is a SIGCHLD handler plus the signal
wakeup fd, wired to the loop; pyshark never detaches it. Left wired to a loop that never runs
again, the loop's self-pipe fills after a few hundred children, and every child any later test
reaps is then reported as an unraisable BlockingIOError from asyncio's _sighandler_noop.

So each read runs on a loop of its own and, when done, puts the watcher back to asyncio's
default (closing pyshark's unwires SIGCHLD and the wakeup fd) and closes the loop."""

import asyncio


def read_packets(path, **kwargs) -> list:
    import pyshark

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        cap = pyshark.FileCapture(str(path), **kwargs)
        try:
            return list(cap)
        finally:
            cap.close()
    finally:
        asyncio.set_child_watcher(None)  # closes pyshark's SafeChildWatcher: SIGCHLD unwired
        asyncio.set_event_loop(None)
        loop.close()
