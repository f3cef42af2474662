"""The embedded ``local`` backend: a crash-safe RADOS-shaped store in one directory.

Layout::

    <data_dir>/pools/<escaped name>/meta.db     SQLite (WAL): objects, xattrs, omap
    <data_dir>/pools/<escaped name>/data/xx/<32 hex>   payload files (fan-out by 2 hex)
    <data_dir>/tmp/     pools being created (renamed into pools/ when complete)
    <data_dir>/trash/   pools being deleted (renamed out of pools/ first, then removed)
    <data_dir>/changes/<escaped name>.slots   the pool's change feed (local_changes)

Pool names are escaped into one directory name (``[A-Za-z0-9_.-]`` kept, a
leading dot and anything else as ``%XX``), so ``.``, ``..`` and ``/`` are safe.
Pool creation and deletion are one ``rename`` each, hence atomic and idempotent
across processes.

Metadata, one SQLite DB per pool: ``objects`` (oid, version, size, mtime, data
file name or inline payload), ``xattrs`` and ``omap`` (WITHOUT ROWID, keyed
(oid, key) with keys as UTF-8 BLOBs, so scans are in bytewise order and use
``start_after``/prefix bounds with LIMIT). WAL mode; ``synchronous=FULL`` when
``durable`` (the default) else NORMAL; a 60 s busy timeout, so several
processes (gateway workers, the admin CLI) share one data directory.

Payloads: up to ``inline_max`` bytes (64 KiB) live inline in the ``objects`` row,
so a small ``write_full`` + ``omap_set`` is one SQLite transaction and one WAL
fsync, no file at all. Bigger payloads live in files. Every write goes through
``PoolStore.operate``:

1. If the op fixes the final payload itself (it contains ``write_full`` or
   ``remove``), that payload is computed first and, if large, written to a NEW
   uniquely named file which is fsynced (file and directory) before any lock.
2. ``BEGIN IMMEDIATE`` (the cross-process writer lock; an in-process lock per
   pool queues threads in front of it): guards are checked, then the per-step
   preconditions, all before a single byte of the object changes.
3. In-place steps (write at offset, append, truncate) on a file-backed object
   edit its file directly under an exclusive ``flock`` and fsync it. The size in
   SQLite is the truth and bytes past it are invisible, so appends, writes past
   the end and truncates are crash-atomic; only overwriting existing bytes of a
   file-backed object is not (a crash mid-write can leave old and new bytes mixed
   in that range, as with a POSIX file). Inline objects are always atomic.
4. One transaction switches the data pointer, applies omap/xattr changes and
   bumps the version; the replaced file is unlinked after COMMIT.

Group commit (``storage.local_write``): ops that arrive while another commit is
in progress queue up; the next leader applies all of them (one per object) in
one transaction, each under its own SAVEPOINT so a failed guard undoes only that
op, and commits once: one WAL fsync per batch. A caller returns only after the
COMMIT that contains its op, so an acknowledged write still survives kill -9.

A crash before COMMIT leaves at most an unreferenced file; ``connect()``
collects those. A file being written holds an exclusive ``flock`` until its
commit, and the collector only removes files it can lock and that are still
unreferenced once locked, so it never races writers of other processes.
Readers of file-backed objects take a shared ``flock`` and re-read the size
under it, so a read never mixes an in-place edit with a stale size.

Versions start at 1 and every mutation bumps them; a removed object's version
is remembered as a pool high-water mark, so a re-created object's version is
always above any version it had before (no ABA on ``assert_version``).

Where the protocol leaves it open, RADOS behaviour is followed: ``omap_get``,
``omap_list``, ``get_xattrs``, ``omap_rm``/``omap_clear``/``rm_xattr`` and
``omap_cmp``/``assert_version`` guards on a missing object raise
``ObjectNotFound``; ``truncate`` of a missing object is a no-op (it does not
create it); ``delete_pool`` of a missing pool raises ``PoolNotFound``.

All blocking work runs on a bounded thread pool; each pool keeps a small set of
SQLite connections, each used by one thread at a time.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from storage import local_files as lf
from storage.errors import BackendUnavailable, PoolNotFound, StorageError
from storage.local_changes import LocalChangeFeed
from storage.local_store import DB_NAME, PoolStore, init_pool_dir
from storage.protocol import ErasureCode, ObjectStat, WriteOp

T = TypeVar("T")
INLINE_MAX = 64 * 1024
_LIST_BATCH = 1000
_STALE_TMP_S = 3600.0


class LocalBackend:
    kind = "local"

    def __init__(
        self,
        data_dir: Path,
        durable: bool = True,
        *,
        threads: int = 8,
        inline_max: int = INLINE_MAX,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.durable = durable
        self.inline_max = inline_max
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._stores: dict[str, PoolStore] = {}
        self._stores_lock = threading.Lock()
        self.orphans_collected = 0
        self._feeds: list[LocalChangeFeed] = []

    @property
    def _pools_dir(self) -> Path:
        return self.data_dir / "pools"

    # lifecycle ---------------------------------------------------------------
    async def connect(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="atonix-local")
        try:
            await self._run(self._connect_sync)
        except BaseException:
            await self.close()
            raise

    def _connect_sync(self) -> None:
        for sub in ("pools", "tmp", "trash"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        with os.scandir(self.data_dir / "trash") as it:
            trash = [e.path for e in it]
        for path in trash:  # deletions interrupted by a crash
            shutil.rmtree(path, ignore_errors=True)
        now = time.time()
        with os.scandir(self.data_dir / "tmp") as it:
            stale = [e.path for e in it if now - e.stat().st_mtime > _STALE_TMP_S]
        for path in stale:  # creations interrupted by a crash (fresh ones may be in flight)
            shutil.rmtree(path, ignore_errors=True)
        with os.scandir(self._pools_dir) as it:
            names = [e.name for e in it if e.is_dir()]
        for esc in names:
            try:
                store = self._store_escaped(esc, esc)
            except PoolNotFound:
                continue
            self.orphans_collected += store.collect_orphans()

    async def close(self) -> None:
        for feed in self._feeds:
            await feed.close()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)
        with self._stores_lock:
            stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            store.retire()

    async def ping(self) -> None:
        def check() -> None:
            pools = self._pools_dir
            if not pools.is_dir() or not os.access(pools, os.R_OK | os.W_OK | os.X_OK):
                raise BackendUnavailable(f"data directory {self.data_dir} is not usable")

        await self._run(check)

    # pools -------------------------------------------------------------------
    async def create_pool(self, name: str, erasure: ErasureCode | None = None) -> None:
        # One directory on one disk has nothing to spread codes over: an erasure-coded
        # pool is a plain pool here, used the same way (whole-object writes only).
        lf.escape_pool_name(name)  # ValueError for an unusable name, before any I/O
        await self._run(self._create_pool_sync, name)

    def _create_pool_sync(self, name: str) -> None:
        final = self._pools_dir / lf.escape_pool_name(name)
        if (final / DB_NAME).exists():
            return
        tmp = self.data_dir / "tmp" / f"pool-{uuid.uuid4().hex}"
        try:
            init_pool_dir(tmp)
            if self.durable:
                lf.fsync_dir(tmp / "data")
                lf.fsync_dir(tmp)
            try:
                os.rename(tmp, final)  # atomic; fails if another process won the race
            except OSError:
                if not (final / DB_NAME).exists():
                    raise
                return
            if self.durable:
                lf.fsync_dir(self._pools_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def delete_pool(self, name: str) -> None:
        await self._run(self._delete_pool_sync, name)

    def _delete_pool_sync(self, name: str) -> None:
        try:
            esc = lf.escape_pool_name(name)
        except ValueError:
            raise PoolNotFound(name) from None
        trash = self.data_dir / "trash" / f"{esc}.{uuid.uuid4().hex}"
        try:
            os.rename(self._pools_dir / esc, trash)
        except FileNotFoundError:
            raise PoolNotFound(name) from None
        if self.durable:
            lf.fsync_dir(self._pools_dir)
        with self._stores_lock:
            store = self._stores.pop(esc, None)
        if store is not None:
            store.retire()
        shutil.rmtree(trash, ignore_errors=True)

    async def pool_exists(self, name: str) -> bool:
        try:
            esc = lf.escape_pool_name(name)
        except ValueError:
            return False
        return await self._run(os.path.exists, self._pools_dir / esc / DB_NAME)

    def pool(self, name: str) -> LocalPool:
        return LocalPool(self, name)

    def changes(self, pool: str) -> LocalChangeFeed:
        feed = LocalChangeFeed(self.data_dir / "changes" / f"{lf.escape_pool_name(pool)}.slots")
        self._feeds.append(feed)
        return feed

    # plumbing ----------------------------------------------------------------
    def _store(self, name: str) -> PoolStore:
        try:
            esc = lf.escape_pool_name(name)
        except ValueError:
            raise PoolNotFound(name) from None
        return self._store_escaped(esc, name)

    def _store_escaped(self, esc: str, name: str) -> PoolStore:
        """The store of a pool, checked against the DB file on every call (one stat)
        so a pool deleted or re-created by another process is noticed."""
        path = self._pools_dir / esc
        try:
            st = os.stat(path / DB_NAME)
        except FileNotFoundError:
            raise PoolNotFound(name) from None
        ident = (st.st_dev, st.st_ino)
        with self._stores_lock:
            store = self._stores.get(esc)
            if store is not None and store.ident == ident:
                return store
            if store is not None:
                store.retire()
            store = PoolStore(path, name, self.durable, ident, self.inline_max)
            self._stores[esc] = store
            return store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        executor = self._executor
        if executor is None:
            raise BackendUnavailable("local backend is not connected")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
        except StorageError:
            raise
        except RuntimeError as exc:  # executor shut down by close()
            raise BackendUnavailable(f"local backend: {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(f"local backend I/O error: {exc}") from exc

    async def _call(self, pool: str, method: str, *args: Any) -> Any:
        def work() -> Any:
            try:
                return getattr(self._store(pool), method)(*args)
            except (OSError, sqlite3.Error):
                # the pool vanished under us (deleted by this or another process)
                esc = lf.escape_pool_name(pool)
                if not (self._pools_dir / esc / DB_NAME).exists():
                    raise PoolNotFound(pool) from None
                raise

        return await self._run(work)


class LocalPool:
    """Handle on one pool; every call is one hop to the backend's worker threads."""

    def __init__(self, backend: LocalBackend, name: str) -> None:
        self._backend = backend
        self.name = name

    async def read(self, oid: str, offset: int = 0, length: int | None = None) -> bytes:
        return await self._backend._call(self.name, "read", oid, offset, length)

    async def write(self, oid: str, data: bytes, offset: int = 0) -> None:
        await self.operate(oid, WriteOp().write(data, offset))

    async def write_full(self, oid: str, data: bytes) -> None:
        await self.operate(oid, WriteOp().write_full(data))

    async def append(self, oid: str, data: bytes) -> None:
        await self.operate(oid, WriteOp().append(data))

    async def truncate(self, oid: str, size: int) -> None:
        await self.operate(oid, WriteOp().truncate(size))

    async def remove(self, oid: str) -> None:
        await self.operate(oid, WriteOp().remove())

    async def stat(self, oid: str) -> ObjectStat:
        return await self._backend._call(self.name, "stat", oid)

    async def get_xattr(self, oid: str, name: str) -> bytes:
        return await self._backend._call(self.name, "get_xattr", oid, name)

    async def get_xattrs(self, oid: str) -> dict[str, bytes]:
        return await self._backend._call(self.name, "get_xattrs", oid)

    async def set_xattr(self, oid: str, name: str, value: bytes) -> None:
        await self.operate(oid, WriteOp().set_xattr(name, value))

    async def omap_get(self, oid: str, keys: list[str]) -> dict[str, bytes]:
        return await self._backend._call(self.name, "omap_get", oid, list(keys))

    async def omap_list(
        self, oid: str, start_after: str = "", prefix: str = "", max_items: int = 1000
    ) -> list[tuple[str, bytes]]:
        return await self._backend._call(
            self.name, "omap_list", oid, start_after, prefix, max_items
        )

    async def omap_set(self, oid: str, items: dict[str, bytes]) -> None:
        await self.operate(oid, WriteOp().omap_set(items))

    async def omap_rm(self, oid: str, keys: list[str]) -> None:
        await self.operate(oid, WriteOp().omap_rm(keys))

    async def operate(self, oid: str, op: WriteOp) -> None:
        if any(s[0] in ("write", "truncate") and s[-1] < 0 for s in op.steps):
            raise ValueError("offsets and sizes must be >= 0")
        await self._backend._call(self.name, "operate", oid, op)

    async def list_objects(self, prefix: str = "") -> AsyncIterator[str]:
        after: str | None = None
        while True:
            batch, done = await self._backend._call(
                self.name, "list_page", prefix, after, _LIST_BATCH
            )
            for oid in batch:
                yield oid
            if done or not batch:
                return
            after = batch[-1]
