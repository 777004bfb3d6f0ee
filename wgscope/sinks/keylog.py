"""`--keylog FILE`: Wireshark's WireGuard key log, written as handshakes happen.

Format (Wireshark epan/dissectors/packet-wireguard.c, wg_keylog_process_lines, and the
`wg.keylog_file` preference): one `<TYPE> = <base64 key>` per line, TYPE one of
LOCAL_STATIC_PRIVATE_KEY, REMOTE_STATIC_PUBLIC_KEY, LOCAL_EPHEMERAL_PRIVATE_KEY and
PRESHARED_KEY. A PRESHARED_KEY line is linked to the LOCAL_EPHEMERAL_PRIVATE_KEY line just
before it, so each handshake is written as one block in this order:

    LOCAL_STATIC_PRIVATE_KEY     decrypts the initiation when we are the responder (Spriv_r),
                                 and the response when we are the initiator (Spriv_i)
    REMOTE_STATIC_PUBLIC_KEY     lets Wireshark match the mac1 of messages sent to the peer
    LOCAL_EPHEMERAL_PRIVATE_KEY  Epriv_i (initiator) or Epriv_r (responder): with it the
                                 response, and so the transport keys, can be derived
    PRESHARED_KEY                Q; all zeroes when the peer has none (Wireshark also tries zeroes)

Lines Wireshark does not recognise are skipped, so a `#` comment (without '=') names the
handshake for human readers. The file is created 0600, appended to (a running Wireshark keeps
reading the same file), and flushed after every handshake.
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import TextIO

from ..events import HandshakeSecrets
from ..keytext import encode
from ..pcap.output import open_private

__all__ = ["KeylogWriter", "format_keylog", "SECRETS_WARNING"]

SECRETS_WARNING = ("wgscope: warning: {path} holds session secrets: anyone who can read it can decrypt "
                   "this node's traffic (and impersonate it with the static key); it is created 0600, "
                   "delete it when done")


def format_keylog(secrets: HandshakeSecrets, wall_offset: float = 0.0, name: str | None = None) -> str:
    """One handshake's keys as a Wireshark WireGuard key log block."""
    when = datetime.datetime.fromtimestamp(secrets.time + wall_offset, datetime.timezone.utc)
    peer = encode(secrets.remote_static_public)[:8]
    who = f" on {name}" if name else ""
    return (
        f"# {when.isoformat(timespec='milliseconds').replace('+00:00', 'Z')} {secrets.role} handshake "
        f"with peer {peer}{who}\n"
        f"LOCAL_STATIC_PRIVATE_KEY = {encode(secrets.local_static_private)}\n"
        f"REMOTE_STATIC_PUBLIC_KEY = {encode(secrets.remote_static_public)}\n"
        f"LOCAL_EPHEMERAL_PRIVATE_KEY = {encode(secrets.local_ephemeral_private)}\n"
        f"PRESHARED_KEY = {encode(secrets.preshared_key or bytes(32))}\n"
    )


class KeylogWriter:
    """A secrets subscriber (bus.subscribe_secrets) that appends each handshake's keys."""

    def __init__(self, path: str | os.PathLike, wall_offset: float = 0.0, name: str | None = None,
                 warn: TextIO | None = sys.stderr) -> None:
        self.path = os.fspath(path)
        self._file = open_private(self.path, append=True, encoding="ascii")
        self.wall_offset = wall_offset
        self.name = name
        self.handshakes = 0
        if warn is not None:
            print(SECRETS_WARNING.format(path=self.path), file=warn, flush=True)

    def __call__(self, secrets: HandshakeSecrets) -> None:
        if self._file.closed:
            return
        self._file.write(format_keylog(secrets, self.wall_offset, self.name))
        self._file.flush()  # per handshake: Wireshark may be reading the file live
        self.handshakes += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
