"""Durable file writes and advisory locks, for the device store and the offline files."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

__all__ = [
    "FileVersion",
    "fsync_directory",
    "lock",
    "read_versioned",
    "remove_temporaries",
    "write_atomic",
    "write_token",
]

# Identifies one content of a file that is only ever replaced, never edited in place.
FileVersion = tuple[int, int, int]

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)

if sys.platform == "win32":
    import msvcrt

    def lock(fd: int, *, exclusive: bool) -> None:
        # msvcrt has no shared lock: readers take the exclusive one too.
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)

else:
    import fcntl

    def lock(fd: int, *, exclusive: bool) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def read_versioned(path: str) -> tuple[bytes, FileVersion]:
    """The content of ``path`` and the version (inode, size, mtime) of the file it came
    from. Raises FileNotFoundError (or another OSError).

    Plain descriptor calls: a buffered file object costs more than the reading itself
    for the store's small files, and every open of the store reads them.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        found = os.fstat(fd)
        chunks = [os.read(fd, found.st_size + 1)]
        while chunks[-1]:  # until end of file, should the file have grown meanwhile
            chunks.append(os.read(fd, 65536))
    finally:
        os.close(fd)
    return b"".join(chunks), (found.st_ino, found.st_size, found.st_mtime_ns)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers and crashes see the old or new bytes, never a mix."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; Windows cannot open a directory to fsync it.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(directory: Path) -> None:
    """Delete temporary files a crashed writer left (callers hold the exclusive lock)."""
    for leftover in [*directory.glob(".*.tmp"), *directory.glob("keys/.*.tmp")]:
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def write_token(path: Path, token: str) -> Path:
    """Write a compact JWS as a one-line text file, atomically; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, token.encode("ascii") + b"\n")
    return path
