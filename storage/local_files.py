"""File-level helpers of the local backend: names, fsync, data files, byte edits.

Everything here is synchronous and runs on the backend's worker threads.
See ``storage.local`` for the overall design.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from pathlib import Path

_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_ZEROS = bytes(1 << 20)


def escape_pool_name(name: str) -> str:
    """A pool name as one safe directory name (reversible, no ``.``/``..``, no ``/``).

    ``[A-Za-z0-9_.-]`` are kept (readable names such as ``gw.meta`` stay as they
    are), a leading dot and every other character become ``%XX`` per UTF-8 byte.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("pool names must be non-empty strings")
    out = []
    for i, ch in enumerate(name):
        if ch in _SAFE and not (i == 0 and ch == "."):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    escaped = "".join(out)
    if len(escaped) > 200:
        raise ValueError(f"pool name too long: {name!r}")
    return escaped


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_data_file_name(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def data_path(data_dir: Path, name: str) -> Path:
    """Data files fan out over 256 sub-directories by the first two hex digits."""
    return data_dir / name[:2] / name


def create_data_file(data_dir: Path, durable: bool) -> tuple[str, int]:
    """Create a new uniquely named data file, locked exclusively (fd stays open).

    The exclusive ``flock`` marks the file as in flight until the caller has
    committed (or abandoned) it: the orphan collector of another process skips
    files it cannot lock. If a collector unlinked the file between our create
    and our lock, ``st_nlink`` is 0 and we start over with a new name.
    """
    while True:
        name = uuid.uuid4().hex
        path = data_path(data_dir, name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            if durable:
                fsync_dir(data_dir)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink > 0:
                return name, fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def read_range(fd: int, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` (fewer only if the file is shorter)."""
    if length <= 0:
        return b""
    first = os.pread(fd, length, offset)
    if len(first) == length or not first:
        return first
    parts = [first]
    got = len(first)
    while got < length:
        chunk = os.pread(fd, length - got, offset + got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def write_new_file(data_dir: Path, data: bytes, durable: bool) -> tuple[str, int]:
    """A new data file holding ``data``, durable on return; returns (name, locked fd)."""
    name, fd = create_data_file(data_dir, durable)
    try:
        write_all(fd, data, 0)
        if durable:
            os.fsync(fd)
            fsync_dir(data_path(data_dir, name).parent)
    except BaseException:
        discard_file(data_dir, name, fd)
        raise
    return name, fd


def discard_file(data_dir: Path, name: str, fd: int | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(data_path(data_dir, name))
    if fd is not None:
        os.close(fd)


def apply_in_memory(buf: bytearray, step: tuple) -> None:
    """Apply one data step (write / append / truncate) to an in-memory payload."""
    kind = step[0]
    if kind == "write":
        data, off = step[1], step[2]
        if not data:
            return
        if off > len(buf):
            buf.extend(bytes(off - len(buf)))
        buf[off : off + len(data)] = data
    elif kind == "append":
        buf.extend(step[1])
    elif kind == "truncate":
        size = step[1]
        if size < len(buf):
            del buf[size:]
        else:
            buf.extend(bytes(size - len(buf)))


class InPlaceFile:
    """In-place data steps on an object's current file, crash-safe where possible.

    Invariant on disk: the committed size (in SQLite) is the truth; bytes of the
    file past it are garbage that no reader ever sees. So appends and writes past
    the committed end only touch invisible bytes until the metadata commit, and a
    shrinking truncate only cuts the file after the commit. Bytes that must read
    as zero (a hole, an extending truncate) are zeroed or cut explicitly, never
    assumed. Overwriting bytes below the committed size is the one non-atomic
    case (a crash mid-write may leave a mix of old and new bytes in that range).
    """

    def __init__(self, fd: int, committed: int) -> None:
        self.fd = fd
        self.committed = committed
        self.phys = os.fstat(fd).st_size
        if self.phys > committed:  # garbage from an interrupted op
            os.ftruncate(fd, committed)
            self.phys = committed
        self.logical = committed

    def _zero_fill(self, start: int, end: int) -> None:
        """Make [start, end) read as zeros and the file at least ``end`` long."""
        if start >= end:
            return
        if start < self.phys:
            if start >= self.committed:
                os.ftruncate(self.fd, start)
                self.phys = start
            else:
                pos, stop = start, min(end, self.committed, self.phys)
                while pos < stop:
                    n = min(stop - pos, len(_ZEROS))
                    write_all(self.fd, memoryview(_ZEROS)[:n], pos)
                    pos += n
                if end > self.committed and self.phys > self.committed:
                    os.ftruncate(self.fd, self.committed)
                    self.phys = self.committed
        if self.phys < end:
            os.ftruncate(self.fd, end)
            self.phys = end

    def apply(self, step: tuple) -> None:
        kind = step[0]
        if kind == "truncate":
            size = step[1]
            if size > self.logical:
                self._zero_fill(self.logical, size)
            self.logical = size
            return
        data = step[1]
        if not data:
            return
        off = self.logical if kind == "append" else step[2]
        self._zero_fill(self.logical, off)
        write_all(self.fd, data, off)
        self.phys = max(self.phys, off + len(data))
        self.logical = max(self.logical, off + len(data))

    def finish(self, durable: bool) -> int | None:
        """Before the commit: trim what is safe, fsync. Returns a deferred trim size."""
        deferred = None
        if self.phys > self.logical:
            if self.logical >= self.committed:
                os.ftruncate(self.fd, self.logical)
                self.phys = self.logical
            else:
                deferred = self.logical  # cut only once the smaller size is committed
        if durable:
            os.fsync(self.fd)
        return deferred
