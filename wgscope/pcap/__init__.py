"""Capture files: pcap/pcapng reading and writing, and the IP/UDP frame around a
WireGuard datagram.  Pure standard library."""

from .frames import FrameError, UdpDatagram, build_udp_frame, parse_frame
from .pcap_writer import PcapWriter
from .pcapng_writer import PcapngWriter
from .reader import CaptureError, CapturedPacket, CaptureReader, read_capture, read_capture_secrets

__all__ = [
    "FrameError",
    "UdpDatagram",
    "build_udp_frame",
    "parse_frame",
    "PcapWriter",
    "PcapngWriter",
    "CaptureError",
    "CapturedPacket",
    "CaptureReader",
    "read_capture",
    "read_capture_secrets",
]
