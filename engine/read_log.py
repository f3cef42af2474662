"""Reads of object data per version, counted in memory and flushed in the background.

The tiering policy moves data by the time since its last read and promotes it
back after N reads within a window. A backend write per GET would make every
GET slower, so a read is one dict update here (``ReadLog.record``) and a
background task merges the counts into the meta pool every
``ReadTracking.flush_seconds``. A crash loses the counts of the last interval.

What counts: data reads by clients, that is reads under a GetObject grant
(GetObject, one part of it, the source of UploadPartCopy), never a HEAD (S3
Intelligent-Tiering counts data access only) and never a service's read
(backups, replication, the mover: a backup must not make everything look
hot). A read counts when its reader is opened, before the body is sent.

Where: ``reads.<bucket id>`` in the meta pool, an omap with one key per
version (the index's order-preserving version key, so stats sort as the
bucket's listing does and a walk reads them in step, a page at a time) whose
value is a ``ReadStats``: the write time of the version counted (an
overwrite under the same key and version id starts afresh), the last read
(exact to within one flush interval: the read path does not read the clock
once a version is pending), and counts per hour for two days, per day for 90.

Several gateways: a flush is a read-modify-write of up to ``_BATCH`` keys
guarded on the omap object's version; a gateway that lost the race reads
again and merges again, so counts add up; a batch that loses
``_MERGE_ATTEMPTS`` times in a row is dropped (counted in ``lost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.access.decision import Grant
from engine.access.principal import PrincipalKind
from engine.errors import NoSuchBucket
from engine.layout import split_version_key, version_key
from engine.operations import Operation
from engine.read_stats import ReadStats, merged
from engine.records import ObjectEntry
from storage import Pool
from storage.errors import GuardFailed, ObjectExists, ObjectNotFound
from storage.protocol import WriteOp

if TYPE_CHECKING:
    from engine.assembly import ObjectEngine

log = logging.getLogger("atonix.reads")

NULL_VERSION = "null"  # the token of a version written without versioning
_BATCH = 1000  # keys per guarded merge
_MERGE_ATTEMPTS = 5
_GET_OBJECT = Operation.GET_OBJECT
_SERVICE = PrincipalKind.SERVICE


def reads_object(bucket_id: str) -> str:
    """The meta-pool object holding a bucket's read stats."""
    return f"reads.{bucket_id}"


def stats_key(key: str, version_id: str | None) -> str:
    return version_key(key, version_id or NULL_VERSION)


@dataclass(frozen=True, slots=True)
class ReadTracking:
    flush_seconds: float = 30.0
    # Share of reads recorded, their counts scaled back up at the flush (0: none).
    sample_rate: float = 1.0
    # Versions with unflushed reads; past this, reads of further versions are not
    # counted until the next flush (memory stays bounded whatever the traffic).
    max_pending: int = 100_000

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"the read sample rate is a share (0 to 1), not {self.sample_rate}")
        if self.flush_seconds <= 0:
            raise ValueError(f"read stats are flushed every so many seconds (> 0), "
                             f"not {self.flush_seconds}")


