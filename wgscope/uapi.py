"""The cross-platform userspace configuration protocol ("UAPI") that wg(8) speaks.

https://www.wireguard.com/xplatform/ — a line protocol over a stream socket:

    get=1\\n\\n                 -> key=value lines, then "errno=N\\n\\n"
    set=1\\nkey=value\\n...\\n\\n  -> "errno=N\\n\\n"

Keys are those of wireguard-go's device/uapi.go (the reference userspace implementation)
and wireguard-tools' src/ipc-uapi.h (the client): device keys private_key, listen_port,
fwmark, replace_peers come first; each public_key line then selects (or creates) a peer,
configured by preshared_key, endpoint, persistent_keepalive_interval, replace_allowed_ips,
allowed_ip, update_only, remove, protocol_version.

The sign of the errno line follows what the wg tool does with it (ipc-uapi.h): after a set
it reads `errno=%d` and reports errno = -value, so a set answers errno=-22 for EINVAL (as
wireguard-go does); after a get it accepts only digits and reports errno = value, so a get
answers errno=22. Either way wg prints "Invalid argument".

No sockets here: `UapiConnection` turns bytes in into bytes out for one connection, and
runtime/uapi_socket.py carries them. The node it configures offers:

    node.device                  the protocol Device (only touched from the node's loop)
    node.name                    the interface name
    node.now()                   the protocol clock
    node.apply(actions)          carry out SendDatagram/WritePacket and re-arm timers
    node.set_listen_port(port)   rebind the UDP socket; returns the bound port, raises OSError
    node.set_fwmark(mark)        optional: SO_MARK the UDP socket(s); raises OSError
"""

from __future__ import annotations

import errno as E
import ipaddress
import math
import re
import socket
from typing import Any, Iterable

from .events import CONFIG_CHANGED, UAPI_GET, UAPI_REQUEST_REJECTED, UAPI_SET
from .protocol.device import ConfigurationError
from .protocol.noise import ZERO_PSK
from .protocol.peer import Peer

# Bounds. A line of the protocol is short (the longest legal one is an IPv6 endpoint with a
# zone); a set may be very large — `wg setconf` of 200k allowed IPs is ~6 MB — so a request is
# processed as it streams in and bounded at 64 MiB: about two million allowed IPs, which is
# already some hundreds of MB of Python objects.
MAX_LINE = 4096
MAX_REQUEST = 64 * 1024 * 1024

_UNSET: Any = object()


class UapiError(Exception):
    """A request refused with an errno.h number; `reason` says why (never a key)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _invalid(reason: str) -> UapiError:
    return UapiError(E.EINVAL, reason)


def _leading_name(text: str) -> str:
    """The leading word of a malformed line, for its error: what follows may be a key, never echoed."""
    return re.match(r"[A-Za-z_]{0,32}", text).group()


# ---------------------------------------------------------------- values
def parse_key(value: str, what: str) -> bytes:
    """A 32-byte key as 64 hex digits (WG-GO FromHex); the value is never echoed."""
    if len(value) != 64 or not value.isascii():
        raise _invalid(f"{what}: not 64 hex digits")
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise _invalid(f"{what}: not 64 hex digits") from None
    if len(key) != 32:
        raise _invalid(f"{what}: not 64 hex digits")
    return key


def parse_uint(value: str, what: str, bits: int) -> int:
    """Decimal digits only, as Go's strconv.ParseUint(value, 10, bits) takes them."""
    if not (value.isascii() and value.isdigit()) or int(value) >= 1 << bits:
        raise _invalid(f"{what}: {value[:40]!r} is not an integer 0..{(1 << bits) - 1}")
    return int(value)


def parse_true(value: str, what: str) -> None:
    if value != "true":
        raise _invalid(f"{what}: only 'true' is accepted, got {value[:40]!r}")


