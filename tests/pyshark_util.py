"""pyshark drives tshark through the main thread's current event loop; an earlier test's
asyncio.run() leaves the thread without one, so give it one back before reading."""

import asyncio


def read_packets(path, **kwargs) -> list:
    import pyshark

    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
        if loop.is_closed():
            raise RuntimeError
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    cap = pyshark.FileCapture(str(path), **kwargs)
    try:
        return list(cap)
    finally:
        cap.close()
