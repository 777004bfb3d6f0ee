"""Handshake look-ahead: which X25519s an adapter may compute before their message's turn.

Opening an initiation starts with DH(Sr_priv, Ei_pub) (WP §5.4.2), a function of our static key
and the message alone. libsodium computes X25519 without the GIL, so an adapter with a second
core may compute it for the initiations of one wake-up on another thread while the device
answers the earlier ones (runtime/handshake_ahead.py). This module is the core's side:

- `candidates` picks, from one wake-up's datagrams, the initiations the receive path would open:
  the right size, mac1 valid and, under load, mac2 valid and the source not over its rate limit
  (read, not spent), at most one per source. A sender gets no more X25519 work out of the
  responder than it gets today, only earlier.
- the device takes a result only for the ephemeral it was computed from, with the same static
  key (`Device.receive_datagrams` → noise.open_initiation(dh=...)), else computes it inline.

Everything the device decides, every event and its order, every draw of randomness and every
state change is the inline path's: a DH computed ahead equals the one computed in turn. Only
that DH moves, not the response's (their ephemeral is drawn in order from the device's Entropy,
so a seeded lab or a replay stays byte-for-byte the same). The live node's Entropy, which draws
from the OS, may also take the response's ephemeral key pair from the adapter's thread, made there
with its public key (`Entropy.ephemeral_pairs`): random either way. The thread lives in the adapter.
"""

from __future__ import annotations

from .constants import INITIATION_SIZE, MESSAGE_INITIATION
from .cookie import endpoint_bytes

EPHEMERAL = slice(8, 40)  # msg.ephemeral in an initiation: type(1) reserved(3) sender(4) ephemeral(32)


def candidates(device, batch, now: float) -> list[bytes]:
    """The ephemeral public keys of the initiations among `batch` ((datagrams, endpoint, ...) per
    receive of one wake-up) that the receive path would open, as far as can be told without
    changing any state."""
    checker, limiter = device.cookie_checker, device.ratelimiter
    loaded = device.loaded_at(now)
    seen: set = set()
    out = []
    checked: dict = {}  # the macs found valid, for the receive path's own checks (CookieChecker.checked_ahead)
    checker.checked_ahead = {}  # the last wake-up's are stale: nothing of it is handed over again
    for item in batch:
        endpoint = item[1]
        for data in item[0]:
            if len(data) != INITIATION_SIZE or data[0] != MESSAGE_INITIATION or endpoint[0] in seen:
                continue
            data = bytes(data)
            if data[1:4] != b"\0\0\0" or not checker.check_mac1(data):
                continue
            if loaded:
                src = endpoint_bytes(endpoint[0], endpoint[1])
                if not checker.check_mac2(data, src, now):
                    checked[data] = (None, None)
                    continue
                checked[data] = (src, checker.secret)
                if not limiter.would_allow(endpoint[0], now):
                    continue
            else:
                checked[data] = (None, None)
            seen.add(endpoint[0])  # one per source: what one sender can have computed ahead
            out.append(data[EPHEMERAL])
    checker.checked_ahead = checked
    return out