class ReadLog:
    """The process's unflushed reads and the task that flushes them."""

    def __init__(self, services: ObjectEngine, settings: ReadTracking | None = None) -> None:
        self._meta = services.meta
        self._clock = services.clock
        self._settings = settings or ReadTracking()
        self._rate = self._settings.sample_rate
        self._sampled = self._rate < 1.0
        self._buckets = services.buckets
        self._buckets.before_destroy.append(self.forget_bucket)  # DeleteBucket takes them along
        # (bucket id, key, version id) -> [reads, first read, write time of the version]
        self._pending: dict[tuple[str, str, str | None], list] = {}
        self._names: dict[str, str] = {}  # bucket id -> name (to tell a deleted bucket)
        self._forgotten: dict[str, set[str]] = {}  # bucket id -> stats keys to remove
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.dropped = 0  # reads not counted: too many versions pending
        self.lost = 0  # reads counted but not stored (a flush failed)

    # -- the read path: synchronous, no I/O -----------------------------------------

    def record(self, grant: Grant, key: str, entry: ObjectEntry) -> None:
        """A read of ``entry``'s data under ``key`` by whoever ``grant`` was decided for.
        A client's GetObject counts (the source of an UploadPartCopy is one too), a HEAD
        does not, nor a service's read (backups, replication, the mover)."""
        # Every GET runs this, so it is kept to a dict update (about 0.2 us in all): the
        # enum members are module constants (a class attribute costs 0.1 us each) and the
        # clock is read at a version's first read in a flush interval only, so a last
        # read is exact to within one interval.
        if self._sampled and random.random() >= self._rate:
            return
        if grant.operation is not _GET_OBJECT or grant.principal.kind is _SERVICE:
            return  # a HEAD opens a reader (to size a range) but reads no data
        slot = (grant.record.bucket_id, key, entry.version_id)
        counts = self._pending.get(slot)
        if counts is not None and counts[2] == entry.mtime:
            counts[0] += 1
            return
        self._first_read(slot, grant.record.name, entry.mtime, counts)

    def _first_read(
        self, slot: tuple[str, str, str | None], name: str, written: float, counts
    ) -> None:
        if counts is not None:  # reads of another object under the same key and version
            if written > counts[2]:
                counts[:] = [1, self._clock.time(), written]
            return
        if len(self._pending) >= self._settings.max_pending:
            self.dropped += 1
            return
        self._pending[slot] = [1, self._clock.time(), written]
        self._names[slot[0]] = name
        forgotten = self._forgotten.get(slot[0])
        if forgotten:
            forgotten.discard(stats_key(slot[1], slot[2]))

    def deleted(
        self, bucket_id: str, answers: Iterable[tuple[str, ObjectEntry | Exception | None]]
    ) -> None:
        """What deletes answered, per key: a version removed for good (not a delete marker
        made) takes its read stats along, unflushed ones now, stored ones at the flush."""
        for key, removed in answers:
            if not isinstance(removed, ObjectEntry) or removed.delete_marker:
                continue
            self._pending.pop((bucket_id, key, removed.version_id), None)
            self._forgotten.setdefault(bucket_id, set()).add(stats_key(key, removed.version_id))

    async def forget_bucket(self, bucket_id: str) -> None:
        """The bucket is being deleted: its stats go with it (they are one object)."""
        self._pending = {s: c for s, c in self._pending.items() if s[0] != bucket_id}
        self._forgotten.pop(bucket_id, None)
        self._names.pop(bucket_id, None)
        with contextlib.suppress(ObjectNotFound):
            await self._meta.remove(reads_object(bucket_id))

    # -- flushing -------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and self._settings.sample_rate > 0:
            self._stopping.clear()
            self._task = asyncio.get_running_loop().create_task(
                self._flush_forever(), name="read-log"
            )

    async def stop(self) -> None:
        """Stop the background task and flush what is pending (a clean shutdown)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await self.flush()
        except Exception:
            log.exception("read stats: the last flush failed")

    async def _flush_forever(self) -> None:
        # Paced on real time, as the release queue is: the interval spaces I/O out and
        # ages nothing, and a test's ManualClock would jump ahead at every turn.
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._settings.flush_seconds)
            if self._stopping.is_set():
                return
            try:
                await self.flush()
            except Exception:  # the backend is away: these counts are lost, not the next
                log.exception("read stats: flush failed")

    async def flush(self) -> None:
        """Merge every pending read into the stored stats (one guarded write per batch)."""
        async with self._lock:
            pending, self._pending = self._pending, {}
            forgotten, self._forgotten = self._forgotten, {}
            scale = 1.0 / self._settings.sample_rate if self._settings.sample_rate > 0 else 1
            by_bucket: dict[str, dict[str, list]] = {}
            for (bucket_id, key, version_id), counts in pending.items():
                counts[0] = round(counts[0] * scale)
                by_bucket.setdefault(bucket_id, {})[stats_key(key, version_id)] = counts
            for bucket_id in by_bucket.keys() | forgotten.keys():
                await self._flush_bucket(
                    bucket_id, by_bucket.get(bucket_id, {}), forgotten.get(bucket_id, set())
                )

    async def _flush_bucket(self, bucket_id: str, reads: dict[str, list], gone: set[str]) -> None:
        items = list(reads.items())
        for start in range(0, len(items), _BATCH):
            batch = dict(items[start : start + _BATCH])
            try:
                stored = await self._merge(bucket_id, batch)
            except Exception:
                stored = False
                log.exception("read stats of bucket %s: merge failed", bucket_id)
            if not stored:
                self.lost += sum(c[0] for c in batch.values())
        keys = sorted(gone)
        for start in range(0, len(keys), _BATCH):  # bounded ops; a failure costs only leftovers
            try:
                await self._meta.omap_rm(reads_object(bucket_id), keys[start : start + _BATCH])
            except ObjectNotFound:
                break
            except Exception:
                log.exception("read stats of bucket %s: dropping deleted versions failed",
                              bucket_id)
                break

    async def _merge(self, bucket_id: str, batch: dict[str, list]) -> bool:
        """Read, merge and write back ``batch`` under a version guard; False: not stored."""
        oid = reads_object(bucket_id)
        for _ in range(_MERGE_ATTEMPTS):
            try:
                version: int | None = (await self._meta.stat(oid)).version
                stored = await self._meta.omap_get(oid, list(batch))
            except ObjectNotFound:
                version, stored = None, {}
                if not await self._bucket_exists(bucket_id):
                    return True  # deleted meanwhile: its reads go with it
            now = self._clock.time()
            values = {
                k: merged(ReadStats.decode(stored.get(k)), count, read_at, written, now).encode()
                for k, (count, read_at, written) in batch.items()
            }
            op = WriteOp().create() if version is None else WriteOp().assert_version(version)
            try:
                await self._meta.operate(oid, op.omap_set(values))
                return True
            except (GuardFailed, ObjectExists, ObjectNotFound):
                continue  # another gateway merged first: merge into what it wrote
        return False

    async def _bucket_exists(self, bucket_id: str) -> bool:
        name = self._names.get(bucket_id)
        if name is None:
            return False
        try:
            record = await self._buckets.get(name, use_cache=False)
        except NoSuchBucket:
            return False
        return record.bucket_id == bucket_id


class BucketReads:
    """The stored read stats of one bucket, for the tiering walk and explain."""

    def __init__(self, meta: Pool, log_: ReadLog, bucket_id: str, page: int = 1000) -> None:
        self._meta = meta
        self._log = log_
        self._oid = reads_object(bucket_id)
        self._page = page

    async def flush(self) -> None:
        """Store what this process has counted so far (of every bucket: it is one flush)."""
        await self._log.flush()

    async def of(self, key: str, version_id: str | None = None) -> ReadStats | None:
        """One version's stats (``version_id`` None: the null version)."""
        try:
            found = await self._meta.omap_get(self._oid, [stats_key(key, version_id)])
        except ObjectNotFound:
            return None
        return ReadStats.decode(next(iter(found.values()), None))

    def cursor(self) -> ReadsCursor:
        """A reader of the stats in key order, for a walk over the bucket in key order."""
        return ReadsCursor(self._meta, self._oid, self._page)

    async def forget(self, stale: Iterable[tuple[str, str]]) -> None:
        """Remove the stats of (key, version id) pairs that no longer exist."""
        keys = sorted({stats_key(key, version) for key, version in stale})
        if keys:
            with contextlib.suppress(ObjectNotFound):
                await self._meta.omap_rm(self._oid, keys)


