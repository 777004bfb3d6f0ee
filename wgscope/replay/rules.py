"""The protocol's rules, in words, for the sentences a divergence is reported in.

Each names the constant and where it comes from (protocol/constants.py cites the sources), so a
finding reads like the whitepaper: "frame 212: ... sent an initiation 4.2 s after its previous
one; the protocol retries after REKEY_TIMEOUT + jitter".
"""

from __future__ import annotations

from ..protocol.constants import (
    KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT,
    REKEY_TIMEOUT_JITTER_MAX,
)

JITTER = f"up to {REKEY_TIMEOUT_JITTER_MAX * 1000:.0f} ms jitter"

TIMER_RULES = {
    "retransmit_handshake": f"an unanswered initiation is retried after REKEY_TIMEOUT ({REKEY_TIMEOUT:g} s) + "
                            f"{JITTER}, for REKEY_ATTEMPT_TIME ({REKEY_ATTEMPT_TIME:g} s) (WP §6.4)",
    "send_keepalive": f"a passive keepalive follows data received by KEEPALIVE_TIMEOUT ({KEEPALIVE_TIMEOUT:g} s) when "
                      "nothing was sent back (WP §6.5)",
    "new_handshake": f"a handshake starts KEEPALIVE_TIMEOUT + REKEY_TIMEOUT "
                     f"({KEEPALIVE_TIMEOUT + REKEY_TIMEOUT:g} s) + {JITTER} after data sent with nothing received "
                     "(WP §6.5)",
    "persistent_keepalive": "a keepalive every persistent-keepalive interval of silence (WP §6.5)",
    "zero_key_material": f"key material is erased after 3 x REJECT_AFTER_TIME ({3 * REJECT_AFTER_TIME:g} s) without "
                         "a new handshake (WP §6.3)",
}

ONE_PER_REKEY_TIMEOUT = (f"the protocol sends at most one initiation per REKEY_TIMEOUT ({REKEY_TIMEOUT:g} s); "
                         + TIMER_RULES["retransmit_handshake"])
GIVE_UP = (f"the protocol retries for REKEY_ATTEMPT_TIME ({REKEY_ATTEMPT_TIME:g} s) and then gives up (WP §6.4); "
           "only new data from the TUN starts another handshake, and no capture shows data before a session exists")
REKEY_ON_SEND = f"data sent on a keypair older than REKEY_AFTER_TIME ({REKEY_AFTER_TIME:g} s) starts a rekey (WP §6.2)"
REJECT = f"no keypair is used past REJECT_AFTER_TIME ({REJECT_AFTER_TIME:g} s) or REJECT_AFTER_MESSAGES (WP §6.1)"


def timer_cause(names: list[str]) -> str:
    """What a tick's output came from, for the sentence."""
    if not names:
        return "timer"
    return "timer " + ", ".join(names) + ": " + "; ".join(TIMER_RULES.get(n, n) for n in names)
