"""A UAPI set: device and peer changes, applied line by line as the request streams in."""

from __future__ import annotations

import errno as E
from typing import Any, Iterable

from ..events import CONFIG_CHANGED, UAPI_SET
from ..protocol.crypto import same_secret
from ..protocol.device import ConfigurationError
from ..protocol.noise import ZERO_PSK
from ..protocol.peer import Peer
from .values import (
    _UNSET, UapiError, _invalid, _leading_name, parse_allowed_ip, parse_endpoint, parse_key, parse_true, parse_uint,
)

class _PeerChange:
    """What one public_key block asks for; applied when the block ends (WG-GO handlePostConfig)."""

    __slots__ = ("key", "peer", "dummy", "psk", "endpoint", "keepalive", "replace_ips", "ips")

    def __init__(self, key: bytes, peer: Peer | None, dummy: bool) -> None:
        self.key = key
        self.peer = peer  # None: created by this block, added to the device when it ends
        self.dummy = dummy  # our own key, removed or update_only: lines are parsed, not applied
        self.psk: Any = _UNSET
        self.endpoint: Any = _UNSET
        self.keepalive: int | None = None
        self.replace_ips = False
        self.ips: list = []


class SetOperation:
    """One `set=1` request, fed a line at a time; changes take effect as their block ends.

    Like wireguard-go, what was applied before an error stays applied; the peer block being
    parsed when the error came is still completed with what it had parsed."""

    def __init__(self, node) -> None:
        self.node = node
        self.device = node.device
        self.now = node.now()
        self.in_device_section = True
        self.change: _PeerChange | None = None
        self.actions: list = []
        self.lines = 0

    # -- lines
    def line(self, text: str) -> None:
        self.lines += 1
        key, sep, value = text.partition("=")
        if not sep:
            raise UapiError(E.EPROTO, f"line {self.lines}: no '=' after {_leading_name(text)!r}")
        if key == "public_key":
            self.in_device_section = False
            self._end_peer()
            self._begin_peer(parse_key(value, "public_key"))
        elif self.in_device_section:
            self._device_line(key, value)
        else:
            self._peer_line(key, value)

    def _device_line(self, key: str, value: str) -> None:
        device, now = self.device, self.now
        if key == "private_key":
            device.set_private_key(parse_key(value, "private_key"), now)
        elif key == "listen_port":
            port = parse_uint(value, "listen_port", 16)
            if port == 0 or port != device.listen_port:
                try:
                    bound = self.node.set_listen_port(port)
                except OSError as e:
                    raise UapiError(E.EADDRINUSE, f"listen_port {port}: {e.strerror or e}") from None
                device.listen_port = bound if bound is not None else port
                device.bus.emit(CONFIG_CHANGED, now, None, setting="listen_port", value=str(device.listen_port))
        elif key == "fwmark":
            mark = parse_uint(value, "fwmark", 32)
            if mark != device.fwmark:
                setter = getattr(self.node, "set_fwmark", None)
                if setter is not None:
                    try:
                        setter(mark)
                    except OSError as e:  # WG-GO answers a failed BindSetMark with EADDRINUSE too
                        raise UapiError(E.EADDRINUSE, f"fwmark {mark}: {e.strerror or e}") from None
                device.fwmark = mark
                device.bus.emit(CONFIG_CHANGED, now, None, setting="fwmark", value=str(mark))
        elif key == "replace_peers":
            parse_true(value, "replace_peers")
            device.remove_all_peers(now)
        else:
            raise _invalid(f"line {self.lines}: {key[:40]!r} is not a device key")

    def _begin_peer(self, key: bytes) -> None:
        device = self.device
        if key == device.public_key:  # WG-GO: a peer with the device's own key is ignored
            self.change = _PeerChange(key, None, dummy=True)
        else:
            self.change = _PeerChange(key, device.peers.get(key), dummy=False)

    def _peer_line(self, key: str, value: str) -> None:
        ch = self.change
        if key == "allowed_ip":
            ch.ips.append(parse_allowed_ip(value))
        elif key == "endpoint":
            ch.endpoint = parse_endpoint(value)
        elif key == "preshared_key":
            ch.psk = parse_key(value, "preshared_key")
        elif key == "persistent_keepalive_interval":
            ch.keepalive = parse_uint(value, "persistent_keepalive_interval", 16)
        elif key == "replace_allowed_ips":
            parse_true(value, "replace_allowed_ips")
            ch.replace_ips = True
            ch.ips.clear()
        elif key == "remove":
            parse_true(value, "remove")
            if not ch.dummy and ch.peer is not None:
                self.device.remove_peer(ch.key, self.now)
            ch.dummy = True
        elif key == "update_only":
            parse_true(value, "update_only")
            if ch.peer is None:  # would have been created: leave it out
                ch.dummy = True
        elif key == "protocol_version":
            if value != "1":
                raise _invalid(f"protocol_version {value[:20]!r} is not supported (only 1)")
        else:
            raise _invalid(f"line {self.lines}: {key[:40]!r} is not a peer key")

    # -- the end of a peer block
    def _end_peer(self) -> None:
        ch, self.change = self.change, None
        if ch is None or ch.dummy:
            return
        device, now = self.device, self.now
        psk = None if ch.psk is _UNSET else ch.psk
        if ch.peer is None:
            try:
                peer = device.add_peer(ch.key, preshared_key=psk, now=now,
                                       endpoint=None if ch.endpoint is _UNSET else ch.endpoint,
                                       allowed_ips=ch.ips, persistent_keepalive=ch.keepalive or 0)
            except ConfigurationError as e:
                raise _invalid(f"peer: {e}") from None
            if ch.keepalive and peer.endpoint is not None:
                # Turning persistent keepalive on sends one at once (WG-GO pkaOn, kernel set_peer).
                self.actions += device.send_keepalive_now(peer, now)
            return
        peer = ch.peer
        if ch.psk is not _UNSET and not same_secret(ch.psk or ZERO_PSK, peer.preshared_key):
            device.set_preshared_key(peer, ch.psk, now)
        if ch.endpoint is not _UNSET:
            device.set_endpoint(peer, ch.endpoint, now)
        if ch.replace_ips or ch.ips:
            have = device.allowed_ips.networks(peer)
            # networks(peer) lists only what the peer owns now; skip a change that changes nothing
            # (wg syncconf resends every peer's allowed IPs with replace_allowed_ips=true).
            unchanged = set(have) == set(ch.ips) if ch.replace_ips else set(ch.ips) <= set(have)
            if not unchanged:
                device.set_allowed_ips(peer, ch.ips, ch.replace_ips, now)
        if ch.keepalive is not None and ch.keepalive != peer.persistent_keepalive:
            self.actions += device.set_persistent_keepalive(peer, ch.keepalive, now)

    def finish(self) -> list:
        """The blank line: complete the last peer block; returns the actions to carry out."""
        self._end_peer()
        return self.actions

    def abort(self) -> list:
        """After an error: keep what was applied, complete the block in progress (WG-GO keeps it too)."""
        try:
            self._end_peer()
        except UapiError:
            pass
        return self.actions


def handle_set(node, lines: Iterable[str]) -> int:
    """Apply the lines of one set request (without `set=1` and the blank line); 0 or an errno."""
    op = SetOperation(node)
    code, reason = 0, None
    try:
        for text in lines:
            op.line(text)
        actions = op.finish()
    except UapiError as e:
        code, reason = e.code, e.reason
        actions = op.abort()
    _report_set(node, op, code, reason)
    node.apply(actions)
    return code


def _report_set(node, op: SetOperation, code: int, reason: str | None) -> None:
    node.device.bus.emit(UAPI_SET, op.now, None, errno=code, reason=reason, lines=op.lines)


def set_reply(code: int) -> bytes:
    return f"errno={-code}\n\n".encode()


def get_error_reply(code: int) -> bytes:
    return f"errno={code}\n\n".encode()
