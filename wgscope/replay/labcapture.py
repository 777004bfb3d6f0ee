"""Record what crosses the in-process lab's network as a pcapng that decrypts itself.

Every datagram the lab network carries is written as a raw-IP/UDP frame (pcap/frames.py)
with wall-clock time (LAB_EPOCH + lab time); the handshake secrets the nodes publish go into
Decryption Secrets Blocks in Wireshark's key log format, before the packets they unlock.

    lab = Lab(seed=1); a = ...; b = ...; lab.connect(a, b)
    with LabCapture(lab, "out.pcapng") as cap:
        a.ping("10.0.0.2"); lab.run(1)
"""

from __future__ import annotations

from ..pcap import PcapngWriter, build_udp_frame
from ..runtime.lab import LAB_EPOCH, Lab, Wire
from .keys import keylog_lines


class LabCapture:
    def __init__(self, lab: Lab, path, secrets: bool = True, keylog_path=None, nodes=None,
                 undelivered: bool = True) -> None:
        """`secrets`: put key logs in DSBs; `keylog_path`: also write them to a key log file (0600);
        `nodes`: whose secrets to record (default all); `undelivered`: also record datagrams the
        network lost (a capture beside the sender) — False records what arrived (beside the receiver)."""
        self.undelivered = undelivered
        self.lab = lab
        self.writer = PcapngWriter(path)
        self.secrets = secrets
        self.keylog_text: list[str] = []
        self.keylog_path = keylog_path
        self.packets = 0
        lab.network.taps.append(self._tap)
        for node in (nodes if nodes is not None else lab.nodes.values()):
            node.bus.subscribe_secrets(self._secret)

    def _secret(self, secrets) -> None:
        text = keylog_lines(secrets)
        self.keylog_text.append(text)
        if self.secrets:
            self.writer.write_wireguard_secrets(text)

    def _tap(self, wire: Wire) -> None:
        if not wire.delivered and not self.undelivered:
            return
        self.writer.write_packet(build_udp_frame(wire.src, wire.dst, wire.data), LAB_EPOCH + wire.time)
        self.packets += 1

    def close(self) -> None:
        if self._tap in self.lab.network.taps:
            self.lab.network.taps.remove(self._tap)
        self.writer.close()
        if self.keylog_path is not None:
            import os

            fd = os.open(self.keylog_path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("".join(self.keylog_text))

    def __enter__(self) -> "LabCapture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
