"""Durable file writes and advisory locks, for the device store and the offline files."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

__all__ = [
    "FileVersion",
    "fsync_directory",
    "lock",
    "read_small",
    "read_versioned",
    "remove_temporaries",
    "write_atomic",
    "write_token",
]

# Identifies one content of a file that is only ever replaced, never edited in place.
FileVersion = tuple[int, int, int]

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
_SMALL_FILE_BLOCK = 4096

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
    for the store's small files, and every open of the store reads them. One read
    suffices when it returns the size ``fstat`` gave: the files are replaced, never
    edited in place, so the open descriptor's content does not change.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        found = os.fstat(fd)
        content = os.read(fd, found.st_size + 1)
        if len(content) != found.st_size:  # a short read, or the file grew meanwhile
            chunks = [content]
            while chunks[-1]:
                chunks.append(os.read(fd, 65536))
            content = b"".join(chunks)
    finally:
        os.close(fd)
    return content, (found.st_ino, found.st_size, found.st_mtime_ns)


def read_small(path: str) -> bytes:
    """The content of ``path``, a file of a few hundred bytes (the store's key file).
    Raises FileNotFoundError (or another OSError).

    Without the ``fstat`` of :func:`read_versioned`: a read of a regular file returns
    less than it asked for only at the end of the file, so one read of a larger block
    is the whole file (another follows only if the block came back full).
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        chunks = [os.read(fd, _SMALL_FILE_BLOCK)]
        while len(chunks[-1]) == _SMALL_FILE_BLOCK:
            chunks.append(os.read(fd, _SMALL_FILE_BLOCK))
    finally:
        os.close(fd)
    return b"".join(chunks) if len(chunks) > 1 else chunks[0]


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers and crashes see the old or new bytes, never a mix."""
    import tempfile  # writes are rare; every application start reads

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
