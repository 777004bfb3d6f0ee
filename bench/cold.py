"""What a hop's steps cost warm and cold: the same work after a gap of idle (or busy) time.

    python -m bench.cold [--repeat 40]

At ping rates every hop of a packet through a node runs after tens of milliseconds of other
work or idleness. This measures, in one process and with no network set-up, the steps a hop
is made of: the protocol core's send and receive of one ping-sized transport packet (an
in-memory lab pair, events at the live node's default level), one ChaCha20-Poly1305 seal
(cryptography's encrypt and encrypt_into, and libsodium's through PyNaCl's binding), a
UDP send and receive over loopback, and a bare system call, each run right after the previous
one (warm) and after a gap spent sleeping or spinning. Prints the median microseconds per
step and gap; bench/README.md sections 12 and 14 read the figures of this machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from nacl import _sodium as sodium

from wgscope.events import INFO
from wgscope.protocol.actions import SendDatagram
from wgscope.runtime import packets
from wgscope.runtime.lab import Lab

GAPS = (0.0, 0.001, 0.005, 0.02, 0.05)  # seconds between two runs of a step


def _steps() -> dict:
    lab = Lab(level=INFO)
    alpha, bravo = lab.alpha_bravo()
    alpha.ping("10.0.0.2")
    lab.run(1.0)  # the handshake: a current keypair on both sides
    packet = packets.echo("10.0.0.1", "10.0.0.2", 1, payload=bytes(56))
    clock = iter(range(10**9))
    sealed = []

    def core_send() -> None:
        actions = alpha.device.send_packets([packet], lab.now + next(clock) * 1e-4)
        sealed[:] = [a.data for a in actions if type(a) is SendDatagram]

    def core_receive() -> None:
        bravo.device.receive_datagrams(sealed, alpha.endpoint, lab.now + next(clock) * 1e-4)

    key, nonce, plain = os.urandom(32), bytes(12), bytes(96)
    aead, sealed_into = ChaCha20Poly1305(key), bytearray(len(plain) + 16)
    sodium_key, sodium_seal = sodium.ffi.new("unsigned char[]", key), sodium.lib.crypto_aead_chacha20poly1305_ietf_encrypt

    def libsodium_seal() -> bytes:  # PyNaCl's compiled binding, called bare (no PyNaCl Python layer)
        out = bytearray(len(plain) + 16)
        sodium_seal(sodium.ffi.from_buffer(out), sodium.ffi.NULL, plain, len(plain), sodium.ffi.NULL, 0,
                    sodium.ffi.NULL, nonce, sodium_key)
        return bytes(out)

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = rx.getsockname()
    return {"core send (1 packet)": core_send, "core receive (1 packet)": core_receive,
            "AEAD seal (96 B)": lambda: aead.encrypt(nonce, plain, None),
            "AEAD encrypt_into": lambda: aead.encrypt_into(nonce, plain, None, sealed_into),
            "libsodium seal": libsodium_seal,
            "UDP sendto (loopback)": lambda: tx.sendto(plain, target),
            "UDP recv": lambda: rx.recv(2048), "getppid()": os.getppid}


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def measure(repeat: int) -> dict:
    steps = _steps()
    result: dict = {}
    for gap in GAPS:
        for how, wait in (("sleep", time.sleep), ("spin", _spin)):
            if gap == 0 and how == "spin":
                continue
            times: dict = {name: [] for name in steps}
            for _ in range(repeat):
                for name, step in steps.items():  # in hop order: the send's datagram is what is received
                    if gap:
                        wait(gap)
                    t0 = time.perf_counter_ns()
                    step()
                    times[name].append((time.perf_counter_ns() - t0) / 1e3)
            result[f"{how} {gap * 1e3:g} ms" if gap else "warm"] = {
                name: round(statistics.median(v[3:]), 1) for name, v in times.items()}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=40)
    a = p.parse_args(argv)
    result = measure(a.repeat)
    names = list(next(iter(result.values())))
    print(f"{'median us after':16}" + "".join(f"{n:>25}" for n in names))
    for gap, row in result.items():
        print(f"{gap:16}" + "".join(f"{row[n]:>25}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
