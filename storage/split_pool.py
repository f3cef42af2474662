"""A pool whose object *data* lives in one store and everything else in a catalog
pool: what cold tiers (data in a remote S3 bucket) and erasure-coded warm tiers
(data in an erasure-coded pool) are made of.

The chunk store keeps its reference protocol (exclusive creates, omap
references and guards, the chunk table of a pack) in omaps and xattrs, which
neither S3 nor an erasure-coded RADOS pool can hold; the bytes of a pack are
written once and then only read, which both do well. So a pack or chunk
object of such a tier is two things:

- in the catalog pool (a replicated pool of the deployment's own backend),
  the object with its omap and xattrs, no data, plus ``remote`` (the name of
  the data object holding its bytes) and ``remote.size``;
- in the data store (``storage.remote_s3.RemoteObjects`` or
  ``storage.pool_objects.PoolObjects``), ``<oid>.<token>``: the bytes, one
  write per pack, never one per chunk. The token is new for every write, so a
  name is never reused and a reader that cached a location can never read
  another write's bytes.

Write order is data first: the data object is written, then the catalog
operation (with its guards) names it. A refused operation (the object exists,
a guard failed) deletes the data object at once; a crash in between leaves one
nothing names, which ``sweep`` deletes once it is older than a grace period.
A removal applies the catalog operation first and deletes the data after, so
nothing can name a deleted data object.

Only objects whose ids start with one of ``data_prefixes`` (packs and chunk
objects) keep their data in the store; the tier's fingerprint index shards
and dictionaries stay whole in the catalog. Data objects are write-once:
partial writes, appends and truncation are refused.

The catalog records where its bytes are (``remote.location``: for S3 the
endpoint, bucket, prefix, region and credentials; for a pool its name,
written at the tier's first write), and that record wins: a policy that later
names another place for the same tier cannot strand the data already written
(its writes are refused, reads go to the recorded place), and a tier dropped
from the policy stays readable (``ResolvingPool``).

Reads go through a small cache of fixed-size blocks (``remote_blocks``): a
reader walking an object's chunks, which a move wrote next to each other in
one pack, costs one ranged read per block rather than one per chunk. Names
are never reused, so a cached block is never stale; every read looks its
object up in the catalog first, so a removed object is never read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from storage.errors import GuardFailed, ObjectExists, ObjectNotFound, PoolNotFound, StorageError
from storage.pool_objects import PoolObjects
from storage.protocol import ObjectStat, Pool, WriteOp
from storage.remote_blocks import BlockCache
from storage.remote_s3 import RemoteObjects

log = logging.getLogger("atonix.storage.split")

_DATA = ("c.", "k.")  # ids of packs and chunk objects: what a split pool stores apart
REMOTE_XATTR = "remote"
SIZE_XATTR = "remote.size"
_DATA_STEPS = {"write_full", "write", "append", "truncate"}
_REFUSALS = (ObjectExists, GuardFailed, ObjectNotFound)


@dataclasses.dataclass(frozen=True, slots=True)
class Located:
    name: str  # the data object's name in its store
    size: int


class SplitPool:
    """A ``storage.Pool``: the catalog's objects with their data in ``objects``."""

    def __init__(
        self,
        catalog: Pool,
        objects: DataObjects,
        open_pool: Callable[[str], Pool] | None = None,
        data_prefixes: tuple[str, ...] = _DATA,
        *,
        block_bytes: int = 1024 * 1024,
        cache_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.catalog = catalog
        self.objects = objects  # where the policy says; the catalog's record may differ
        self._open_pool = open_pool  # opens the pool a catalog's record names
        self.name = catalog.name
        self.data_prefixes = data_prefixes
        self._blocks = BlockCache(self._fetch, block_bytes, cache_bytes)
        self._recorded: DataObjects | None = None  # the catalog's place, once read
        self._moved = False  # the policy names another place than the catalog's

    # -- where the bytes are ---------------------------------------------------------

    async def claim_location(self) -> None:
        """Record the policy's place in the catalog (first write to the tier), or refuse
        if the catalog holds data of another place."""
        await self._objects()
        if self._moved:
            raise StorageError(
                f"{self.name} holds data at {self._recorded.address}, not at "
                f"{self.objects.address}: a new place needs a new tier name"
            )
        if self._recorded is None:
            op = WriteOp().create(exclusive=True).write_full(self.objects.record())
            with contextlib.suppress(ObjectExists):  # another process claimed it first
                await self.catalog.operate(LOCATION_OID, op)
            self._recorded = None
            await self._objects(fresh=True)

    async def _objects(self, fresh: bool = False) -> DataObjects:
        """The store this catalog's bytes are in."""
        if self._recorded is not None and not fresh:
            return self._recorded
        try:
            raw = await self.catalog.read(LOCATION_OID)
        except (ObjectNotFound, PoolNotFound):
            return self.objects  # nothing written yet: the policy's place
        recorded = self.objects if raw == self.objects.record() else open_place(
            raw, self._open_pool)
        self._moved = not self.objects.same_place(recorded)
        self._recorded = recorded if self._moved else self.objects
        return self._recorded

    async def _fetch(self, name: str, offset: int, length: int) -> bytes:
        return await (await self._objects()).get(name, offset, length)

    def _split(self, oid: str) -> bool:
        return oid.startswith(self.data_prefixes)

    # -- reads ------------------------------------------------------------------

    async def read(self, oid: str, offset: int = 0, length: int | None = None) -> bytes:
        if not self._split(oid):
            return await self.catalog.read(oid, offset, length)
        # Looked up in the catalog on every read (cheap next to a remote GET): a
        # remembered name could outlive a removal and re-creation by another process.
        where = await self._locate(oid)
        if where is None:  # created without data, or written before the tier was split
            return await self.catalog.read(oid, offset, length)
        end = where.size if length is None else min(where.size, offset + length)
        if end <= offset:
            return b""
        try:
            return await self._blocks.read(where.name, where.size, offset, end - offset)
        except ObjectNotFound:
            raise ObjectNotFound(f"{oid}: removed while being read") from None

    async def stat(self, oid: str) -> ObjectStat:
        st = await self.catalog.stat(oid)
        if not self._split(oid):
            return st
        where = await self._locate(oid)
        return st if where is None else ObjectStat(where.size, st.mtime, st.version)

    async def _locate(self, oid: str) -> Located | None:
        xattrs = await self.catalog.get_xattrs(oid)
        name = xattrs.get(REMOTE_XATTR)
        if name is None:
            return None  # created without data
        return Located(name.decode(), int(xattrs.get(SIZE_XATTR, b"0")))

    # -- writes -----------------------------------------------------------------

    async def operate(self, oid: str, op: WriteOp) -> None:
        data = [s for s in op.steps if s[0] in _DATA_STEPS]
        removes = any(s[0] == "remove" for s in op.steps)
        if not self._split(oid) or (not data and not removes):
            return await self.catalog.operate(oid, op)
        if data and (len(data) > 1 or data[0][0] != "write_full"):
            raise StorageError(f"{oid}: split data is written whole, once")
        old = await self._current(oid)
        new = f"{oid}.{secrets.token_hex(8)}" if data else None
        steps: list[tuple] = []
        for step in op.steps:
            if step[0] == "write_full":
                steps += [("set_xattr", REMOTE_XATTR, new.encode()),
                          ("set_xattr", SIZE_XATTR, str(len(step[1])).encode())]
            else:
                steps.append(step)
        if new is not None:
            if self._moved or self._recorded is None:
                await self.claim_location()
            await self._recorded.put(new, data[0][1])  # data first
        try:
            await self.catalog.operate(oid, dataclasses.replace(op, steps=steps))
        except _REFUSALS:
            if new is not None:
                await self._drop(new)  # refused: nothing names it
            raise
        if old is not None:
            await self._drop(old.name)  # no longer named (the catalog changed first)

    async def _current(self, oid: str) -> Located | None:
        try:
            return await self._locate(oid)
        except ObjectNotFound:
            return None

    async def _drop(self, name: str) -> None:
        """Delete data nothing names; a failure leaves it to ``sweep``."""
        self._blocks.forget(name)
        try:
            await (await self._objects()).delete(name)
        except ObjectNotFound:
            pass
        except StorageError as exc:
            log.warning("data object %s not deleted (the sweep will): %s", name, exc)

    async def write_full(self, oid: str, data: bytes) -> None:
        await self.operate(oid, WriteOp().write_full(data))

    async def write(self, oid: str, data: bytes, offset: int = 0) -> None:
        if self._split(oid):
            raise StorageError(f"{oid}: split data is written whole, once")
        await self.catalog.write(oid, data, offset)

    async def append(self, oid: str, data: bytes) -> None:
        if self._split(oid):
            raise StorageError(f"{oid}: split data is written whole, once")
        await self.catalog.append(oid, data)

    async def truncate(self, oid: str, size: int) -> None:
        if self._split(oid):
            raise StorageError(f"{oid}: split data is written whole, once")
        await self.catalog.truncate(oid, size)

    async def remove(self, oid: str) -> None:
        await self.operate(oid, WriteOp().remove())

    # -- the rest is the catalog's ---------------------------------------------------

    async def get_xattr(self, oid: str, name: str) -> bytes:
        return await self.catalog.get_xattr(oid, name)

    async def get_xattrs(self, oid: str) -> dict[str, bytes]:
        return await self.catalog.get_xattrs(oid)

    async def set_xattr(self, oid: str, name: str, value: bytes) -> None:
        await self.catalog.set_xattr(oid, name, value)

    async def omap_get(self, oid: str, keys: list[str]) -> dict[str, bytes]:
        return await self.catalog.omap_get(oid, keys)

    async def omap_list(
        self, oid: str, start_after: str = "", prefix: str = "", max_items: int = 1000
    ) -> list[tuple[str, bytes]]:
        return await self.catalog.omap_list(oid, start_after, prefix, max_items)

    async def omap_set(self, oid: str, items: dict[str, bytes]) -> None:
        await self.catalog.omap_set(oid, items)

    async def omap_rm(self, oid: str, keys: list[str]) -> None:
        await self.catalog.omap_rm(oid, keys)

    def list_objects(self, prefix: str = "") -> AsyncIterator[str]:
        return self.catalog.list_objects(prefix)

    # -- upkeep -------------------------------------------------------------------

    async def sweep(self, grace_seconds: float, now: float | None = None) -> int:
        """Delete data objects no catalog object names that are older than
        ``grace_seconds`` (writes a crash or a refusal left); how many."""
        now = time.time() if now is None else now
        dropped = 0
        try:
            await self.catalog.stat(LOCATION_OID)
        except (ObjectNotFound, PoolNotFound):
            return 0  # nothing was ever written here (or the catalog is gone: hands off)
        try:  # page by page: a tier of millions of packs is never listed into memory
            async for name, modified in (await self._objects()).listing():
                if now - modified < grace_seconds or not _UPLOAD_NAME.match(name):
                    continue  # perhaps an upload whose catalog write is still to come
                oid = name.rsplit(".", 1)[0]
                with contextlib.suppress(ObjectNotFound):
                    named = await self.catalog.get_xattrs(oid)
                    if named.get(REMOTE_XATTR) == name.encode():
                        continue
                await self._drop(name)
                dropped += 1
        except ObjectNotFound:
            pass  # the bucket was never made: nothing was ever written
        return dropped


class ResolvingPool:
    """The pool of a tier known only by name (one a policy dropped): a
    ``SplitPool`` if its catalog records a data place, else the plain pool."""

    def __init__(self, catalog: Pool, open_pool: Callable[[str], Pool] | None = None) -> None:
        self.catalog = catalog
        self.name = catalog.name
        self._open_pool = open_pool
        self._pool: Pool | None = None

    async def resolved(self) -> Pool:
        if self._pool is None:
            try:
                raw = await self.catalog.read(LOCATION_OID)
            except (ObjectNotFound, PoolNotFound):
                self._pool = self.catalog
            else:
                place = open_place(raw, self._open_pool)
                self._pool = SplitPool(self.catalog, place, self._open_pool)
        return self._pool

    def list_objects(self, prefix: str = "") -> AsyncIterator[str]:
        return self.catalog.list_objects(prefix)

    async def read(self, oid: str, offset: int = 0, length: int | None = None) -> bytes:
        pool = await self.resolved()
        data = await pool.read(oid, offset, length)
        if data or pool is not self.catalog or length == 0 or not oid.startswith(_DATA):
            return data
        # A pack is never empty: another process may have split this tier since we
        # looked (a newer policy made it erasure-coded). Look again.
        self._pool = None
        pool = await self.resolved()
        return data if pool is self.catalog else await pool.read(oid, offset, length)

    def __getattr__(self, name: str):
        if name not in _POOL_CALLS:
            raise AttributeError(name)

        async def call(*args, **kwargs):
            return await getattr(await self.resolved(), name)(*args, **kwargs)

        return call


# The storage protocol's async calls, which a ResolvingPool hands to the pool it resolves.
_POOL_CALLS = frozenset({
    "read", "write", "write_full", "append", "truncate", "remove", "stat", "get_xattr",
    "get_xattrs", "set_xattr", "omap_get", "omap_list", "omap_set", "omap_rm", "operate",
})


LOCATION_OID = "remote.location"
_UPLOAD_NAME = re.compile(r"^[ck]\.[0-9a-f]+\.[0-9a-f]{16}$")


class DataObjects(Protocol):
    """Where a split pool's bytes are: write-once objects by name."""

    @property
    def address(self) -> str:
        """The place, for messages (never a credential)."""

    def record(self) -> bytes:
        """The place, as the catalog records it (``open_place`` reads it back)."""

    def same_place(self, other: object) -> bool: ...

    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    async def delete(self, name: str) -> None: ...

    def listing(self) -> AsyncIterator[tuple[str, float]]:
        """(name, modified epoch seconds) of every object."""

    async def check(self) -> None: ...

    def close(self) -> None: ...


def open_place(raw: bytes, open_pool: Callable[[str], Pool] | None) -> DataObjects:
    """The data store a catalog's record names (records without a kind are S3's)."""
    record = json.loads(raw)
    if record.get("kind", "s3") == "s3":
        return RemoteObjects.from_record(record)
    if open_pool is None:
        raise StorageError(f"the catalog names {record.get('pool')!r}, and no pools are at hand")
    return PoolObjects.from_record(record, open_pool)