def parse_endpoint(value: str) -> tuple[str, int]:
    """`a.b.c.d:port` or `[v6(%zone)]:port` (WG-GO bind.ParseEndpoint); names are resolved by wg."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        want = 6
    else:
        host, sep, port = value.rpartition(":")
        want = 4
    if not sep or not host:
        raise _invalid(f"endpoint: {value[:80]!r} is not ADDRESS:PORT or [ADDRESS]:PORT")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise _invalid(f"endpoint: {host[:60]!r} is not an IP address") from None
    if addr.version != want:
        raise _invalid(f"endpoint: IPv6 addresses go in brackets, IPv4 ones do not ({value[:80]!r})")
    return str(addr), parse_uint(port, "endpoint port", 16)


def parse_allowed_ip(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """`address/cidr` (WG-GO netip.ParsePrefix); host bits are masked off as the trie does.

    inet_pton and the (int, prefixlen) constructor: a few times faster than ip_network(text),
    which matters for a setconf of hundreds of thousands of allowed IPs."""
    addr, sep, cidr = value.partition("/")
    if sep and cidr.isascii() and cidr.isdigit() and len(cidr) <= 3:
        plen = int(cidr)
        try:
            if ":" in addr:
                if plen <= 128:
                    n = int.from_bytes(socket.inet_pton(socket.AF_INET6, addr), "big")
                    return ipaddress.IPv6Network((n >> (128 - plen) << (128 - plen), plen))
            elif plen <= 32:
                n = int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
                return ipaddress.IPv4Network((n >> (32 - plen) << (32 - plen), plen))
        except OSError:
            pass
    raise _invalid(f"allowed_ip: {value[:80]!r} is not ADDRESS/CIDR")


def endpoint_text(endpoint: tuple | None) -> str | None:
    """As wg(8) prints it: IPv6 in brackets; a v4-mapped address from a dual-stack socket as IPv4."""
    if endpoint is None:
        return None
    host, port = endpoint[0], endpoint[1]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------- get
def get_lines(node) -> list[str]:
    """The key=value lines of a get, in wireguard-go's order (device, then each peer)."""
    device = node.device
    out: list[str] = []
    private = device.identity.private if device.identity else bytes(32)
    if private != bytes(32):
        out.append("private_key=" + private.hex())
    if device.listen_port:
        out.append(f"listen_port={device.listen_port}")
    if device.fwmark:
        out.append(f"fwmark={device.fwmark}")
    networks = device.allowed_ips.networks
    for peer in device.peers.values():
        out.append("public_key=" + peer.public_key.hex())
        out.append("preshared_key=" + peer.preshared_key.hex())
        out.append("protocol_version=1")
        if peer.endpoint is not None:
            out.append("endpoint=" + endpoint_text(peer.endpoint))
        sec, nsec = _wall_split(peer.last_handshake_wall)
        out.append(f"last_handshake_time_sec={sec}")
        out.append(f"last_handshake_time_nsec={nsec}")
        out.append(f"tx_bytes={peer.tx_bytes}")
        out.append(f"rx_bytes={peer.rx_bytes}")
        out.append(f"persistent_keepalive_interval={peer.persistent_keepalive}")
        out.extend(f"allowed_ip={net}" for net in networks(peer))
    return out


def _wall_split(wall: float | None) -> tuple[int, int]:
    if not wall:
        return 0, 0
    sec = math.floor(wall)
    return sec, min(round((wall - sec) * 1e9), 999_999_999)


def handle_get(node) -> str:
    """The whole answer to `get=1`: the lines, errno=0 and the blank line."""
    lines = get_lines(node)
    device = node.device
    device.bus.emit(UAPI_GET, node.now(), None, peers=len(device.peers), lines=len(lines))
    lines.append("errno=0")
    return "\n".join(lines) + "\n\n"


# ---------------------------------------------------------------- set
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
        if ch.psk is not _UNSET and (ch.psk or ZERO_PSK) != peer.preshared_key:
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


