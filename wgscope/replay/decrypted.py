"""`--decrypted` written as the observer's pass goes, and read back by the sides' pass.

The observer appends every inner packet it decrypts, in capture order, to `packets` and its
time to `times` (Replay.decrypted_packets / decrypted_times). Without a stream those lists hold
the whole capture's inner packets until replay ends (a library caller asked for them). With one,
the driver hands them to the pcap writer every CHUNK packets (`pending`) and empties them, so
no more than a chunk of inner packets is held at a time, and their memory is used again.

A re-executed side's pass needs the inner packets of its own sends, after the observer's whole
pass: those are in the file just written. `Kept` (driver.py) then holds, for each of them, its
number in the file (the k-th decrypted packet), and `packet(k)` reads it back from the file,
mapped once when the observer's pass ends: the page cache holds it, not the heap. A packet is
read back as the writer wrote it; the writer cuts at the pcap snap length (65,535), which no
inner packet reaches (a UDP datagram carries at most 65,507 bytes), and a longer one would be
kept in memory instead, so the side never gets a cut packet.

The file is replay's own output; it is opened when the first chunk is written (a capture replay
refuses writes nothing), and read back only when it is a regular file (a FIFO or /dev/null is
written the old way: whole, at the end, from memory: `streams`).
"""

from __future__ import annotations

import mmap
import os
import stat
from array import array

import numpy as np

from ..pcap import PcapWriter

CHUNK = 4096  # inner packets held before they are written (~6 MB at 1,420 bytes)
SAME = type("Same", (), {"__repr__": lambda self: "SAME"})()  # Kept.padded: the padded plaintext is the inner packet
_RECORD, _HEADER = 16, 24  # classic pcap: record header, file header (pcap_writer.py)


def streams(path) -> bool:
    """Whether `path` can be written as replay goes and read back: a regular file, or none yet."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


class DecryptedStream:
    def __init__(self, path) -> None:
        self.path = path
        self.packets: list = []  # the observer's Replay.decrypted_packets: the chunk not yet written
        self.times: list = []
        self.written = 0  # inner packets in the file
        self.lengths = array("Q")  # each packet's length, in file order
        self.long: dict[int, bytes] = {}  # number -> a packet longer than the snap length (none in practice)
        self.writer: PcapWriter | None = None
        self.map = None
        self.starts = self.ends = None  # numpy arrays once mapped: each packet's offset and end in the file

    @property
    def count(self) -> int:
        """Inner packets decrypted so far (written or pending): the next one's number."""
        return self.written + len(self.packets)

    def pending(self) -> None:
        """Write the chunk when it is full (the driver calls this between runs)."""
        if len(self.packets) >= CHUNK:
            self._write()

    def _write(self) -> None:
        if self.writer is None:
            self.writer = PcapWriter(self.path, linktype=101)
        packets = self.packets
        if packets:
            snaplen = self.writer.snaplen
            lengths = array("Q", map(len, packets))  # once, for the writer and for `lengths`
            self.writer.write_columns(self.times, packets, lengths)
            for i in np.flatnonzero(np.frombuffer(lengths, dtype=np.uint64) > snaplen).tolist():
                self.long[self.written + i] = packets[i]
            self.lengths.extend(lengths)
            self.written += len(packets)
            packets.clear()
            self.times.clear()

    def finish(self) -> int:
        """The rest written, the file closed, then mapped for `packet`. Returns the packets written."""
        self._write()
        self.writer.close()
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        lengths = np.array(self.lengths, dtype=np.int64)
        records = _RECORD + (lengths if not self.long else np.minimum(lengths, self.writer.snaplen))
        # each packet's offset, and the end's: summed by numpy, no Python int made per packet here
        offsets = np.concatenate(([0], np.cumsum(records))) + (_HEADER + _RECORD)
        if int(offsets[-1]) - _RECORD != size:
            raise OSError(0, "changed while replay wrote it", self.path)
        self.starts, self.ends = offsets[:-1], offsets[:-1] + lengths
        return self.written

    def packet(self, k: int) -> bytes:
        """The k-th inner packet, read back from the file."""
        return self.long.get(k) or self.map[int(self.starts[k]): int(self.ends[k])]

    def read(self, numbers: list) -> list:
        """The inner packets of these numbers; a run's are consecutive in the file, read in one pass."""
        k, n = numbers[0], len(numbers)
        if self.long or numbers[-1] - k != n - 1:
            return list(map(self.packet, numbers))
        m = self.map
        return [m[start: end] for start, end in zip(self.starts[k: k + n].tolist(), self.ends[k: k + n].tolist())]
