"""One pool of the local backend: SQLite metadata plus data files (synchronous).

Every method runs on a worker thread of ``LocalBackend``; see ``storage.local``
for the design and the crash-safety argument.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from storage import local_files as lf
from storage.errors import NoSuchAttribute, ObjectNotFound
from storage.local_write import PoolWriter
from storage.protocol import ObjectStat

DB_NAME = "meta.db"
LOCK_NAME = "write.lock"
DATA_DIR = "data"
BUSY_TIMEOUT_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    oid TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    file TEXT,
    inline BLOB
);
CREATE INDEX IF NOT EXISTS objects_file ON objects(file) WHERE file IS NOT NULL;
CREATE TABLE IF NOT EXISTS xattrs (
    oid TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (oid, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS omap (
    oid TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (oid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
PRAGMA user_version = 1;
"""


def init_pool_dir(path: Path) -> None:
    """Lay out a new (not yet visible) pool directory: data dir and an empty DB."""
    (path / DATA_DIR).mkdir(parents=True)
    (path / LOCK_NAME).touch()
    conn = sqlite3.connect(path / DB_NAME, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(SCHEMA)
    finally:
        conn.close()


def _prefix_upper(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with prefix."""
    p = prefix.rstrip(b"\xff")
    if not p:
        return None
    return p[:-1] + bytes([p[-1] + 1])


class PoolStore(PoolWriter):
    """Metadata DB + data files of one pool, used from many threads (and processes)."""

    def __init__(
        self, path: Path, name: str, durable: bool, ident: tuple[int, int], inline_max: int
    ) -> None:
        self.path = path
        self.name = name
        self.durable = durable
        self.ident = ident
        self.inline_max = inline_max
        self.data_dir = path / DATA_DIR
        self._write_lock = threading.Lock()  # in-process writers queue here ...
        self._lock_fd: int | None = None  # ... and processes on a flock of write.lock
        self._queue = []  # group commit (storage.local_write): staged ops ...
        self._queue_lock = threading.Lock()
        self._leader_lock = threading.Lock()  # ... committed by whoever holds this
        self._idle: list[sqlite3.Connection] = []
        self._idle_lock = threading.Lock()
        self._retired = False

    # connections -------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(str(self.path / DB_NAME)) + "?mode=rw"
        conn = sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    @contextlib.contextmanager
    def conn(self) -> Iterator[sqlite3.Connection]:
        """A connection used by one thread at a time (a small per-pool pool)."""
        with self._idle_lock:
            c = self._idle.pop() if self._idle else None
        if c is None:
            c = self._open()
        try:
            yield c
        finally:
            if c.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    c.execute("ROLLBACK")
            with self._idle_lock:
                keep = not self._retired and len(self._idle) < 32
                if keep:
                    self._idle.append(c)
            if not keep:
                c.close()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """The pool's writer lock, across threads and processes.

        SQLite's own lock (``BEGIN IMMEDIATE``) is still taken inside, but its busy
        handler polls with sleeps of up to 100 ms, which lets one busy process
        starve the others; a blocking ``flock`` hands the lock over promptly.
        """
        with self._write_lock:
            if self._lock_fd is None:
                self._lock_fd = os.open(
                    self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
                )
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def retire(self) -> None:
        """Close idle connections; connections in use are closed when released."""
        with self._idle_lock:
            self._retired = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()
        with self._write_lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # reads -------------------------------------------------------------------
    def stat(self, oid: str) -> ObjectStat:
        with self.conn() as c:
            row = c.execute(
                "SELECT size, mtime, version FROM objects WHERE oid=?", (oid,)
            ).fetchone()
        if row is None:
            raise ObjectNotFound(oid)
        return ObjectStat(size=row[0], mtime=row[1], version=row[2])

    def read(self, oid: str, offset: int, length: int | None) -> bytes:
        offset = max(offset, 0)
        with self.conn() as c:
            for _ in range(100):
                if length is None:
                    row = c.execute(
                        "SELECT size, file, substr(inline, ?) FROM objects WHERE oid=?",
                        (offset + 1, oid),
                    ).fetchone()
                else:
                    row = c.execute(
                        "SELECT size, file, substr(inline, ?, ?) FROM objects WHERE oid=?",
                        (offset + 1, max(length, 0), oid),
                    ).fetchone()
                if row is None:
                    raise ObjectNotFound(oid)
                _, file, inline = row
                if file is None:
                    return bytes(inline or b"")
                got = self._read_file(c, oid, file, offset, length)
                if got is not None:
                    return got
        raise ObjectNotFound(oid)  # pragma: no cover - object rewritten 100 times meanwhile

    def _read_file(
        self, c: sqlite3.Connection, oid: str, file: str, offset: int, length: int | None
    ) -> bytes | None:
        """Read under a shared flock (in-place writers hold it exclusively until their
        commit), re-reading the size once locked so bytes and size agree. None: the
        object moved to another file meanwhile, retry."""
        try:
            fd = os.open(lf.data_path(self.data_dir, file), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            row = c.execute("SELECT size, file FROM objects WHERE oid=?", (oid,)).fetchone()
            if row is None or row[1] != file:
                return None
            end = row[0] if length is None else min(row[0], offset + max(length, 0))
            return lf.read_range(fd, offset, end - offset)
        finally:
            os.close(fd)

    def get_xattr(self, oid: str, name: str) -> bytes:
        with self.conn() as c:
            row = c.execute(
                "SELECT o.rowid, x.value FROM objects o LEFT JOIN xattrs x "
                "ON x.oid=o.oid AND x.name=? WHERE o.oid=?",
                (name, oid),
            ).fetchone()
        if row is None:
            raise ObjectNotFound(oid)
        if row[1] is None:
            raise NoSuchAttribute(name)
        return bytes(row[1])

    def get_xattrs(self, oid: str) -> dict[str, bytes]:
        with self.conn() as c:
            c.execute("BEGIN")
            self._require(c, oid)
            rows = c.execute(
                "SELECT name, value FROM xattrs WHERE oid=? ORDER BY name", (oid,)
            ).fetchall()
            c.execute("COMMIT")
        return {n: bytes(v) for n, v in rows}

    def omap_get(self, oid: str, keys: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        with self.conn() as c:
            c.execute("BEGIN")
            self._require(c, oid)
            for key in dict.fromkeys(keys):
                row = c.execute(
                    "SELECT value FROM omap WHERE oid=? AND key=?", (oid, key.encode())
                ).fetchone()
                if row is not None:
                    out[key] = bytes(row[0])
            c.execute("COMMIT")
        return out

    def omap_list(
        self, oid: str, start_after: str, prefix: str, max_items: int
    ) -> list[tuple[str, bytes]]:
        after, pre = start_after.encode(), prefix.encode()
        sql, args = "SELECT key, value FROM omap WHERE oid=?", [oid]
        if pre and pre > after:
            sql += " AND key>=?"
            args.append(pre)
        else:
            sql += " AND key>?"
            args.append(after)
        upper = _prefix_upper(pre)
        if upper is not None:
            sql += " AND key<?"
            args.append(upper)
        sql += " ORDER BY key LIMIT ?"
        args.append(max(max_items, 0))
        with self.conn() as c:
            c.execute("BEGIN")
            self._require(c, oid)
            rows = c.execute(sql, args).fetchall()
            c.execute("COMMIT")
        return [(bytes(k).decode(), bytes(v)) for k, v in rows]

    def list_page(self, prefix: str, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Object ids > after (>= prefix) in byte order; (ids, done)."""
        with self.conn() as c:
            if after is None:
                rows = c.execute(
                    "SELECT oid FROM objects WHERE oid>=? ORDER BY oid LIMIT ?", (prefix, limit)
                ).fetchall()
            else:
                rows = c.execute(
                    "SELECT oid FROM objects WHERE oid>? ORDER BY oid LIMIT ?", (after, limit)
                ).fetchall()
        out = []
        for (oid,) in rows:
            if not oid.startswith(prefix):
                return out, True  # ids sharing a prefix are contiguous in byte order
            out.append(oid)
        return out, len(rows) < limit

    @staticmethod
    def _require(c: sqlite3.Connection, oid: str) -> None:
        if c.execute("SELECT 1 FROM objects WHERE oid=?", (oid,)).fetchone() is None:
            raise ObjectNotFound(oid)

    # maintenance -------------------------------------------------------------
    def collect_orphans(self) -> int:
        """Unlink data files no object references (left by a crash before commit)."""
        removed = 0
        if not self.data_dir.is_dir():
            return 0
        with self.conn() as c:

            def referenced(name: str) -> bool:
                q = "SELECT 1 FROM objects WHERE file=? LIMIT 1"
                return c.execute(q, (name,)).fetchone() is not None

            with os.scandir(self.data_dir) as subs:
                subdirs = [s.path for s in subs if s.is_dir(follow_symlinks=False)]
            for sub in subdirs:
                with os.scandir(sub) as it:
                    entries = list(it)
                for entry in entries:
                    name = entry.name
                    if not lf.is_data_file_name(name) or referenced(name):
                        continue
                    try:
                        fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
                    except FileNotFoundError:
                        continue
                    try:
                        # A writer holds LOCK_EX from creation until after its commit.
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        if not referenced(name):
                            os.unlink(entry.path)
                            removed += 1
                    except (BlockingIOError, FileNotFoundError):
                        pass
                    finally:
                        os.close(fd)
        return removed
