"""A re-executed side's load state: forced load (`wgscope up --force-under-load`) is in no capture.

The live node forced under load sets it once (`Device.set_forced_load(True)`) and emits
`under_load_entered` once. What the capture shows is its effect: a handshake message the node
answered with a cookie reply, when the core's own measure of load (the handshake rate it sees,
Device.report_backlog) does not explain one. From the first such message the side stays forced,
as the node did, until a message shows the forcing had ended: one the node took without a cookie
reply although it carried no mac2 (all zeros: its sender had no cookie).

While forced, a message the node took carries a mac2 made with the cookie the node handed out.
The cookie secret is in no capture, so the re-executed core handed out a cookie of its own; the
message is fed with the mac2 its sender would have made with that one (WP §5.4.4: mac2 =
MAC(cookie, msg[:-16]); cookie = MAC(secret, source address and port), §5.4.7). The node's own
check of the real mac2 is vouched for by its answer: a message failing it gets a cookie reply.
"""

from __future__ import annotations

from ..protocol.constants import INITIATION_SIZE, MAC_SIZE, MESSAGE_INITIATION, MESSAGE_RESPONSE, RESPONSE_SIZE
from ..protocol.cookie import endpoint_bytes
from ..protocol.crypto import MAC
from ..protocol.messages import first_index
from .entropy import CaptureEntropy

_HANDSHAKE = ((INITIATION_SIZE, MESSAGE_INITIATION), (RESPONSE_SIZE, MESSAGE_RESPONSE))
_NO_MAC2 = bytes(MAC_SIZE)


def load_for(device, entropy: CaptureEntropy, data: bytes, src: tuple, t: float) -> bytes:
    """Set the device's load as the node's was for this datagram; return what to feed it."""
    if not data or (len(data), data[0]) not in _HANDSHAKE:
        return data
    cookie = entropy.answered_with_cookie(first_index(data))
    if not device.force_under_load:
        if cookie and t >= device.under_load_until:  # the core's own load measure does not explain it
            device.set_forced_load(True, t)
        return data
    if cookie or not device.cookie_checker.check_mac1(data):
        return data  # answered with a cookie, as forced; or a message any node drops (bad mac1)
    if data[-MAC_SIZE:] == _NO_MAC2:
        device.set_forced_load(None, t)  # taken without a cookie: the forcing had ended
        return data
    body = data[:-MAC_SIZE]
    return body + MAC(MAC(device.cookie_checker.secret, endpoint_bytes(src[0], src[1])), body)
