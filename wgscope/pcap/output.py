"""What both capture writers (pcap_writer, pcapng_writer) and the key log share: the file written.

A path is created 0600, and an existing file narrowed to 0600 too: a capture with a Decryption
Secrets Block, like a key log, decrypts the tunnel. A binary file object the caller passed stays
the caller's: close() flushes it and leaves it open.
"""

from __future__ import annotations

import os
from typing import IO, BinaryIO

__all__ = ["CaptureOutput", "open_private"]


def open_private(path: str | os.PathLike, append: bool = False, encoding: str | None = None) -> IO:
    """Open `path` for writing, created 0600 (also if it already existed): truncated, or appended
    to with `append`; binary, or text in `encoding` with '\\n' line ends."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC), 0o600)
    try:
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "wb") if encoding is None else os.fdopen(fd, "w", encoding=encoding, newline="\n")
    except BaseException:
        os.close(fd)
        raise


class CaptureOutput:
    """The file a capture writer writes, and its life: flush, close, `with`."""

    def __init__(self, path_or_fileobj: str | os.PathLike | BinaryIO) -> None:
        if isinstance(path_or_fileobj, (str, bytes, os.PathLike)):
            self._file = open_private(path_or_fileobj)
            self._owns_file = True
        else:
            self._file = path_or_fileobj
            self._owns_file = False
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"write to a closed {type(self).__name__}")

    def flush(self) -> None:
        self._check_open()
        self._file.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_file:
            self._file.close()
        else:
            self._file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
