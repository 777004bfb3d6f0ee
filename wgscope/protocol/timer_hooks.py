"""When timers are armed and what they do when they fire (WP §6.2–6.5; WG-GO device/timers.go).

The hooks mirror wireguard-go's timers* functions one for one, so the two can be read side
by side; the `expired_*` handlers are its expired* callbacks, found through EXPIRY (timer name
-> handler). A handler appends the actions it causes to the `out` list it is given.
"""

from __future__ import annotations

from ..events import HANDSHAKE_GAVE_UP, KEYPAIR_ZEROED, TIMER_FIRED, EventBus
from .entropy import Entropy
from .constants import (
    KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, ZERO_KEY_MATERIAL_AFTER,
)
from .timers import (
    NEW_HANDSHAKE, PERSISTENT_KEEPALIVE, RETRANSMIT_HANDSHAKE, SEND_KEEPALIVE, ZERO_KEY_MATERIAL, TimerWheel,
)


class TimerHooks:
    """Mixed into Device, beside the send methods. The device state it uses (Device.__init__ sets it):"""

    bus: EventBus
    entropy: Entropy
    wheel: TimerWheel
    index_table: dict

    def _jitter(self) -> float:
        return self.entropy.jitter(REKEY_TIMEOUT_JITTER_MAX)

    # -- hooks (WG-GO timers*) --
    # The four hooks of every data packet read `deadline is None` (not pending) in place of the
    # `pending` property, and call the wheel only when there is something to change: at ping
    # rates each runs cold, and a call that finds nothing to do costs as much as one that does
    # (bench/README.md section 16).
    def timers_data_sent(self, peer, now: float) -> None:
        t = peer.timers[NEW_HANDSHAKE]
        if t.deadline is None:
            self.wheel.mod(t, now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + self._jitter(), now)

    def timers_data_received(self, peer, now: float) -> None:
        t = peer.timers[SEND_KEEPALIVE]
        if t.deadline is None:
            self.wheel.mod(t, now + KEEPALIVE_TIMEOUT, now)
        else:
            peer.need_another_keepalive = True

    def timers_any_authenticated_packet_sent(self, peer, now: float) -> None:
        t = peer.timers[SEND_KEEPALIVE]
        if t.deadline is not None:
            self.wheel.cancel(t, now)

    def timers_any_authenticated_packet_received(self, peer, now: float) -> None:
        t = peer.timers[NEW_HANDSHAKE]
        if t.deadline is not None:
            self.wheel.cancel(t, now)

    def timers_handshake_initiated(self, peer, now: float) -> None:
        self.wheel.mod(peer.timers[RETRANSMIT_HANDSHAKE], now + REKEY_TIMEOUT + self._jitter(), now)

    def timers_handshake_complete(self, peer, now: float) -> None:
        self.wheel.cancel(peer.timers[RETRANSMIT_HANDSHAKE], now)
        peer.handshake_attempts = 0
        peer.initiations_since_handshake = 0
        peer.sent_last_minute_handshake = False
        peer.last_handshake = now
        peer.last_handshake_wall = self.wall(now)

    def timers_session_derived(self, peer, now: float) -> None:
        self.wheel.mod(peer.timers[ZERO_KEY_MATERIAL], now + ZERO_KEY_MATERIAL_AFTER, now)

    def timers_any_authenticated_packet_traversal(self, peer, now: float) -> None:
        if peer.persistent_keepalive:
            self.wheel.mod(peer.timers[PERSISTENT_KEEPALIVE], now + peer.persistent_keepalive, now)

    # -- expiry (WG-GO expired*) --
    def fire_timer(self, timer, now: float, out: list) -> None:
        peer = timer.peer
        if self.bus.debug:
            self.bus.emit(TIMER_FIRED, now, peer.name, timer=timer.name)
        EXPIRY[timer.name](self, peer, now, out)

    def expired_retransmit_handshake(self, peer, now: float, out: list) -> None:
        if peer.handshake_attempts > MAX_TIMER_HANDSHAKES:
            dropped = len(peer.staged)
            peer.staged.clear()
            self.bus.emit(HANDSHAKE_GAVE_UP, now, peer.name, attempts=peer.handshake_attempts + 1, dropped=dropped)
            zero = peer.timers[ZERO_KEY_MATERIAL]
            if not zero.pending:
                self.wheel.mod(zero, now + ZERO_KEY_MATERIAL_AFTER, now)
            return
        peer.handshake_attempts += 1
        peer.retries += 1
        self.send_initiation(peer, now, True, out)

    def expired_send_keepalive(self, peer, now: float, out: list) -> None:
        self.send_keepalive(peer, now, "passive", out)
        if peer.need_another_keepalive:
            peer.need_another_keepalive = False
            self.wheel.mod(peer.timers[SEND_KEEPALIVE], now + KEEPALIVE_TIMEOUT, now)

    def expired_new_handshake(self, peer, now: float, out: list) -> None:
        # "Retrying handshake because we stopped hearing back after 15 seconds" (WG-GO)
        self.send_initiation(peer, now, False, out)

    def expired_zero_key_material(self, peer, now: float, out: list) -> None:
        self.zero_key_material(peer, now, "zero_key_material_timer")

    def expired_persistent_keepalive(self, peer, now: float, out: list) -> None:
        if peer.persistent_keepalive:
            self.send_keepalive(peer, now, "persistent", out)

    def zero_key_material(self, peer, now: float, reason: str) -> None:
        kps = peer.keypairs
        indices = [k.local_index for k in kps.all()]
        for k in kps.all():
            self.index_table.pop(k.local_index, None)
            k.zero()
        kps.current = kps.previous = kps.next = None
        hs = peer.handshake
        if hs.local_index:
            self.index_table.pop(hs.local_index, None)
            indices.append(hs.local_index)
        hs.zero()
        self.bus.emit(KEYPAIR_ZEROED, now, peer.name, local_indices=indices, reason=reason)

    def stop_timers(self, peer, now: float) -> None:
        for t in peer.timers.values():
            self.wheel.cancel(t, now)


# What each timer does when it expires (WG-GO timers.go: peer.timers.* = newTimer(expired*)).
EXPIRY = {
    RETRANSMIT_HANDSHAKE: TimerHooks.expired_retransmit_handshake,
    SEND_KEEPALIVE: TimerHooks.expired_send_keepalive,
    NEW_HANDSHAKE: TimerHooks.expired_new_handshake,
    ZERO_KEY_MATERIAL: TimerHooks.expired_zero_key_material,
    PERSISTENT_KEEPALIVE: TimerHooks.expired_persistent_keepalive,
}
