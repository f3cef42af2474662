"""What a bucket handle offers for object lock: the bucket's lock configuration and
versions' retention and legal holds (the owner's calls; a retention is shortened
only with the GOVERNANCE bypass, see ``engine.object_lock``). A part of
``AuthorizedBucket``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from engine.errors import InvalidBucketState, InvalidRequestForBucket
from engine.object_lock import (
    LOCK_CONFIG,
    LockConfig,
    Retention,
    check_retention_change,
    legal_hold_of,
    retention_of,
    with_legal_hold,
    with_retention,
)
from engine.records import ObjectEntry

if TYPE_CHECKING:
    from engine.access.decision import Grant
    from engine.assembly import ObjectEngine
    from engine.records import BucketRecord


class ObjectLockCalls:
    grant: Grant
    _services: ObjectEngine
    record: BucketRecord  # AuthorizedBucket's: the record the access decision pinned
    # Also AuthorizedBucket's, used here: may_write (engine.bucket_replication), _bypass.

    async def lock_config(self) -> LockConfig | None:
        """The bucket's object lock (None: created without it)."""
        self.grant.permits()
        return await self._services.objects.versioning.lock_config(self.record)

    async def set_lock_config(self, config: LockConfig) -> None:
        """Set the default retention of a bucket created with object lock."""
        self.grant.permits()
        versioning = self._services.objects.versioning
        if await versioning.lock_config(self.record) is None:
            raise InvalidBucketState("Object Lock configuration cannot be enabled on this bucket")
        await self._services.buckets.write_config(self.record, LOCK_CONFIG, config.encode())
        versioning.lock_changed(self.record, config)

    async def retention(self, key: str, version_id: str | None = None) -> Retention | None:
        self.grant.permits()
        return retention_of(await self._services.objects.head(self.record, key, version_id))

    async def set_retention(
        self,
        key: str,
        retention: Retention | None,
        version_id: str | None = None,
        bypass_governance: bool = False,
    ) -> ObjectEntry:
        """Set, extend or (GOVERNANCE, with the bypass) shorten a version's retention."""
        self.grant.permits()
        await self.may_write()
        bypass, now = self._bypass(bypass_governance), self._services.clock.time()
        await self._locked_bucket()

        def change(entry: ObjectEntry) -> ObjectEntry:
            check_retention_change(retention_of(entry), retention, now, bypass)
            return dataclasses.replace(entry, headers=with_retention(entry.headers, retention))

        return await self._services.objects.update(self.record, key, change, version_id)

    async def legal_hold(self, key: str, version_id: str | None = None) -> bool:
        self.grant.permits()
        return legal_hold_of(await self._services.objects.head(self.record, key, version_id))

    async def set_legal_hold(self, key: str, on: bool, version_id: str | None = None) -> None:
        self.grant.permits()
        await self.may_write()
        await self._locked_bucket()

        def change(entry: ObjectEntry) -> ObjectEntry:
            return dataclasses.replace(entry, headers=with_legal_hold(entry.headers, on))

        await self._services.objects.update(self.record, key, change, version_id)

    async def _locked_bucket(self) -> None:
        if await self._services.objects.versioning.lock_config(self.record) is None:
            raise InvalidRequestForBucket("Bucket is missing Object Lock Configuration")
