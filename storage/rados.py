"""The ``rados`` backend: the storage protocol on a Ceph cluster through python-rados.

Data paths use librados aio calls bridged to asyncio (``storage.rados_io``); calls
python-rados only has synchronously (pool management, xattr reads, stat with the
object version, object listing) run on a small thread pool. Compound ``WriteOp``s
become one librados write op, so RADOS applies guards and mutations atomically.

How the protocol's guards map onto RADOS (all inside the one write op):
- ``create(exclusive)``: ``new(LIBRADOS_CREATE_EXCLUSIVE / _IDEMPOTENT)``.
- ``assert_exists()`` (implied by the version and omap guards, which raise
  ``ObjectNotFound`` on a missing object, as the local backend does): RADOS
  answers ENOENT for an op that only reads a missing object, but a write op
  silently works on an empty object. So a write op gets an ``omap_rm`` of no
  keys first (ENOENT on a missing object, no effect otherwise); a guard-only op
  gets a no-key ``cmpomap.cmp_vals`` (read-only, no version bump).
- ``assert_version(v)``: librados ``assert_version`` (ERANGE/EOVERFLOW on mismatch);
  it reports EOVERFLOW rather than ENOENT for a missing object inside a write op,
  hence the existence guard in front of it.
- ``omap_cmp``: ``cls_cmpomap`` (see ``rados_io``), because librados' omap_cmp
  treats a missing key as b"" and has no NE. GT/LT are special: the OSD compares
  bytes as *signed* chars (b"\\x80" < b"\\x01"), not bytewise. For them
  ``operate`` reads the guarded keys, evaluates the guards in Python and sends an
  EQ guard on the values it saw (retrying if they changed meanwhile): the write
  still happens only if ``stored <op> value`` holds when RADOS applies it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from functools import partial

import rados

from storage.errors import (
    BackendUnavailable,
    GuardFailed,
    ObjectNotFound,
    PoolNotFound,
    StorageError,
)
from storage.protocol import CmpOp, ErasureCode, ObjectStat, WriteOp, omap_guard_holds
from storage.rados_changes import RadosChangeFeed
from storage.rados_io import (
    CMP_ALWAYS_FAILS,
    CMPOMAP_EQ,
    AioBridge,
    build_write_op,
    encode_cmp_vals,
    pool_error,
    server_guards,
    translate,
)

_FIRST_READ = 64 << 10  # whole-object reads: one call for small ones (a bigger buffer costs more)
_MAX_READ = 16 << 20  # python-rados allocates the full length up front: cap it
_LIST_BATCH = 1000
_ORDERED = (CmpOp.GT, CmpOp.LT)


class RadosPool:
    """One RADOS pool (``storage.protocol.Pool``)."""

    def __init__(self, backend: RadosBackend, name: str):
        self.name = name
        self._b = backend
        self._io: rados.Ioctx | None = None
        self._open_lock = asyncio.Lock()
        # stat needs ioctx.get_last_version(), which is per ioctx: each pool thread
        # gets its own ioctx, so no other call can slip in between.
        self._tls = threading.local()
        self._thread_ios: list[rados.Ioctx] = []
        self._tls_lock = threading.Lock()

    # --- plumbing -------------------------------------------------------------
    async def _ioctx(self) -> rados.Ioctx:
        return self._io or await self._open()

    async def _open(self) -> rados.Ioctx:
        if self._io is None:
            async with self._open_lock:
                if self._io is None:
                    b = self._b._require()
                    try:
                        self._io = await b.blocking(
                            f"open pool {self.name}", self._b._cluster.open_ioctx, self.name
                        )
                    except StorageError as e:
                        raise pool_error(e, self.name) from e
        return self._io

    def _thread_ioctx(self) -> rados.Ioctx:
        io = getattr(self._tls, "io", None)
        if io is None:
            try:
                io = self._b._cluster.open_ioctx(self.name)
            except rados.ObjectNotFound as e:
                raise PoolNotFound(f"pool {self.name!r} does not exist") from e
            self._tls.io = io
            with self._tls_lock:
                self._thread_ios.append(io)
        return io

    async def _sync(self, what: str, fn, *args):
        await self._ioctx()  # PoolNotFound before touching the thread pool
        return await self._b._require().blocking(f"{what} {self.name}", fn, *args)

    def _close(self) -> None:
        with self._tls_lock:
            ios, self._thread_ios = self._thread_ios, []
        if self._io is not None:
            ios.append(self._io)
            self._io = None
        self._tls = threading.local()
        for io in ios:
            with contextlib.suppress(rados.Error):
                io.close()

    async def _aio(self, what: str, oid: str, start) -> tuple:
        io = self._io or await self._open()
        return await self._b._require().aio(partial(start, io), (what, self.name, oid))

    # --- data -----------------------------------------------------------------
    async def read(self, oid: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must be >= 0")
        if length == 0:  # RADOS reads "to the end" for length 0
            await self.stat(oid)
            return b""
        parts: list[bytes] = []
        remaining = length
        want = min(length, _MAX_READ) if length is not None else _FIRST_READ
        while True:
            got, data = await self._aio(
                "read", oid, lambda io, cb, w=want, o=offset: io.aio_read(oid, w, o, cb)
            )
            # python-rados leaves a 0-byte read at the requested (garbage) length
            if got != len(data or b""):
                data = data[:got] if data else b""
            parts.append(data)
            offset += len(data)
            if remaining is not None:
                remaining -= len(data)
            # a short read is the end of the object (RADOS never truncates replies)
            if len(data) < want or remaining == 0:
                break
            want = _MAX_READ if remaining is None else min(remaining, _MAX_READ)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def write(self, oid: str, data: bytes, offset: int = 0) -> None:
        await self._aio("write", oid, lambda io, cb: io.aio_write(oid, bytes(data), offset, cb))

    async def write_full(self, oid: str, data: bytes) -> None:
        await self._aio("write_full", oid, lambda io, cb: io.aio_write_full(oid, bytes(data), cb))

    async def append(self, oid: str, data: bytes) -> None:
        await self._aio("append", oid, lambda io, cb: io.aio_append(oid, bytes(data), cb))

    async def truncate(self, oid: str, size: int) -> None:
        # python-rados has no aio truncate; a write op does it (a no-op on a
        # missing object, which it does not create)
        await self.operate(oid, WriteOp().truncate(size))

    async def remove(self, oid: str) -> None:
        await self._aio("remove", oid, lambda io, cb: io.aio_remove(oid, cb))

    async def stat(self, oid: str) -> ObjectStat:
        def do() -> ObjectStat:
            io = self._thread_ioctx()
            size, mtime = io.stat(oid)
            return ObjectStat(size=size, mtime=time.mktime(mtime), version=io.get_last_version())

        return await self._sync(f"stat {oid} in", do)

    # --- xattrs ---------------------------------------------------------------
    async def get_xattr(self, oid: str, name: str) -> bytes:
        return await self._sync(
            f"get_xattr {oid} {name} in", lambda: self._thread_ioctx().get_xattr(oid, name)
        )

    async def get_xattrs(self, oid: str) -> dict[str, bytes]:
        return await self._sync(
            f"get_xattrs {oid} in", lambda: dict(self._thread_ioctx().get_xattrs(oid))
        )

    async def set_xattr(self, oid: str, name: str, value: bytes) -> None:
        await self._aio(
            "set_xattr", oid, lambda io, cb: io.aio_setxattr(oid, name, bytes(value), cb)
        )

    # --- omap -----------------------------------------------------------------
    async def _omap_read(self, oid: str, what: str, add) -> list[tuple[str, bytes]]:
        """Run one read op built by ``add(io, op) -> OmapIterator``; return its pairs."""
        io = await self._ioctx()
        bridge = self._b._require()
        op = rados.ReadOp().create()
        try:
            it, _ = add(io, op)
        except BaseException:
            op.release()
            raise
        # cleanup keeps the iterator alive too: librados fills it on completion
        await bridge.aio(
            lambda cb: io.operate_aio_read_op(op, oid, cb),
            (what, self.name, oid),
            cleanup=lambda: (op.release(), it),
        )
        # python-rados turns an empty value into None
        return [(k, v if v is not None else b"") for k, v in it]

    async def omap_get(self, oid: str, keys: list[str]) -> dict[str, bytes]:
        pairs = await self._omap_read(
            oid, "omap_get", lambda io, op: io.get_omap_vals_by_keys(op, tuple(keys))
        )
        return dict(pairs)

    async def omap_list(
        self, oid: str, start_after: str = "", prefix: str = "", max_items: int = 1000
    ) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        cap = self._b._omap_cap
        while len(out) < max_items:
            want = min(max_items - len(out), cap)
            batch = await self._omap_read(
                oid,
                "omap_list",
                lambda io, op, s=start_after, w=want: io.get_omap_vals(op, s, prefix, w),
            )
            out.extend(batch)
            # The OSD caps each reply (osd_max_omap_entries_per_request, 1024 by
            # default); python-rados hides the "more" flag, so only a batch shorter
            # than both the request and that cap proves the scan is complete.
            if len(batch) < want or not batch:
                break
            start_after = batch[-1][0]
        return out

    async def omap_set(self, oid: str, items: dict[str, bytes]) -> None:
        await self.operate(oid, WriteOp().omap_set(items))

    async def omap_rm(self, oid: str, keys: list[str]) -> None:
        await self.operate(oid, WriteOp().omap_rm(keys))

    # --- compound ops ---------------------------------------------------------
    async def operate(self, oid: str, op: WriteOp) -> None:
        if op == WriteOp():
            return  # nothing to check or do (librados rejects an empty op: EINVAL)
        if not any(c in _ORDERED for _, _, c in op.omap_guards):
            await self._submit(oid, op, server_guards(op))
            return
        # GT/LT: compare-and-swap on the observed values (see module docstring).
        keys = list(dict.fromkeys(k for k, _, _ in op.omap_guards))
        while True:
            try:
                seen: dict[str, bytes] | None = await self.omap_get(oid, keys)
            except ObjectNotFound:
                seen = None
            holds = seen is not None and all(
                omap_guard_holds(seen.get(k), v, c) for k, v, c in op.omap_guards
            )
            # A failing guard still goes to RADOS (as an always-failing guard) so the
            # exists/create/version guards report first, as they would anyway.
            guards = [encode_cmp_vals(CMPOMAP_EQ, seen.items())] if holds else [CMP_ALWAYS_FAILS]
            try:
                await self._submit(oid, op, guards)
                return
            except GuardFailed as e:
                if not holds or not _is_cancel(e):
                    raise
            await asyncio.sleep(0)  # a guarded key changed since we read it: retry

    async def _submit(self, oid: str, op: WriteOp, omap_guards: list[bytes]) -> None:
        io = await self._ioctx()
        bridge = self._b._require()
        w = rados.WriteOp().create()
        try:
            build_write_op(io, w, op, omap_guards)
        except BaseException:
            w.release()
            raise
        await bridge.aio(
            lambda cb: io.operate_aio_write_op(w, oid, cb),
            ("operate", self.name, oid),
            cleanup=w.release,
        )

    # --- listing --------------------------------------------------------------
    async def list_objects(self, prefix: str = "") -> AsyncIterator[str]:
        io = await self._ioctx()
        it = await self._sync("list", io.list_objects)

        def batch() -> list[str]:
            names = []
            for obj in it:
                names.append(obj.key)
                if len(names) >= _LIST_BATCH:
                    break
            return names

        while True:
            names = await self._sync("list", batch)
            for name in names:
                if name.startswith(prefix):
                    yield name
            if len(names) < _LIST_BATCH:
                return


def _is_cancel(e: GuardFailed) -> bool:
    return getattr(e, "errno", None) == errno.ECANCELED


class RadosBackend:
    """A connection to one Ceph cluster (``storage.protocol.Backend``)."""

    kind = "rados"

    def __init__(
        self,
        conffile: str,
        max_in_flight: int = 512,
        connect_timeout: float = 10.0,
        *,
        op_timeout: float = 30.0,
        threads: int = 8,
    ):
        self.conffile = conffile
        self.max_in_flight = max_in_flight
        self.connect_timeout = connect_timeout
        self.op_timeout = op_timeout
        self.threads = threads
        self._cluster: rados.Rados | None = None
        self._bridge: AioBridge | None = None
        self._pools: dict[str, RadosPool] = {}
        self._feeds: list[RadosChangeFeed] = []
        self._omap_cap = 1024

    def _require(self) -> AioBridge:
        if self._bridge is None or self._cluster is None:
            raise BackendUnavailable("rados backend is not connected (call connect() first)")
        return self._bridge

    async def connect(self) -> None:
        if self._cluster is not None:
            return
        if not os.path.isfile(self.conffile):
            raise BackendUnavailable(f"Ceph config file {self.conffile} does not exist")
        bridge = AioBridge(asyncio.get_running_loop(), self.max_in_flight, self.threads)
        secs = str(max(1, round(self.connect_timeout)))
        op_secs = str(max(1, round(self.op_timeout)))
        # Without these librados waits forever (client_mount_timeout is 300 s and the
        # op timeouts default to "never"): an unreachable cluster must fail fast.
        conf = {
            "client_mount_timeout": secs,
            "rados_mon_op_timeout": op_secs,
            "rados_osd_op_timeout": op_secs,
            # Watches are pinged each tick; the change feed trusts one confirmed < 2 s ago.
            "objecter_tick_interval": "1",
        }
        holder: list[rados.Rados] = []

        def do() -> rados.Rados:
            cluster = rados.Rados(conffile=self.conffile, conf=conf)
            holder.append(cluster)
            cluster.connect()
            return cluster

        where = f"Ceph cluster of {self.conffile}"
        try:
            self._cluster = await asyncio.wait_for(bridge.run_in_pool(do), self.connect_timeout + 5)
        except (rados.Error, TimeoutError) as e:
            mon = _mon_host(holder)
            if isinstance(e, rados.Error):  # (after a timeout the thread still uses it)
                bridge.run_in_pool(_shutdown, holder)  # frees librados threads, off-loop
            bridge.shutdown()
            raise BackendUnavailable(
                f"cannot connect to the {where} (mon host {mon}) within "
                f"{self.connect_timeout:g} s: {e or 'timed out'}"
            ) from e
        self._bridge = bridge
        with contextlib.suppress(rados.Error, TypeError, ValueError):
            self._omap_cap = int(self._cluster.conf_get("osd_max_omap_entries_per_request"))

    async def close(self) -> None:
        bridge, cluster = self._bridge, self._cluster
        if bridge is None or cluster is None:
            return
        feeds, self._feeds = self._feeds, []
        for feed in feeds:  # watches go before their ioctx
            await feed.close()
        self._bridge = self._cluster = None
        await bridge.drain(self.op_timeout)
        for p in self._pools.values():
            p._close()
        self._pools.clear()
        await bridge.run_in_pool(cluster.shutdown)
        bridge.shutdown()

    async def ping(self) -> None:
        bridge = self._require()
        cmd = json.dumps({"prefix": "mon stat", "format": "json"})
        try:
            ret, _, outs = await asyncio.wait_for(
                bridge.blocking("ping", self._cluster.mon_command, cmd, b""), self.op_timeout + 5
            )
        except (StorageError, TimeoutError) as e:
            raise BackendUnavailable(f"Ceph cluster of {self.conffile} is unreachable: {e}") from e
        if ret < 0:
            raise BackendUnavailable(f"Ceph monitor answered {ret}: {outs}")

    async def create_pool(self, name: str, erasure: ErasureCode | None = None) -> None:
        cluster = self._cluster

        def do() -> None:
            try:
                if erasure is None:
                    cluster.create_pool(name)
                else:
                    _create_erasure_pool(cluster, name, erasure)
            except rados.ObjectExists:
                return
            try:  # tag the pool (avoids the POOL_APP_NOT_ENABLED health warning)
                io = cluster.open_ioctx(name)
                try:
                    io.application_enable("atonix")
                finally:
                    io.close()
            except rados.Error:
                pass

        await self._require().blocking(f"create pool {name}", do)

    async def delete_pool(self, name: str) -> None:
        bridge = self._require()
        pool = self._pools.pop(name, None)
        if pool is not None:
            pool._close()
        try:
            await bridge.blocking(f"delete pool {name}", self._cluster.delete_pool, name)
        except ObjectNotFound as e:
            raise PoolNotFound(f"pool {name!r} does not exist") from e

    async def pool_exists(self, name: str) -> bool:
        return await self._require().blocking(
            f"pool_exists {name}", self._cluster.pool_exists, name
        )

    def pool(self, name: str) -> RadosPool:
        p = self._pools.get(name)
        if p is None:
            p = self._pools[name] = RadosPool(self, name)
        return p

    def changes(self, pool: str) -> RadosChangeFeed:
        feed = RadosChangeFeed(self.pool(pool))
        self._feeds.append(feed)
        return feed


def _mon_host(holder: list[rados.Rados]) -> str:
    try:
        return holder[0].conf_get("mon_host") or "?"
    except (IndexError, rados.Error):
        return "?"


def _shutdown(holder: list[rados.Rados]) -> None:
    for cluster in holder:
        with contextlib.suppress(rados.Error):
            cluster.shutdown()


__all__ = ["RadosBackend", "RadosPool", "translate"]


def _create_erasure_pool(cluster: rados.Rados, name: str, erasure: ErasureCode) -> None:
    """An erasure-coded pool (its profile made first, named after its layout so that
    pools of one layout share it); ``rados.ObjectExists`` if the pool exists."""
    if cluster.pool_exists(name):
        ret, _, outs = cluster.mon_command(json.dumps(
            {"prefix": "osd pool get", "pool": name, "var": "erasure_code_profile"}), b"")
        if ret < 0:  # a replicated pool: the tier would silently not be erasure-coded
            raise StorageError(f"pool {name} exists and is not erasure-coded: {outs}")
        raise rados.ObjectExists(f"pool {name} exists")
    profile = [f"k={erasure.k}", f"m={erasure.m}",
               f"crush-failure-domain={erasure.failure_domain}"]
    _mon(cluster, {"prefix": "osd erasure-code-profile set",
                   "name": erasure.profile_name, "profile": profile})
    _mon(cluster, {"prefix": "osd pool create", "pool": name, "pool_type": "erasure",
                   "erasure_code_profile": erasure.profile_name})


def _mon(cluster: rados.Rados, command: dict) -> None:
    ret, _, outs = cluster.mon_command(json.dumps(command), b"", timeout=30)
    if ret < 0:
        raise StorageError(f"ceph {command['prefix']}: {outs or errno.errorcode.get(-ret, ret)}")
