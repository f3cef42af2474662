"""Point-in-time restore: make a bucket (or a copy) hold what it held at an instant.

The state at instant T is read from the versions: for each key, the newest
version committed at or before T (its hybrid-clock stamp; Last-Modified for
versions older than versioning), or nothing if that is a delete marker or the
key had no version yet. The destination is
then changed key by key, in key order, with the guarded commits every
write uses, so gateways serving the bucket see each key restored at once:

- a key whose current content already equals its state at T is left alone
  (a restore is idempotent, and re-running one after a crash resumes it);
- a key that held something else gets a *clone* of the old version as its
  new current version (``engine.clone``: no chunk byte is copied);
- a key that held nothing at T is deleted (a delete marker, if versioned).

A key a client changes between the read and the commit is left as the
client wrote it and counted as ``skipped``. History before versioning was
enabled is not known: only versions can be restored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from engine.clone import PayloadCloner, same_content
from engine.errors import BucketAlreadyOwnedByYou, InvalidRestore, NoSuchBucket
from engine.objects import ObjectService
from engine.records import BucketRecord, ObjectEntry
from engine.versioning import ENABLED
from engine.versions import NULL, stamp_time

_PAGE = 1000
CREATE, OVERWRITE, DELETE = "create", "overwrite", "delete"


@dataclass(frozen=True, slots=True)
class RestoreChange:
    key: str
    action: str  # CREATE, OVERWRITE or DELETE
    size: int  # bytes the key holds after the change (0 for a delete)
    version_id: str | None  # the version restored (None for a delete)


@dataclass(slots=True)
class RestoreReport:
    at: float
    dry_run: bool
    created: int = 0
    overwritten: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0  # changed by a client while the restore ran
    bytes: int = 0  # logical bytes of the versions restored
    changes: list[RestoreChange] = field(default_factory=list)

    @property
    def keys_seen(self) -> int:
        return self.created + self.overwritten + self.deleted + self.unchanged + self.skipped

    def count(self, change: RestoreChange) -> None:
        if change.action == CREATE:
            self.created += 1
        elif change.action == OVERWRITE:
            self.overwritten += 1
        else:
            self.deleted += 1
        self.bytes += change.size


def written_at(entry: ObjectEntry) -> float:
    """When a version became the key's content: its hybrid-clock stamp (the commit), or
    for versions written before versioning its Last-Modified time. (A multipart object's
    Last-Modified is when its upload began, long before it existed.)"""
    return stamp_time(entry.stamp) if entry.stamp else entry.mtime


def version_at(versions: list[ObjectEntry], at: float) -> ObjectEntry | None:
    """Of one key's versions (newest first), the content it had at ``at`` (None: none)."""
    for entry in versions:
        if written_at(entry) <= at:
            return None if entry.delete_marker else entry
    return None


def change_for(key: str, past: ObjectEntry | None, now: ObjectEntry | None) -> RestoreChange | None:
    """What turns the key's current content ``now`` into ``past`` (None: nothing)."""
    if same_content(past, now):
        return None
    if past is None:
        return RestoreChange(key, DELETE, 0, None)
    action = CREATE if now is None else OVERWRITE
    return RestoreChange(key, action, past.size, past.version_id or NULL)


class _ChangedMeanwhile(Exception):
    """A client changed the key after the restore read it."""


@dataclass(frozen=True, slots=True)
class _Unchanged:
    """The guard of a restore's commit: the key still shows what the plan saw."""

    seen: ObjectEntry | None

    def check(self, current: ObjectEntry | None, key: str) -> None:
        if (current is None) != (self.seen is None) or (
            current is not None and self.seen is not None and current.encode() != self.seen.encode()
        ):
            raise _ChangedMeanwhile(key)


Progress = Callable[[RestoreReport], None]