class ReadsCursor:
    """A bucket's stats read a page at a time in key order, beside a walk in the same
    order. ``take`` answers one key's stats and sets aside in ``stale`` every entry it
    passed that the walk did not list: one omap read per page of stats, none per object."""

    def __init__(self, meta: Pool, oid: str, page: int) -> None:
        self._meta = meta
        self._oid = oid
        self._page = page
        self._buffer: deque[tuple[str, str, bytes]] = deque()  # (key, version token, value)
        self._after = ""  # the last omap key read
        self._exhausted = False
        self.stale: list[tuple[str, str]] = []  # (key, version token)

    async def take(self, key: str, versions: Mapping[str, float]) -> dict[str, ReadStats]:
        """The stats of ``key``'s versions, as listed (token -> write time), by token.
        Stats of keys before it, of versions not listed or of another write are stale."""
        found: dict[str, ReadStats] = {}
        while self._buffer or await self._fill():
            stored_key, token, raw = self._buffer[0]
            if stored_key > key:
                break
            self._buffer.popleft()
            stats = ReadStats.decode(raw) if stored_key == key else None
            if stats is not None and versions.get(token) == stats.written:
                found[token] = stats
            else:
                self.stale.append((stored_key, token))
        return found

    async def finish(self) -> None:
        """The walk is over: every stats entry left belongs to no listed version."""
        while self._buffer or await self._fill():
            stored_key, token, _ = self._buffer.popleft()
            self.stale.append((stored_key, token))

    async def _fill(self) -> bool:
        if self._exhausted:
            return False
        try:
            page = await self._meta.omap_list(self._oid, self._after, "", self._page)
        except ObjectNotFound:
            page = []
        self._exhausted = len(page) < self._page
        if page:
            self._after = page[-1][0]
        for omap_key, raw in page:
            self._buffer.append((*split_version_key(omap_key), raw))
        return bool(page)
