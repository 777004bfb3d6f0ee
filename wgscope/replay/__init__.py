"""Replay a capture through the protocol code and explain what happened in it.

    from wgscope.replay import replay_capture
    result = replay_capture("captures/sample-lab.pcapng")       # keys from the capture's DSB
    result.sessions, result.handshakes, result.findings
"""

from __future__ import annotations

from .driver import ReplayInputError, replay_capture

__all__ = ["ReplayInputError", "replay_capture"]
