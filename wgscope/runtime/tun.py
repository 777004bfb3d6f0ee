"""The TUN device: /dev/net/tun opened with TUNSETIFF (IFF_TUN | IFF_NO_PI), non-blocking.

Layer-3 packets without the 4-byte packet-information header, so what `read` returns is
exactly what `Device.send_packet` takes, and `WritePacket` goes back unchanged.
Constants from linux/if_tun.h.

With IFF_VNET_HDR (tried first, `vnet` tells), every read and write carries a 10-byte
virtio_net_hdr in front. Writes use it: `write_many` merges consecutive segments of a TCP flow
into one GSO write (runtime/tcp_coalesce.py), so the kernel's TCP receive path runs once per
batch. Reads use it only with `offload` (`wgscope up --tun-offload`): TUNSETOFFLOAD asks for
checksum offload and TSO4/TSO6 (plus USO4/USO6 where the kernel has them; `offload` then holds
what was granted), the kernel hands one TCP super-packet of up to 64 KB per read with
checksums partial, and `read` cuts it back into MTU-sized packets with complete checksums
(runtime/gso_split.py), so the core never sees an offload. It is off by default because on
the machine we measure on it costs more CPU than it saves (bench/README.md): the cutting, and
completing the checksum of every locally sent packet (ACKs too), happen in Python.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from .gso_split import OffloadError, packets_from_read
from .tcp_coalesce import coalesce
from .vnet import (
    NO_OFFLOAD, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6, TUNSETOFFLOAD, VNET_HDR_SIZE,
)

TUN_PATH = "/dev/net/tun"
TUNSETIFF = 0x400454CA  # _IOW('T', 202, int), linux/if_tun.h
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFNAMSIZ = 16
MAX_PACKET = 65535  # an IP packet's largest size; one read returns one packet (or one GSO super-packet)
OFFLOADS = (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6,  # USO: kernel >= 6.2
            TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
OFFLOAD_NAMES = ((TUN_F_CSUM, "csum"), (TUN_F_TSO4, "tso4"), (TUN_F_TSO6, "tso6"), (TUN_F_USO4, "uso4"),
                 (TUN_F_USO6, "uso6"))


class TunError(OSError):
    pass


class Tun:
    """One open TUN interface. `read()` returns the packets of one read, or None when drained."""

    def __init__(self, name: str, vnet_hdr: bool = True, offload: bool = False) -> None:
        if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or name in (".", ".."):
            raise TunError(errno.EINVAL, f"invalid interface name {name!r} (1-15 characters)")
        try:
            fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise TunError(errno.ENOENT, f"{TUN_PATH} does not exist (load the tun module)") from e
        self.vnet = False
        try:
            if vnet_hdr:
                try:
                    ifr = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(),
                                                                 IFF_TUN | IFF_NO_PI | IFF_VNET_HDR))
                    self.vnet = True
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise
            if not self.vnet:
                ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
                ifr = fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as e:
            os.close(fd)
            if e.errno == errno.EBUSY:
                raise TunError(e.errno, f"interface {name} already exists and is in use") from e
            if e.errno == errno.EPERM:
                raise TunError(e.errno, f"creating {name} needs root or CAP_NET_ADMIN") from e
            raise TunError(e.errno, f"TUNSETIFF {name}: {e.strerror}") from e
        self.fd = fd
        self.name = ifr[:IFNAMSIZ].rstrip(b"\0").decode()
        self.offload = 0  # TUN_F_* granted by TUNSETOFFLOAD
        self.reads = 0  # reads that returned data
        self.gso_reads = 0  # of them, super-packets cut into segments
        self.segments = 0  # packets handed on
        self.gso_writes = 0  # writes of a coalesced TCP super-packet
        self.coalesced = 0  # packets carried by them
        self.offload_drops: dict[str, int] = {}  # reads whose virtio_net_hdr made no sense, by reason
        if self.vnet and offload:
            self._set_offload()

    def _set_offload(self) -> None:
        for flags in OFFLOADS:
            try:
                fcntl.ioctl(self.fd, TUNSETOFFLOAD, flags)
                self.offload = flags
                return
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise TunError(e.errno, f"TUNSETOFFLOAD {self.name}: {e.strerror}") from e

    def offload_names(self) -> list[str]:
        return [name for flag, name in OFFLOAD_NAMES if self.offload & flag]

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[bytes] | None:
        """The packets of one read (a GSO super-packet gives many), or None when drained.
        OffloadError: the read's virtio_net_hdr made no sense (counted, the read is dropped);
        another OSError (EBADFD, EIO) means the interface was deleted."""
        try:
            if not self.vnet:
                data = os.read(self.fd, MAX_PACKET)
                self.reads += 1
                self.segments += 1
                return [data]
            data = os.read(self.fd, MAX_PACKET + VNET_HDR_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        self.reads += 1
        if data[1] == 0 and not data[0]:  # gso_type NONE, checksum complete: the common small packet
            self.segments += 1
            return [data[VNET_HDR_SIZE:]]
        try:
            packets = packets_from_read(data)
        except OffloadError as e:
            self.offload_drops[e.reason] = self.offload_drops.get(e.reason, 0) + 1
            raise
        if data[1]:
            self.gso_reads += 1
        self.segments += len(packets)
        return packets

    def write(self, packet: bytes) -> int:
        """Write one packet; 0, or the errno when the kernel did not take it (queue full, link down)."""
        return self._write((NO_OFFLOAD, packet) if self.vnet else (packet,))

    def _write(self, bufs) -> int:
        try:
            os.writev(self.fd, bufs)
            return 0
        except OSError as e:
            # EIO: the interface is down; EINVAL: malformed packet; EAGAIN: the queue is full;
            # EBADFD: the interface was deleted. Each drops the packet, reported by the caller.
            return e.errno or errno.EIO

    def write_many(self, packets: list) -> list[tuple[int, str]]:
        """Write packets in order, TCP segments of one flow merged into GSO writes; returns the
        packets the kernel did not take as (count, reason tun_write_<errno>)."""
        if not self.vnet or len(packets) < 2:
            return [(1, _reason(err)) for err in map(self.write, packets) if err]
        lost = []
        for bufs in coalesce(packets):
            carried = len(bufs) - 3 if len(bufs) > 2 else 1  # [vnet, ip, tcp, payloads...] or [vnet, packet]
            if carried > 1:
                self.gso_writes += 1
                self.coalesced += carried
            err = self._write(bufs)
            if err:
                lost.append((carried, _reason(err)))
        return lost

    def close(self) -> None:
        """Closing the last fd of a non-persistent TUN deletes the interface, in any namespace."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _reason(err: int) -> str:
    return "tun_write_" + errno.errorcode.get(err, f"errno{err}").lower()
