"""The observer's handshake half: initiations, responses and cookie replies as seen on the wire
(WP §5.4.2-5.4.4, §5.4.7, §6.4), with the keys the user gave and nothing guessed."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ..protocol.constants import (
    MAX_TIMER_HANDSHAKES, REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX,
    KEEPALIVE_TIMEOUT,
)
from ..protocol.crypto import MAC, XAEAD_OPEN, AuthenticationError
from ..protocol.messages import parse_cookie_reply, parse_initiation, parse_response
from ..protocol import tai64n
from .entropy import EARLY as EARLY_TOLERANCE, LATE as LATE_TOLERANCE
from .keys import KeyRing
from .model import CookieExchange, Flow, Handshake, Party, Session, endpoint_text
from . import passive


class HandshakeObserver:
    """Mixed into observer.Observer."""

    _psk_warned = False

    # ================================================================ initiation
    def _initiation(self, src: tuple, dst: tuple, data: bytes) -> None:
        r, kr, now, frame = self.r, self.keyring, self.now, self.frame
        r.kinds["initiation"] += 1
        msg = parse_initiation(data)
        dup = self._seen_handshake_msgs.get(data)
        self._seen_handshake_msgs.setdefault(data, frame)
        # Who is it for?  mac1 is keyed by the responder's public key (WP §5.4.4).
        responder_key = passive.mac1_owner(kr, data)
        mac1_ok: bool | None = True if responder_key else None
        if responder_key is None:
            known = self._by_endpoint.get(dst)
            if known is not None and known.public_key is not None and known.public_key in kr.static_public:
                mac1_ok = False
        responder = self._party(dst, responder_key)
        view = None
        initiator_key = None
        if responder_key is not None:
            view = passive.open_initiation(kr, msg, responder_key)
            initiator_key = view.initiator
        initiator = self._party(src, initiator_key)
        initiator.initiations += 1
        initiator.tx_bytes += len(data)  # as WG-GO's txBytes: handshake messages count too
        hs = Handshake(len(r.handshakes) + 1, frame, now, initiator, responder, msg.sender, src, dst, msg.ephemeral,
                       mac1_ok=mac1_ok, mac2=data[-16:] != bytes(16), identified=initiator_key is not None, view=view,
                       mac1_bytes=data[-32:-16])
        if view is not None:
            hs.timestamp = view.timestamp
            hs.reason = view.failure
        elif responder_key is None:
            hs.reason = "responder_unknown"
        r.handshakes.append(hs)
        self._note(f"initiation hs={hs.id} sender=0x{msg.sender:08x}")
        self._mark("initiation", initiator, msg.sender)
        # Retransmission of an unanswered initiation? (WP §6.4)
        pair = (initiator.id, responder.id)
        prev = self._last_initiation.get(pair)
        if prev is not None and prev.outcome == "unanswered" and now - prev.time < REKEY_ATTEMPT_TIME + REKEY_TIMEOUT \
                and dup is None:
            hs.retry_of = prev
            hs.attempt = prev.attempt + 1
            self._check_retry_spacing(prev, hs)
        self._last_initiation[pair] = hs
        self._check_rekey_start(hs)
        self._sent_authenticated(initiator, keepalive=False)
        if not self._judge_initiation(hs, msg, data, dup):
            return  # dropped before it could be answered
        old = self._pending.get(msg.sender)
        if old is None or old.outcome != "unanswered":
            self._pending[msg.sender] = hs
        self._handshake_by_index[msg.sender] = hs

    def _judge_initiation(self, hs: Handshake, msg, data: bytes, dup: int | None) -> bool:
        """The verdicts the responder would reach, as far as the keys tell; False when it drops it
        before anything else (bad mac1, a byte-for-byte copy)."""
        frame, src, responder, initiator = self.frame, hs.src, hs.responder, hs.initiator
        initiator_key = initiator.public_key if hs.identified else None
        if hs.mac1_ok is False:
            hs.outcome, hs.reason = "rejected", "bad_mac1"
            self._find("bad_mac1", [frame], f"initiation from {endpoint_text(src)}: mac1 does not match "
                       f"{responder.name}'s public key", responder)
            return False
        if hs.mac2:
            self._check_mac2(hs, data, src, responder, "initiation")
        if dup is not None:
            self._find("replayed", [dup, frame], f"initiation 0x{msg.sender:08x} repeated byte for byte", initiator)
            hs.outcome, hs.reason = "rejected", "replayed"
            return False
        if hs.view is not None and hs.view.failure == "decryption_failed":
            hs.outcome = "rejected"
            self._find("decryption_failed", [frame], f"initiation to {responder.name} does not decrypt with its key",
                       responder)
        if hs.timestamp is not None and initiator_key is not None:
            last = self._last_timestamp.get(initiator_key)
            if last is not None and not tai64n.after(hs.timestamp, last):
                hs.reason = "stale_timestamp"
                self._find("replayed", [frame], f"initiation from {initiator.name} carries a timestamp not newer "
                           "than an earlier one (replay, WP §5.1)", initiator)
            else:
                self._last_timestamp[initiator_key] = hs.timestamp
        return True

    def _check_retry_spacing(self, prev: Handshake, hs: Handshake) -> None:
        gap = hs.time - prev.time
        lo, hi = REKEY_TIMEOUT - EARLY_TOLERANCE, REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + LATE_TOLERANCE
        if prev.attempt > MAX_TIMER_HANDSHAKES:
            return  # the initiator gave up after the last attempt; a later one starts afresh
        if not lo <= gap <= hi:
            self._find("retry_timing", [prev.frame, hs.frame],
                       f"retry {hs.attempt} came {gap:.3f} s after attempt {prev.attempt}; the protocol retries "
                       f"after REKEY_TIMEOUT {REKEY_TIMEOUT:g} s + up to {REKEY_TIMEOUT_JITTER_MAX * 1000:.0f} ms",
                       hs.initiator, gap=round(gap, 6))

    def _check_rekey_start(self, hs: Handshake) -> None:
        """A new handshake from the initiator of a live session: a rekey (WP §6.2)."""
        sess = self._current.get((hs.initiator.id, hs.responder.id))
        if sess is None or sess.handshake is None or hs.retry_of is not None:
            return
        age = hs.time - sess.created
        hs_note = f"rekey of session {sess.id} at age {age:.1f} s"
        self._note(hs_note)
        r2i = sess.r2i
        heard_recently = r2i is not None and r2i.last_time is not None and \
            hs.time - r2i.last_time < KEEPALIVE_TIMEOUT + REKEY_TIMEOUT
        if age < REKEY_AFTER_TIME - EARLY_TOLERANCE and heard_recently and age > REKEY_TIMEOUT + 1:
            self._find("rekey_timing", [sess.handshake.response_frame or sess.handshake.frame, hs.frame],
                       f"{hs.initiator.name} rekeyed session {sess.id} after {age:.1f} s while it was in use; "
                       f"REKEY_AFTER_TIME is {REKEY_AFTER_TIME:g} s", hs.initiator, age=round(age, 3))
        sess.rekey_due_since = None

    def _check_mac2(self, _hs, data: bytes, src: tuple, receiver: Party, what: str) -> None:
        held = self._cookies.get((src, receiver.id))
        if held is None:
            return
        cookie, cookie_frame = held
        end = len(data) - 16
        if MAC(cookie, data[:end]) != data[end:]:
            self._find("bad_mac2", [cookie_frame, self.frame], f"{what} from {endpoint_text(src)}: mac2 does not "
                       f"match the cookie {receiver.name} sent in frame {cookie_frame}", receiver)

    # ================================================================ response
    def _response(self, src: tuple, dst: tuple, data: bytes) -> None:
        r, kr, now, frame = self.r, self.keyring, self.now, self.frame
        r.kinds["response"] += 1
        msg = parse_response(data)
        dup = self._seen_handshake_msgs.get(data)
        self._seen_handshake_msgs.setdefault(data, frame)
        hs = self._handshake_by_index.get(msg.receiver)
        self._mark("response", hs.responder if hs else None, msg.sender)
        if hs is None:
            responder = self._party(src, None)
            responder.responses += 1
            responder.tx_bytes += len(data)
            self._sent_authenticated(responder, keepalive=False)
            self._find("unknown_receiver_index", [frame], f"response for receiver index 0x{msg.receiver:08x}, "
                       "which no initiation in the capture created", responder)
            return
        responder = hs.responder
        self._moved(responder, src)
        responder.responses += 1
        responder.tx_bytes += len(data)
        self._sent_authenticated(responder, keepalive=False)
        if dup is not None:
            self._find("replayed", [dup, frame], f"response 0x{msg.sender:08x} repeated byte for byte", responder)
            return
        if hs.response_frame is not None:
            self._find("replayed", [hs.response_frame, frame], f"a second response to initiation frame {hs.frame}",
                       responder)
            return
        # mac1 of a response is keyed by the initiator's public key.
        init_key = hs.initiator.public_key
        if init_key is not None and init_key in kr.static_public and not passive.mac1_valid(init_key, data, kr):
            self._find("bad_mac1", [frame], f"response from {responder.name}: mac1 does not match "
                       f"{hs.initiator.name}'s public key", responder)
            return
        if data[-16:] != bytes(16):
            self._check_mac2(None, data, src, hs.initiator, "response")
        hs.outcome = "unverified"  # until the response opens under known keys, or the initiator uses it
        hs.response_frame, hs.response_time, hs.responder_index = frame, now, msg.sender
        hs.response_ephemeral = msg.ephemeral
        # The earlier attempts of this chain were answered by proxy: they are retries, not failures.
        sess = Session(len(r.sessions) + 1, hs.initiator, responder, hs.sender_index, msg.sender, now, hs)
        hs.session = sess
        sess.i2r = Flow(hs.initiator, msg.sender)
        sess.r2i = Flow(responder, hs.sender_index)
        self._open_session(hs, sess, msg)
        r.sessions.append(sess)
        self._flows[msg.sender] = (sess, sess.i2r)
        self._flows[hs.sender_index] = (sess, sess.r2i)
        pair = (hs.initiator.id, responder.id)
        self._current[pair] = sess
        self._pending.pop(hs.sender_index, None)
        self._note(f"response hs={hs.id} session={sess.id} indices=0x{hs.sender_index:08x}/0x{msg.sender:08x}"
                   + ("" if sess.decryptable else f" sealed={sess.sealed_reason}"))

    def _open_session(self, hs: Handshake, sess: Session, msg) -> None:
        """The session's keys, if the known keys derive them (passive.py): verified, or why not."""
        r, frame, responder = self.r, self.frame, hs.responder
        view = hs.view
        if view is not None and view.chaining_key:
            rv = passive.open_response(self.keyring, view, hs.ephemeral, msg)
            if rv.send_i is not None:
                # Opened under the initiator's own PSK: the initiator accepts it. Opened under another
                # side's (the responder's) it proves nothing of the initiator's: "unverified" until the
                # initiator sends on the session (observer.finish), never a guess.
                if rv.initiator_psk:
                    hs.outcome = "completed"
                else:
                    hs.reason = "unconfirmed"
                sess.decryptable = True
                sess.i2r.cipher = ChaCha20Poly1305(rv.send_i)
                sess.r2i.cipher = ChaCha20Poly1305(rv.send_r)
            else:
                sess.sealed_reason = hs.reason = rv.failure
                if rv.failure == "decryption_failed":
                    hs.outcome = "rejected"
                    self._find("decryption_failed", [hs.frame, frame], f"response from {responder.name} does not "
                               "authenticate under the known keys (pre-shared keys differ, or the message was "
                               "altered)", responder)
                elif rv.failure == "psk_unknown" and not self._psk_warned:
                    self._psk_warned = True
                    r.notices.append("the pre-shared key of a handshake is not known (no PRESHARED_KEY line, no "
                                     "configuration): its response is not verified and its data stays sealed")
        else:
            sess.sealed_reason = hs.reason or "no_keys"
        if sess.sealed_reason in ("no_ephemeral_key",) and not self._ephemeral_warned:
            self._ephemeral_warned = True
            r.notices.append("static private keys identify the peers and every handshake, but transport data "
                             "needs ephemeral keys (a key log with LOCAL_EPHEMERAL_PRIVATE_KEY) to decrypt: "
                             "each session's keys come from a fresh ephemeral Diffie-Hellman (WP §5.4)")

    # ================================================================ cookie reply
    def _cookie_reply(self, src: tuple, dst: tuple, data: bytes) -> None:
        r, now, frame = self.r, self.now, self.frame
        r.kinds["cookie_reply"] += 1
        msg = parse_cookie_reply(data)
        hs = self._handshake_by_index.get(msg.receiver)
        sender = hs.responder if hs is not None else self._party(src, None)
        self._moved(sender, src)
        self._mark("cookie_reply", sender, msg.receiver)
        sender.cookie_replies += 1
        if hs is None:
            self._find("unknown_receiver_index", [frame], f"cookie reply for receiver index 0x{msg.receiver:08x}, "
                       "which no handshake in the capture created", sender)
            return
        hs.cookie_frames.append(frame)
        decrypted = False
        # The cookie is sealed with HASH(LABEL_COOKIE || S_pub of the sender) and the mac1 it answers
        # (WP §5.4.7): public keys suffice to read it.
        if sender.public_key is not None:
            raw = hs.mac1_bytes
            try:
                cookie = XAEAD_OPEN(KeyRing.cookie_key(sender.public_key), msg.nonce, msg.encrypted_cookie, raw)
                self._cookies[(hs.src, sender.id)] = (cookie, frame)
                decrypted = True
            except AuthenticationError:
                self._find("decryption_failed", [hs.frame, frame], f"cookie reply from {sender.name} does not "
                           "decrypt against the mac1 it answers", sender)
        r.cookies.append(CookieExchange(frame, now, sender, hs.initiator, hs, decrypted, msg.nonce))
        self._note(f"cookie_reply hs={hs.id}" + (" decrypted" if decrypted else ""))

