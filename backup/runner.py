"""One backup run: copy what changed since the last good run, verify it, record it.

The run reads the source bucket's current objects in key order. A key whose
version is the one the last good run copied keeps that copy (its
COMPLIANCE retention extended when the run asks for a later one); any other
key is copied to the target and verified by reading the copy back
(``catalog.EtagCheck``). The run is recorded as succeeded only once every
copy is verified; a run that fails is recorded as failed and the next run
starts again from the last good one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from typing import Protocol

from backup.catalog import (
    FAILED,
    SUCCEEDED,
    CatalogEntry,
    EtagCheck,
    RunRecord,
    content_headers,
    new_run_id,
    part_sizes,
    target_key,
    version_ident,
)
from backup.history import BackupHistory
from backup.targets import StoredCopy, Target
from engine import (
    AuthorizedBucket,
    Engine,
    NoSuchKey,
    ObjectEntry,
    Operation,
    Principal,
)
from storage import ObjectNotFound

PREFIX = "atonix-backup/"
_PAGE = 1000
_COPY_ATTEMPTS = 3


class CopyNotVerified(Exception):
    """A copy read back did not match the source's ETag."""


class BackupObserver(Protocol):
    """What metrics learn of backups (the gateway's GatewayMetrics implements it)."""

    def succeeded(self, bucket: str, finished: float, nbytes: int) -> None: ...

    def failed(self, bucket: str) -> None: ...

    def last_success(self, bucket: str, when: float) -> None: ...


class _Quiet:
    def succeeded(self, bucket: str, finished: float, nbytes: int) -> None:
        pass

    def failed(self, bucket: str) -> None:
        pass

    def last_success(self, bucket: str, when: float) -> None:
        pass


class BackupRunner:
    def __init__(
        self,
        engine: Engine,
        principal: Principal,
        observer: BackupObserver | None = None,
        concurrency: int = 8,
    ) -> None:
        self.engine = engine
        self.principal = principal
        self.history = BackupHistory(engine, principal)
        self.observer = observer or _Quiet()
        self.concurrency = concurrency

    async def run(
        self,
        bucket: str,
        target: Target,
        lock_days: float | None = None,
        progress: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        now = self.engine.clock.time()
        lister = await self.engine.bucket(self.principal, bucket, Operation.LIST_OBJECTS_V2)
        run = RunRecord(new_run_id(now, secrets.token_hex(3)), bucket, target.address, now,
                        owner=lister.owner, region=lister.record.region)
        if lock_days is not None:
            if lock_days <= 0:
                raise ValueError("--lock-days must be positive")
            run.lock_until = now + lock_days * 86400
        if target.address == f"bucket:{bucket}":
            raise ValueError(f"bucket {bucket} cannot be backed up into itself")
        try:
            await target.prepare(lock=lock_days is not None)
            base = await self.history.last_success(target.address, bucket)
            run.base_run = base.run_id if base is not None else None
            kept = {e.key: e for e in await self.history.catalog(base.run_id)} if base else {}
            await self.history.save(run)  # listed as running from now on
            catalog = await self._copy_changed(lister, target, run, kept, progress)
        except BaseException as exc:
            # A page's TaskGroup raises a group: record and raise its first cause.
            cause = exc.exceptions[0] if isinstance(exc, BaseExceptionGroup) else exc
            run.status, run.error = FAILED, f"{type(cause).__name__}: {cause}"[:2000]
            run.finished = self.engine.clock.time()
            await asyncio.shield(self.history.save(run))
            self.observer.failed(bucket)
            if cause is not exc:
                raise cause from exc
            raise
        run.status, run.finished, run.objects = SUCCEEDED, self.engine.clock.time(), len(catalog)
        await self.history.save(run, catalog)
        self.observer.succeeded(bucket, run.finished, run.bytes_copied)
        return run

    async def _copy_changed(
        self,
        lister: AuthorizedBucket,
        target: Target,
        run: RunRecord,
        kept: dict[str, CatalogEntry],
        progress: Callable[[RunRecord], None] | None,
    ) -> list[CatalogEntry]:
        reader = await self.engine.bucket(self.principal, lister.name, Operation.GET_OBJECT)
        catalog: dict[str, CatalogEntry] = {}
        slots = asyncio.Semaphore(self.concurrency)

        async def one(key: str, entry: ObjectEntry) -> None:
            async with slots:
                prev = kept.get(key)
                if prev is not None and prev.ident == version_ident(entry):
                    catalog[key] = await self._keep(target, prev, run.lock_until)
                    return
                made = await self._copy(reader, target, key, entry, run)
                if made is not None:
                    catalog[key] = made

        after = ""
        while True:
            page = await lister.list(start_after=after, max_keys=_PAGE)
            async with asyncio.TaskGroup() as group:  # one failure stops the page's copies
                for k, e in page.entries:
                    group.create_task(one(k, e))
            if progress is not None:
                progress(run)
            if not page.is_truncated or not page.entries:
                break
            after = page.entries[-1][0]
        return [catalog[k] for k in sorted(catalog)]

    async def _keep(
        self, target: Target, prev: CatalogEntry, lock_until: float | None
    ) -> CatalogEntry:
        if lock_until is not None and (prev.lock_until or 0) < lock_until:
            await target.extend_lock(StoredCopy(prev.target_key, prev.target_version), lock_until)
            prev.lock_until = lock_until
        return prev

    async def _copy(
        self,
        reader: AuthorizedBucket,
        target: Target,
        key: str,
        entry: ObjectEntry,
        run: RunRecord,
    ) -> CatalogEntry | None:
        """Copy and verify the key's current version (None: it was deleted meanwhile)."""
        for _ in range(_COPY_ATTEMPTS):
            try:
                copied, stored = await self._store(reader, target, key, entry, run)
            except (NoSuchKey, ObjectNotFound):
                # Overwritten or deleted while read: copy what is current now, if anything.
                try:
                    entry = await reader.head(key)
                except NoSuchKey:
                    return None
                continue
            await self._verify(target, stored, copied)
            run.copied += 1
            run.verified += 1
            run.bytes_copied += copied.size
            return CatalogEntry(
                key, version_ident(copied), stored.key, stored.version, copied.size,
                copied.etag, copied.content_type, dict(copied.user_meta), dict(copied.tags),
                run.run_id, run.lock_until, part_sizes(copied), content_headers(copied),
            )
        raise RuntimeError(f"{key} kept changing while it was backed up")

    @staticmethod
    async def _store(
        reader: AuthorizedBucket, target: Target, key: str, entry: ObjectEntry, run: RunRecord
    ) -> tuple[ObjectEntry, StoredCopy]:
        to_key = target_key(PREFIX, run.bucket, version_ident(entry), key)
        found = await target.existing(to_key, entry.etag)
        if found is not None:  # copied by a run that died before it was recorded
            if run.lock_until is not None:
                with contextlib.suppress(Exception):  # refused only if locked longer already
                    await target.extend_lock(found, run.lock_until)
            return entry, found
        return await target.store(reader, key, entry, to_key, run.lock_until)

    async def _verify(self, target: Target, stored: StoredCopy, source: ObjectEntry) -> None:
        check = EtagCheck(source.etag, part_sizes(source))
        async for piece in target.read(stored):
            check.update(piece)
        if check.size != source.size or not check.matches():
            raise CopyNotVerified(
                f"the copy {stored.key} read back does not match its source "
                f"({check.size} bytes, ETag {source.etag} expected)"
            )