class PointInTimeRestore:
    def __init__(self, objects: ObjectService, cloner: PayloadCloner) -> None:
        self.objects = objects
        self.cloner = cloner

    async def checked_run(
        self, bucket: str, at: float, now: float, *, prefix: str = "", to: str | None = None,
        dry_run: bool = False, progress: Progress | None = None,
    ) -> RestoreReport:
        """``run``, after the checks that keep a restore from losing anything: the
        bucket has a history reaching back to ``at`` (not in the future), and the
        destination (``to``, created if missing, else ``bucket``) keeps what it holds."""
        buckets, versioning = self.objects.buckets, self.objects.versioning
        source = await buckets.get(bucket, use_cache=False)
        state = await versioning.state(source)
        if state is None:
            raise InvalidRestore(f"bucket {bucket} was never versioned: it has no history")
        if at > now:
            raise InvalidRestore("the restore time is in the future")
        if at < source.created:
            raise InvalidRestore(f"bucket {bucket} did not exist at the restore time")
        destination: BucketRecord | None = source
        if to is not None and to != bucket:
            destination = await self._destination(source, to, dry_run)
        elif state != ENABLED and not dry_run:
            raise InvalidRestore(f"versioning of {bucket} is {state}: enable it first (a "
                                 "restore would replace its null versions for good)")
        return await self.run(
            source, destination, at, prefix=prefix, dry_run=dry_run, progress=progress
        )

    async def _destination(
        self, source: BucketRecord, name: str, dry_run: bool
    ) -> BucketRecord | None:
        """The bucket a restore ``--to`` writes: new, or one that loses nothing to it
        (the source's owner's, and empty or with versioning Enabled)."""
        buckets = self.objects.buckets
        try:
            found = await buckets.get(name, use_cache=False)
        except NoSuchBucket:
            if dry_run:
                return None
            try:
                return await buckets.create(name, source.owner, source.region, None)
            except BucketAlreadyOwnedByYou:
                found = await buckets.get(name, use_cache=False)
        if found.owner != source.owner:
            raise InvalidRestore(f"bucket {name} belongs to another owner than {source.name}")
        state = await self.objects.versioning.state(found)
        if state != ENABLED and not await self.objects.index.is_empty(found.bucket_id):
            raise InvalidRestore(f"bucket {name} holds objects and is not versioned: a "
                                 "restore into it would replace them for good")
        return found

    async def run(
        self,
        source: BucketRecord,
        destination: BucketRecord | None,
        at: float,
        *,
        prefix: str = "",
        dry_run: bool = False,
        progress: Progress | None = None,
        concurrency: int = 16,
    ) -> RestoreReport:
        """Restore ``source`` at ``at`` into ``destination`` (None: a bucket still to be
        created, which only a dry run may name)."""
        if destination is None and not dry_run:
            raise ValueError("only a dry run restores into a bucket that does not exist")
        report = RestoreReport(at, dry_run)
        slots = asyncio.Semaphore(concurrency)
        pending: set[asyncio.Task] = set()
        errors: list[Exception] = []

        async def apply(change: RestoreChange, past: ObjectEntry | None, now: ObjectEntry | None):
            assert destination is not None
            try:
                await self._apply(destination, change, past, now)
            except _ChangedMeanwhile:
                report.skipped += 1
            except Exception as exc:  # raised below, once the tasks in flight are done
                errors.append(exc)
            else:
                report.count(change)
            finally:
                slots.release()

        current = self._current(destination, prefix) if destination else _nothing()
        pairs = _merge(self._history(source, prefix), current)
        keys = 0
        try:
            async for key, versions, now in pairs:
                if errors:
                    break
                past = version_at(versions, at)
                change = change_for(key, past, now)
                if change is None:
                    report.unchanged += 1
                elif dry_run:
                    report.count(change)
                    report.changes.append(change)
                else:
                    await slots.acquire()
                    task = asyncio.ensure_future(apply(change, past, now))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                keys += 1
                if progress is not None and keys % _PAGE == 0:
                    progress(report)
            await asyncio.gather(*list(pending))
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*list(pending), return_exceptions=True)
        if errors:
            raise errors[0]
        return report

    async def _apply(
        self,
        destination: BucketRecord,
        change: RestoreChange,
        past: ObjectEntry | None,
        seen: ObjectEntry | None,
    ) -> None:
        guard = _Unchanged(seen)
        if past is None:
            await self.objects.delete(destination, change.key, guard)  # type: ignore[arg-type]
            return
        await self.cloner.commit(past, destination, change.key, guard)

    async def _history(
        self, record: BucketRecord, prefix: str
    ) -> AsyncIterator[tuple[str, list[ObjectEntry]]]:
        """(key, its versions newest first) for every key under ``prefix``, in key order."""
        key_marker = version_marker = ""
        key: str | None = None
        versions: list[ObjectEntry] = []
        while True:
            page = await self.objects.versioning.list_versions(
                record, prefix, "", key_marker, version_marker, _PAGE
            )
            for k, entry, _latest in page.versions:
                if k != key:
                    if key is not None:
                        yield key, versions
                    key, versions = k, []
                versions.append(entry)
            if not page.is_truncated or not page.versions:
                break
            key_marker = page.versions[-1][0]
            version_marker = page.versions[-1][1].version_id or NULL
        if key is not None:
            yield key, versions

    async def _current(
        self, record: BucketRecord, prefix: str
    ) -> AsyncIterator[tuple[str, ObjectEntry]]:
        """(key, visible current entry) under ``prefix``, in key order."""
        after = ""
        while True:
            page = await self.objects.index.list(record.bucket_id, prefix, "", after, _PAGE)
            for key, entry in page.entries:
                yield key, entry
            if not page.is_truncated or not page.entries:
                return
            after = page.entries[-1][0]


async def _nothing() -> AsyncIterator[tuple[str, ObjectEntry]]:
    return
    yield


async def _merge(
    history: AsyncIterator[tuple[str, list[ObjectEntry]]],
    current: AsyncIterator[tuple[str, ObjectEntry]],
) -> AsyncIterator[tuple[str, list[ObjectEntry], ObjectEntry | None]]:
    """Both key-ordered streams as one: (key, versions or [], current entry or None)."""
    h = await anext(history, None)
    c = await anext(current, None)
    while h is not None or c is not None:
        if c is None or (h is not None and h[0] < c[0]):
            assert h is not None
            yield h[0], h[1], None
            h = await anext(history, None)
        elif h is None or c[0] < h[0]:
            yield c[0], [], c[1]
            c = await anext(current, None)
        else:
            yield h[0], h[1], c[1]
            h, c = await anext(history, None), await anext(current, None)
