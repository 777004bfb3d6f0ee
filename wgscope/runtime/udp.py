"""The underlay: one IPv4 and one IPv6 UDP socket on ListenPort, with reply-to-sender sources.

Two sockets (the IPv6 one IPV6_V6ONLY) rather than one dual-stack socket, as wireguard-go
does (conn/bind_std.go), so each family keeps its own packet-info control messages.

Sticky source (the Linux module's endpoint.src4/src6, socket.c): IP_PKTINFO/IPV6_RECVPKTINFO
tell us which local address a datagram was sent to; replies to that remote endpoint leave
from that address. When the address disappears (sendmsg fails with EINVAL/EADDRNOTAVAIL), the
source is forgotten and the datagram is sent again with a source the kernel chooses — the
module's "fall over" in send4()/send6().

Kernel offloads (the data path, bench/README.md): UDP_GRO on both sockets, so one recvmsg may
return several datagrams from one sender coalesced, cut apart at the `gso_size` the kernel
reports in a UDP_GRO control message; and UDP_SEGMENT (GSO) in `send_many`, so a run of
same-size datagrams to one endpoint leaves in one sendmsg (the last may be shorter). Both
are what wireguard-go's conn/bind_std.go and gso_linux.go do; constants from linux/udp.h.
When the kernel refuses either, the node falls back to one datagram per call; a GSO send refused
for its size (a path MTU below the segments) goes datagram by datagram. A datagram the kernel
does not take is never silent: `on_lost` hears of it with reason send_<errno>.

Nor is a datagram the kernel dropped at a socket before the node read it (its receive buffer
full under a flood, or refused there): with SO_RXQ_OVFL each datagram queued after such drops
carries the socket's running drop count in a control message (none while nothing was dropped,
so the data path pays nothing), and `kernel_drops` reads the same count on demand (SO_MEMINFO's
SK_MEMINFO_DROPS) for drops no later datagram has reported yet. `on_receive_lost` hears of each
increase, reason kernel_receive_drop (socket(7) SO_RXQ_OVFL; linux/sock_diag.h).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
import time
from collections import Counter, OrderedDict
from typing import Callable, Iterator

RECV_SIZE = 65535
CMSG_SPACE = 256
STICKY_LIMIT = 4096  # remote endpoints whose local source we remember (oldest forgotten first)
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # linux/in.h; socket has it from Python 3.13
_IN_PKTINFO = struct.Struct("=I4s4s")  # ipi_ifindex, ipi_spec_dst, ipi_addr (netinet/in.h)
_IN6_PKTINFO = struct.Struct("=16sI")  # ipi6_addr, ipi6_ifindex
_GSO_ERRNOS = {errno.EMSGSIZE, errno.EINVAL, errno.EIO, errno.EOPNOTSUPP}  # what a UDP_SEGMENT send may say
_LOST_SOURCE = {errno.EINVAL, errno.EADDRNOTAVAIL, errno.ENETUNREACH}
SOL_UDP = 17
UDP_SEGMENT = 103  # linux/udp.h: GSO segment size (sendmsg cmsg, u16)
UDP_GRO = 104  # linux/udp.h: receive coalesced datagrams; cmsg carries the segment size (int)
GSO_MAX_SEGMENTS = 64  # UDP_MAX_SEGMENTS on older kernels (128 since 6.x)
GSO_MAX_BYTES = 65000  # a UDP payload must stay under 65507 bytes
GSO_RETRY = 30.0  # seconds before a segment size refused to an endpoint is tried as GSO again
SOCKET_BUFFER = 7 << 20  # WG-GO conn/controlfns.go socketBufferSize
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # asm-generic/socket.h
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # asm-generic/socket.h: a u32 drop count per received datagram
SO_MEMINFO = 55  # asm-generic/socket.h: SK_MEMINFO_VARS u32s; SK_MEMINFO_DROPS is the ninth (linux/sock_diag.h)
_MEMINFO = struct.Struct("=9I")
KERNEL_RECEIVE_DROP = "kernel_receive_drop"
_u16 = struct.Struct("=H")
_int = struct.Struct("=i")
_u32 = struct.Struct("=I")


class BindError(OSError):
    pass


def _bind(family: int, port: int, fwmark: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            sock.bind(("::", port))
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            sock.bind(("0.0.0.0", port))
        if fwmark:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, fwmark)
        try:
            sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        except OSError:
            pass  # no UDP GRO in this kernel: one datagram per recvmsg
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
        except OSError:
            pass  # no drop counts on received datagrams: kernel_drops (SO_MEMINFO) still reports them
        _size_buffers(sock)
    except OSError:
        sock.close()
        raise
    return sock


def _size_buffers(sock: socket.socket) -> None:
    """Socket buffers of SOCKET_BUFFER bytes, as WG-GO conn/controlfns_linux.go: up to
    net.core.{r,w}mem_max, then beyond it with SO_*BUFFORCE where CAP_NET_ADMIN allows. A
    burst larger than the default buffer is otherwise lost in the kernel (UdpRcvbufErrors)."""
    for plain, force in ((socket.SO_RCVBUF, SO_RCVBUFFORCE), (socket.SO_SNDBUF, SO_SNDBUFFORCE)):
        for option in (plain, force):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            except OSError:
                pass  # no CAP_NET_ADMIN for the FORCE variant: the plain one's size stands (slower, not wrong)


class UdpTransport:
    """The node's UDP sockets. `receive()` drains datagrams; `send()` picks family and source."""

    def __init__(self, port: int = 0, fwmark: int = 0) -> None:
        self.v4: socket.socket | None = None
        self.v6: socket.socket | None = None
        self.fwmark = fwmark
        self.sources: OrderedDict[tuple, tuple] = OrderedDict()  # remote (host, port) -> (local ip, ifindex)
        self._pktinfo: dict[tuple, tuple] = {}  # (local ip, ifindex) -> its IP(V6)_PKTINFO control message
        self._locals: dict[bytes, tuple] = {}  # a received packet-info message -> (local ip, ifindex)
        self.send_errors = 0  # datagrams the kernel did not take
        self.lost: Counter[str] = Counter()  # the same, by reason (send_<errno>)
        self.receive_errors: Counter[str] = Counter()  # errors a receive returned instead of data, by errno
        self.on_lost: Callable[[list, tuple, str], None] | None = None  # (datagrams, endpoint, reason)
        self.receive_dropped = 0  # datagrams the kernel dropped at our sockets before we read them
        self._drops_seen: dict[bool, int] = {}  # v6 -> the socket's drop count last reported
        self.on_receive_lost: Callable[[int, str], None] | None = None  # (count, reason)
        self.gso = True  # cleared when the device cannot do UDP_SEGMENT at all (EIO)
        self.gso_fallbacks = 0  # GSO sends refused for their size and sent datagram by datagram
        self.ceilings: OrderedDict[tuple, tuple] = OrderedDict()  # endpoint -> (refused segment size, since)
        self.port = 0
        self.v4, self.v6, self.port = self._open(port)

    # ---------------------------------------------------------------- binding
    def _open(self, port: int) -> tuple[socket.socket | None, socket.socket | None, int]:
        """Bind both families to one port; with port 0, retry until the kernel's pick is free in both."""
        last: OSError | None = None
        for _ in range(10 if port == 0 else 1):
            try:
                v4 = _bind(socket.AF_INET, port, self.fwmark)
            except OSError as e:
                raise BindError(e.errno, f"cannot bind UDP port {port}: {e.strerror}") from e
            bound = v4.getsockname()[1]
            try:
                v6 = _bind(socket.AF_INET6, bound, self.fwmark)
            except OSError as e:
                if e.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                    return v4, None, bound  # no IPv6 on this host: IPv4 only
                v4.close()
                last = e
                continue
            return v4, v6, bound
        raise BindError(last.errno if last else errno.EADDRINUSE, f"cannot bind UDP port {port} for IPv6")

    def rebind(self, port: int) -> int:
        """Move to another port (`wg set listen-port`); the old sockets stay if the new bind fails."""
        if port == self.port and port != 0:
            return self.port
        v4, v6, bound = self._open(port)
        self.kernel_drops()  # what the old sockets dropped is reported before they go
        self.close()
        self.v4, self.v6, self.port = v4, v6, bound
        self._drops_seen.clear()  # new sockets count from zero
        return bound

    def set_fwmark(self, mark: int) -> None:
        self.fwmark = mark
        for sock in self.sockets():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)

    def sockets(self) -> list[socket.socket]:
        return [s for s in (self.v4, self.v6) if s is not None]

    def close(self) -> None:
        for sock in self.sockets():
            sock.close()
        self.v4 = self.v6 = None

    # ---------------------------------------------------------------- receiving
    def receive(self, sock: socket.socket, limit: int) -> Iterator[tuple[list[bytes], tuple, tuple | None]]:
        """What waits on `sock`, one receive at a time (up to `limit` receives): (datagrams,
        remote (host, port), local (ip, port)); a GRO receive carries many datagrams of one sender,
        handed on as memoryview slices of the one buffer (no copy)."""
        v6 = sock is self.v6
        port = self.port
        info_level, pktinfo = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO) if v6 else (socket.IPPROTO_IP, IP_PKTINFO)
        locals_ = self._locals
        for _ in range(limit):
            try:
                data, ancdata, _flags, addr = sock.recvmsg(RECV_SIZE, CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # An ICMP error queued on the socket (ECONNREFUSED, EMSGSIZE...) about an earlier
                # send surfaces here: not data, nothing lost on receive; counted by errno.
                self.receive_errors[errno.errorcode.get(e.errno, str(e.errno))] += 1
                continue
            remote = (addr[0], addr[1]) if v6 else addr  # an IPv4 address is (host, port) already
            local = None
            segment = 0
            for level, ctype, cdata in ancdata:
                if ctype == pktinfo and level == info_level:
                    local = locals_.get(cdata) or self._local_of(cdata, v6)
                elif level == SOL_UDP and ctype == UDP_GRO:
                    segment = _int.unpack_from(cdata)[0]
                elif level == socket.SOL_SOCKET and ctype == SO_RXQ_OVFL:  # only after the socket dropped some
                    self._dropped(v6, _u32.unpack_from(cdata)[0])
            if local is not None:
                self._remember(remote, local)
            local = (local[0], port) if local else None
            if segment and len(data) > segment:
                view = memoryview(data)
                yield [view[start:start + segment] for start in range(0, len(data), segment)], remote, local
            else:
                yield [data], remote, local

    def _local_of(self, cdata: bytes, v6: bool) -> tuple:
        """The (local ip, ifindex) a packet-info control message names, parsed once per distinct
        message (a node has few local addresses; every datagram carries one)."""
        if v6:
            dst, ifindex = _IN6_PKTINFO.unpack_from(cdata)
            local = (socket.inet_ntop(socket.AF_INET6, dst), ifindex)
        else:
            ifindex, _spec, dst = _IN_PKTINFO.unpack_from(cdata)
            local = (socket.inet_ntop(socket.AF_INET, dst), ifindex)
        if len(self._locals) >= STICKY_LIMIT:
            self._locals.clear()
        self._locals[cdata] = local
        return local

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped at our sockets so far, asked of each socket now (SO_MEMINFO);
        any not reported yet by a received datagram's SO_RXQ_OVFL count are reported here."""
        for v6, sock in ((False, self.v4), (True, self.v6)):
            if sock is None or sock.fileno() < 0:
                continue
            try:
                info = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size)
            except OSError:
                continue  # a kernel without SO_MEMINFO: the received datagrams' counts still serve
            if len(info) >= _MEMINFO.size:
                self._dropped(v6, _MEMINFO.unpack_from(info)[8])
        return self.receive_dropped

    def _dropped(self, v6: bool, total: int) -> None:
        """The socket's running drop count (u32, wraps) is `total`: report the increase."""
        seen = self._drops_seen.get(v6, 0)
        new = (total - seen) & 0xFFFFFFFF
        if new and new < 0x80000000:  # an older count, read late (the other source got ahead), is not news
            self._drops_seen[v6] = total
            self.receive_dropped += new
            if self.on_receive_lost is not None:
                self.on_receive_lost(new, KERNEL_RECEIVE_DROP)

    def _remember(self, remote: tuple, local: tuple) -> None:
        sources = self.sources
        if sources.get(remote) != local:
            sources[remote] = local
            if len(sources) > STICKY_LIMIT:
                sources.popitem(last=False)
        else:
            sources.move_to_end(remote)

    # ---------------------------------------------------------------- sending
    def local_for(self, endpoint: tuple) -> tuple | None:
        """The (ip, port) a datagram to `endpoint` will leave from, when it is pinned."""
        src = self.sources.get((endpoint[0], endpoint[1]))
        return (src[0], self.port) if src else None

    def forget_local(self, address: str) -> int:
        """`address` left the host (RTM_DELADDR): stop pinning it as a source, so the kernel routes
        afresh — the module drops a cached source that `inet_confirm_addr` no longer finds
        (socket.c send4/send6). Returns how many remote endpoints were pinned to it."""
        address = address.split("%", 1)[0]
        stale = [remote for remote, (ip, _ifindex) in self.sources.items() if ip.split("%", 1)[0] == address]
        for remote in stale:
            del self.sources[remote]
        return len(stale)

    def send_many(self, datagrams: list[bytes], endpoint: tuple) -> None:
        """Send datagrams to one endpoint in order; runs of one size go out as one GSO sendmsg."""
        if not self.gso or len(datagrams) < 2:
            for data in datagrams:
                self.send(data, endpoint)
            return
        ceiling = self._gso_ceiling(endpoint)
        i, n = 0, len(datagrams)
        while i < n:
            size = len(datagrams[i])
            j, total = i + 1, size
            limit = min(n, i + GSO_MAX_SEGMENTS)
            while j < limit and total + size <= GSO_MAX_BYTES:
                length = len(datagrams[j])
                if length != size:
                    if length < size:  # a shorter datagram may end the run
                        total += length
                        j += 1
                    break
                total += size
                j += 1
            if j - i == 1 or (ceiling and size >= ceiling):
                for k in range(i, j):
                    self.send(datagrams[k], endpoint)
            else:
                self._send_gso(datagrams[i:j], endpoint, size)
            i = j

    def send(self, data: bytes, endpoint: tuple) -> bool:
        """One datagram; False when the kernel did not take it (then it is reported as lost)."""
        err = self._sendmsg(data, endpoint)
        if err:
            self._lose([data], endpoint, err)
        return not err

    def _send_gso(self, batch: list[bytes], endpoint: tuple, segment: int) -> None:
        """A run of datagrams as one UDP_SEGMENT sendmsg. A segment larger than the path's MTU is
        refused whole (EMSGSIZE; EINVAL on older kernels); then each datagram goes alone and the
        kernel fragments it, as it does for wireguard-go (no DF unless the path asked, see
        IP_PMTUDISC_WANT in ip(7)); the size is remembered for the endpoint for GSO_RETRY seconds.
        EIO/EOPNOTSUPP: the device cannot segment at all, so GSO is turned off for good."""
        err = self._sendmsg(b"".join(batch), endpoint, segment)
        if not err:
            return
        if err in (errno.EIO, errno.EOPNOTSUPP):
            self.gso = False
        elif err in (errno.EMSGSIZE, errno.EINVAL):
            self._remember_ceiling(endpoint, segment)
        else:  # not about segmentation (ENOBUFS, EPERM...): one at a time would fail alike
            self._lose(batch, endpoint, err)
            return
        self.gso_fallbacks += 1
        for data in batch:
            self.send(data, endpoint)

    def _sendmsg(self, data: bytes, endpoint: tuple, segment: int = 0) -> int:
        """0 when the kernel took `data`, else the errno. A pinned source that fails with
        EINVAL/EADDRNOTAVAIL/ENETUNREACH is forgotten and the kernel picks one (the module's fall-over)."""
        host, port = endpoint[0], endpoint[1]
        v6 = ":" in host
        sock = self.v6 if v6 else self.v4
        if sock is None:
            return errno.EAFNOSUPPORT
        key = (host, port)
        src = self.sources.get(key)
        gso = [(SOL_UDP, UDP_SEGMENT, _u16.pack(segment))] if segment else []
        if src is not None:
            try:
                cmsg = self._pktinfo.get(src) or self._pktinfo_for(src, v6)
                sock.sendmsg([data], [cmsg, *gso] if gso else [cmsg], 0, key)
                return 0
            except OSError as e:
                if segment and e.errno in _GSO_ERRNOS:
                    return e.errno  # the segmentation, not the source: _send_gso decides
                if e.errno not in _LOST_SOURCE:
                    return _errno(e)
                self.sources.pop(key, None)  # the address went away: let the kernel choose (fall over)
        try:
            if segment:
                sock.sendmsg([data], gso, 0, key)
            else:
                sock.sendto(data, key)
            return 0
        except OSError as e:  # every errno is a loss reported by the caller, never an exception
            return _errno(e)

    def _pktinfo_for(self, src: tuple, v6: bool) -> tuple:
        """The packet-info control message that pins the source `src` (local ip, ifindex), made once
        per source rather than per datagram."""
        if v6:
            info = _IN6_PKTINFO.pack(socket.inet_pton(socket.AF_INET6, src[0]), src[1] if _link_local(src[0]) else 0)
            cmsg = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)
        else:
            cmsg = (socket.IPPROTO_IP, IP_PKTINFO, _IN_PKTINFO.pack(0, socket.inet_aton(src[0]), b"\0" * 4))
        if len(self._pktinfo) >= STICKY_LIMIT:
            self._pktinfo.clear()
        self._pktinfo[src] = cmsg
        return cmsg

    def _lose(self, datagrams: list[bytes], endpoint: tuple, err: int) -> None:
        reason = "send_" + errno.errorcode.get(err, f"errno{err}").lower()
        self.send_errors += len(datagrams)
        self.lost[reason] += len(datagrams)
        if self.on_lost is not None:
            self.on_lost(datagrams, endpoint, reason)

    def _gso_ceiling(self, endpoint: tuple) -> int:
        """The smallest segment size known to be refused as GSO to `endpoint` (0: none)."""
        known = self.ceilings.get((endpoint[0], endpoint[1]))
        if known is None:
            return 0
        size, since = known
        if time.monotonic() - since > GSO_RETRY:
            del self.ceilings[(endpoint[0], endpoint[1])]
            return 0
        return size

    def _remember_ceiling(self, endpoint: tuple, segment: int) -> None:
        key = (endpoint[0], endpoint[1])
        known = self.ceilings.get(key)
        self.ceilings[key] = (min(segment, known[0]) if known else segment, time.monotonic())
        if len(self.ceilings) > STICKY_LIMIT:
            self.ceilings.popitem(last=False)


def _errno(e: OSError) -> int:
    if isinstance(e, socket.gaierror):
        return errno.EDESTADDRREQ  # an endpoint that is no address: nowhere to send
    return e.errno or errno.EIO


def _link_local(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_link_local
