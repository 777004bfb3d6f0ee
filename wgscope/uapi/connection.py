"""One UAPI connection: bytes in, bytes out, with the request's bounds enforced."""

from __future__ import annotations

import errno as E

from ..events import UAPI_REQUEST_REJECTED
from .get import handle_get
from .set import SetOperation, _report_set, get_error_reply, set_reply
from .values import MAX_LINE, MAX_REQUEST, UapiError, _invalid, _leading_name

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