# ---------------------------------------------------------------- one connection
class UapiConnection:
    """Bytes in, bytes out for one client: several requests per connection, split anywhere.

    A set is applied as it streams (a block at a time), so a very large setconf is never held
    whole. A malformed request is read through its blank line and answered with an errno; the
    connection stays usable. `closed` is set when the stream cannot be resynchronised (a line
    over MAX_LINE, a request over MAX_REQUEST); the errno reply has been returned by then."""

    def __init__(self, node, max_line: int = MAX_LINE, max_request: int = MAX_REQUEST) -> None:
        self.node = node
        self.max_line = max_line
        self.max_request = max_request
        self._buffer = bytearray()
        self._state = "idle"  # idle | get | set | discard (read through the blank line, then answer)
        self._op: SetOperation | None = None
        self._error: UapiError | None = None
        self._reply = set_reply  # how the pending error is answered (see the module docstring)
        self._request_bytes = 0
        self.closed = False

    @property
    def in_request(self) -> bool:
        """True between a request's first line and its blank line (the server holds its lock)."""
        return self._state != "idle"

    def feed(self, data: bytes) -> bytes:
        if self.closed:
            return b""
        buf = self._buffer
        buf += data
        out = bytearray()
        start = 0
        try:
            while not self.closed:
                end = buf.find(b"\n", start)
                if end < 0:
                    if len(buf) - start > self.max_line:
                        out += self._fatal(f"a line longer than {self.max_line} bytes")
                    break
                self._request_bytes += end - start + 1
                if end - start > self.max_line:
                    out += self._fatal(f"a line longer than {self.max_line} bytes")
                elif self._request_bytes > self.max_request:
                    out += self._fatal(f"a request larger than {self.max_request} bytes")
                else:
                    out += self._line(bytes(buf[start:end]))
                start = end + 1
        finally:
            del buf[:start]
        return bytes(out)

    def eof(self) -> None:
        """The client went away: a set in progress keeps what it did (WG-GO applies it too)."""
        if self._state == "set":
            self._conclude_set(self._op.abort(), 0, "connection closed before the end of the request")
        self._state, self._op = "idle", None
        self.closed = True

    def _line(self, raw: bytes) -> bytes:
        state = self._state
        if state == "set":
            if not raw:
                return self._end_set()
            try:
                self._op.line(raw.decode("ascii"))
            except UnicodeDecodeError:
                self._fail_set(_invalid(f"line {self._op.lines}: not ASCII"))
            except UapiError as e:
                self._fail_set(e)
            return b""
        if state == "idle":
            self._request_bytes = len(raw) + 1
            if raw == b"set=1":
                self._state, self._op = "set", SetOperation(self.node)
            elif raw == b"get=1":
                self._state = "get"
            elif raw:  # blank lines between requests are ignored
                self._discard(_invalid(f"unknown operation {_leading_name(raw.decode('ascii', 'replace'))!r}"),
                              set_reply)
            return b""
        if state == "get":
            if raw:
                self._discard(_invalid("get=1 must be followed by a blank line"), get_error_reply)
                return b""
            self._state = "idle"
            return handle_get(self.node).encode()
        if raw:  # discarding
            return b""
        error, self._error, self._state = self._error, None, "idle"
        return self._reply(error.code)

    def _discard(self, error: UapiError, reply) -> None:
        self._state, self._error, self._reply = "discard", error, reply
        self.node.device.bus.emit(UAPI_REQUEST_REJECTED, self.node.now(), None, errno=error.code,
                                  reason=error.reason)

    def _fail_set(self, error: UapiError) -> None:
        op, self._op = self._op, None
        self._conclude_set(op.abort(), error.code, error.reason, op)
        self._state, self._error, self._reply = "discard", error, set_reply

    def _end_set(self) -> bytes:
        op, self._op, self._state = self._op, None, "idle"
        try:
            actions, code, reason = op.finish(), 0, None
        except UapiError as e:
            actions, code, reason = op.abort(), e.code, e.reason
        self._conclude_set(actions, code, reason, op)
        return set_reply(code)

    def _conclude_set(self, actions: list, code: int, reason: str | None, op: SetOperation | None = None) -> None:
        op = op or self._op
        _report_set(self.node, op, code, reason)
        self.node.apply(actions)

    def _fatal(self, reason: str) -> bytes:
        error = UapiError(E.EMSGSIZE, reason)
        if self._state == "set":
            self._fail_set(error)
            reply = set_reply
        elif self._state == "discard":
            reply = self._reply
        else:
            reply = get_error_reply if self._state == "get" else set_reply
            self.node.device.bus.emit(UAPI_REQUEST_REJECTED, self.node.now(), None, errno=error.code,
                                      reason=reason)
        self.closed = True
        self._state = "idle"
        return reply(error.code)


def handle_request(node, text: str) -> str:
    """Answer every complete request in `text` (tests and tools: the socket-free path)."""
    conn = UapiConnection(node)
    return conn.feed(text.encode()).decode()
