"""One bucket as one principal may use it: the handle front ends get from ``Engine.bucket``.

It holds the ``Grant`` the access decision made and calls the engine's
services on exactly the bucket record that decision pinned. Each method
states the permissions it serves (``Grant.permits``): a handle decided for a
listing cannot write, one decided for a read of an object checks that
object's own ACL on every entry it returns (``Grant.check_entry``), and a
missing key answers NoSuchKey only to callers who may list the bucket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping

from engine.access.decision import BUCKET_ACL_ITEM, Grant, object_acl, with_object_acl
from engine.assembly import ObjectEngine
from engine.bucket_object_lock import ObjectLockCalls
from engine.bucket_replication import ReplicationCalls
from engine.conditions import DeleteCondition, WriteCondition
from engine.errors import AccessDenied, InvalidBucketState, NoSuchKey
from engine.index import ListPage
from engine.multipart import NewUpload, ObjectChecksums, PartOpener, PartsPage
from engine.object_io import ObjectReader, PutRequest
from engine.operations import Operation, Permission
from engine.read_log import BucketReads, ReadLog
from engine.records import BucketRecord, ObjectEntry
from engine.replication_config import refuse_suspension
from engine.replication_rules import (
    REPLICATION_ITEM,
    Primacy,
)
from engine.transitions import TransitionResult
from engine.upload_records import PartRecord, UploadInfo
from engine.uploads_registry import UploadsPage, UploadsQuery
from engine.version_listing import VersionsPage
from engine.versioning import ENABLED, MFA_DELETE_CONFIG, SUSPENDED, VERSIONING_CONFIG

MFA_DISABLED = "Disabled"

_PAGE = 1000
_READS = (Permission.OBJECT_READ,)  # the object's own ACL decides, entry by entry
_ACL_OPS = (Permission.OBJECT_READ_ACP, Permission.OBJECT_WRITE_ACP)
_WRITES = (Permission.BUCKET_WRITE,)
_LISTS = (Permission.BUCKET_READ,)


class AuthorizedBucket(ObjectLockCalls, ReplicationCalls):
    def __init__(self, grant: Grant, services: ObjectEngine, reads: ReadLog) -> None:
        self.grant = grant
        self._services = services
        self._reads = reads
        self._headed: tuple[ObjectEntry, str] | None = None  # read() gets no key: head()'s

    # -- what the decision saw -------------------------------------------------

    @property
    def record(self) -> BucketRecord:
        return self.grant.record

    @property
    def name(self) -> str:
        return self.grant.record.name

    @property
    def owner(self) -> str:
        return self.grant.record.owner

    @property
    def operation(self) -> Operation:
        return self.grant.operation

    def missing(self, exc: NoSuchKey) -> Exception:
        return self.grant.missing(exc)

    # -- objects ---------------------------------------------------------------

    async def head(self, key: str, version_id: str | None = None) -> ObjectEntry:
        """The entry of ``key`` (or of one of its versions), if the caller may read it."""
        self.grant.permits(*_READS)
        try:
            entry = await self._services.objects.head(self.record, key, version_id)
        except NoSuchKey as exc:
            raise self.grant.missing(exc) from None
        self.grant.check_entry(entry)
        self._headed = (entry, key)
        return entry

    def read(
        self, entry: ObjectEntry, byte_range: tuple[int | None, int | None] | None = None
    ) -> ObjectReader:
        """A reader of an entry ``head`` returned (whole, or one inclusive HTTP range)."""
        self.grant.permits(*_READS)
        self.grant.check_entry(entry)
        reader = self._services.objects.read(entry, byte_range)
        if self._headed is not None and self._headed[0] is entry and not reader.archived:
            self._reads.record(self.grant, self._headed[1], entry)
        return reader

    async def open_part(
        self, key: str, number: int, version_id: str | None = None
    ) -> ObjectReader:
        """A reader of part ``number`` of ``key`` (a simple object has one part)."""
        self.grant.permits(*_READS)
        try:
            reader = await self._services.uploads.open_part(self.record, key, number, version_id)
        except NoSuchKey as exc:
            raise self.grant.missing(exc) from None
        self.grant.check_entry(reader.entry)
        if not reader.archived:  # a refused read of an archived version is no access
            self._reads.record(self.grant, key, reader.entry)
        return reader

    async def put(self, key: str, request: PutRequest) -> ObjectEntry:
        self.grant.permits(*_WRITES)
        if request.replica is not None:
            await self._replica_allowed()
        await self.may_write(request.replica.primacy if request.replica else None)
        return await self._services.objects.put(self.record, key, request)

    async def transition(
        self, key: str, tier: str, version_id: str | None = None,
        judged: ObjectEntry | None = None,
    ) -> TransitionResult:
        """Move the data of ``key`` (or one version) to ``tier``: the tiering service's
        step (engine.transitions); ``judged``: only if it is still that entry. Owner only."""
        self.grant.permits()
        return await self._services.mover.move(
            self.record, self.record.bucket_id, key, tier, version_id, judged
        )

    async def restore(
        self, key: str, days: int, version_id: str | None = None
    ) -> tuple[ObjectEntry, bool]:
        """RestoreObject: an archived version made readable for ``days``; the entry, and
        whether this restore made the copy (False: an earlier one's was extended)."""
        self.grant.permits()
        return await self._services.mover.restore(
            self.record, self.record.bucket_id, key, version_id, days
        )

    async def end_restore(self, key: str, version_id: str | None = None) -> bool:
        """Drop the restored copy of a version whose restore expired (the tiering
        service's upkeep); whether there was one to drop. Owner only."""
        self.grant.permits()
        return await self._services.mover.end_restore(self.record, key, version_id)

    async def placement(self, key: str, version_id: str | None = None) -> dict[str, int]:
        """Where the data of ``key`` (or one version) is, in bytes per tier, read from
        its manifests (``inline`` and ``stripes`` for data outside the chunk tiers)."""
        self.grant.permits(*_LISTS)
        entry = await self._services.objects.head(self.record, key, version_id)
        return await self._services.mover.where(entry)

    async def update(
        self,
        key: str,
        change: Callable[[ObjectEntry], ObjectEntry],
        version_id: str | None = None,
    ) -> ObjectEntry:
        """Replace the entry's metadata (tags) atomically; the payload stays. Owner only."""
        self.grant.permits()
        await self.may_write()
        return await self._services.objects.update(self.record, key, change, version_id)

    async def object_acl(self, key: str, version_id: str | None = None) -> str:
        """The ACL of ``key`` (for its owner, or a READ_ACP / WRITE_ACP grantee of it)."""
        self.grant.permits(*_ACL_OPS)
        entry = await self._services.objects.head(self.record, key, version_id)
        self.grant.check_entry(entry)
        return object_acl(entry)

    async def set_object_acl(
        self, key: str, canned: str | None, version_id: str | None = None
    ) -> ObjectEntry:
        """Replace the ACL of ``key`` (its owner, or a WRITE_ACP grantee of the very entry)."""
        self.grant.permits(Permission.OBJECT_WRITE_ACP)
        await self.may_write()

        def change(entry: ObjectEntry) -> ObjectEntry:
            self.grant.check_entry(entry)
            return dataclasses.replace(entry, headers=with_object_acl(entry.headers, canned))

        return await self._services.objects.update(self.record, key, change, version_id)

    async def delete(
        self,
        key: str,
        condition: WriteCondition | DeleteCondition | None = None,
        version_id: str | None = None,
        bypass_governance: bool = False,
        mfa: str | None = None,
        expect: ObjectEntry | None = None,
        shipped_by: Primacy | None = None,
    ) -> ObjectEntry | None:
        """Unversioned: the entry removed. Versioned: the delete marker made, or (with
        ``version_id``) the version removed; see ``ObjectService.delete``. Object lock's
        GOVERNANCE retention yields to ``bypass_governance`` from the owner only. With MFA
        delete on, removing a version needs ``mfa`` (``SERIAL CODE``) of the owner's device.
        ``expect`` (with ``version_id``): only if the version is still that entry;
        ``shipped_by``: another region's shipper removing a version (see ``may_write``)."""
        self.grant.permits(*_WRITES)
        await self.may_write(shipped_by)
        if version_id is not None and await self._mfa_delete_on():
            await self._services.mfa.check(self.owner, mfa)
        removed = await self._services.objects.delete(
            self.record, key, condition, version_id, self._bypass(bypass_governance), expect
        )
        self._reads.deleted(self.record.bucket_id, [(key, removed)])
        return removed

    async def delete_many(
        self,
        targets: list[tuple[str, str | None]],
        conditions: Mapping[str, DeleteCondition] | None = None,
        bypass_governance: bool = False,
        mfa: str | None = None,
    ) -> list[tuple[tuple[str, str | None], ObjectEntry | Exception | None]]:
        """Delete each (key, version id or None); see ``ObjectService.delete_many``. With MFA
        delete on, a request naming a version needs ``mfa``, and any ``mfa`` must be valid."""
        self.grant.permits(*_WRITES)
        await self.may_write()
        versions = any(v is not None for _, v in targets)
        if (mfa is not None or versions) and await self._mfa_delete_on():
            # As on AWS: a code that is given must be valid, whatever the request names,
            # and one naming a version without a code fails as a whole.
            await self._services.mfa.check(self.owner, mfa)
        results = await self._services.objects.delete_many(
            self.record, targets, conditions, self._bypass(bypass_governance)
        )
        self._reads.deleted(self.record.bucket_id, [(k, r) for (k, _), r in results])
        return results

    def reads(self) -> BucketReads:
        """The bucket's stored read stats (engine.read_log). Owner or service only."""
        self.grant.permits()
        return BucketReads(self._services.meta, self._reads, self.record.bucket_id)

    async def list_versions(
        self,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionsPage:
        self.grant.permits(*_LISTS)
        return await self._services.objects.list_versions(
            self.record, prefix, delimiter, key_marker, version_marker, max_keys
        )

    def _bypass(self, asked: bool) -> bool:
        """GOVERNANCE retention is bypassed only when asked, by the owner or a service."""
        return asked and self.grant.unrestricted

    async def versioning(self) -> str | None:
        """The bucket's versioning state: None (never enabled), Enabled or Suspended."""
        self.grant.permits()
        return await self._services.objects.versioning.state(self.record)

    async def set_versioning(
        self, status: str | None, mfa_delete: str | None = None, mfa: str | None = None
    ) -> None:
        """Enable or suspend versioning (once enabled, a bucket is never unversioned again)
        and/or turn MFA delete on or off. Changing MFA delete, or anything while it is on,
        needs ``mfa`` (``SERIAL CODE``) from a device of the bucket's owner."""
        self.grant.permits()
        if status not in (None, ENABLED, SUSPENDED):
            raise ValueError(f"versioning is Enabled or Suspended, not {status!r}")
        if mfa_delete not in (None, ENABLED, MFA_DISABLED):
            raise ValueError(f"MFA delete is Enabled or Disabled, not {mfa_delete!r}")
        versioning = self._services.objects.versioning
        locked = await versioning.lock_config(self.record)
        if status == SUSPENDED and locked is not None:
            raise InvalidBucketState("An Object Lock configuration is present on this bucket")
        if status == SUSPENDED:
            await refuse_suspension(self._services, self.record)
        if mfa_delete is not None or await self._mfa_delete_on():
            await self._services.mfa.check(self.owner, mfa)
        if mfa_delete is not None:
            await self._services.buckets.write_config(
                self.record, MFA_DELETE_CONFIG, mfa_delete.encode()
            )
        if status is not None:
            await self._services.buckets.write_config(
                self.record, VERSIONING_CONFIG, status.encode()
            )
            versioning.changed(self.record, status)

    async def mfa_delete(self) -> str | None:
        """The bucket's MFA delete state: None (never set), Enabled or Disabled."""
        self.grant.permits()
        return await self._services.objects.versioning.mfa_delete(self.record)

    async def _mfa_delete_on(self) -> bool:
        return await self._services.objects.versioning.mfa_delete(self.record) == ENABLED

    async def list(
        self, prefix: str = "", delimiter: str = "", start_after: str = "", max_keys: int = 1000
    ) -> ListPage:
        self.grant.permits(*_LISTS)
        return await self._services.objects.list(
            self.record, prefix, delimiter, start_after, max_keys
        )

    async def entries(self) -> AsyncIterator[tuple[str, ObjectEntry]]:
        """(key, entry) of every object of the bucket, in key order, page by page."""
        self.grant.permits(*_LISTS)
        after = ""
        while True:
            page = await self.list(start_after=after, max_keys=_PAGE)
            for item in page.entries:
                yield item
            if not page.is_truncated or not page.entries:
                return
            after = page.entries[-1][0]

    # -- multipart uploads -------------------------------------------------------

    async def create_upload(self, key: str, new: NewUpload) -> UploadInfo:
        self.grant.permits(*_WRITES)
        await self.may_write()
        return await self._services.uploads.create(self.record, key, new)

    async def upload_part(
        self, key: str, upload_id: str, number: int, open_body: PartOpener
    ) -> PartRecord:
        self.grant.permits(*_WRITES)
        await self.may_write()
        return await self._services.uploads.upload_part(
            self.record, key, upload_id, number, open_body
        )

    async def list_parts(self, key: str, upload_id: str, after: int, limit: int) -> PartsPage:
        self.grant.permits(*_WRITES)
        return await self._services.uploads.list_parts(self.record, key, upload_id, after, limit)

    async def complete_upload(
        self,
        key: str,
        upload_id: str,
        requested: list[tuple[int, str]],
        object_checksums: ObjectChecksums | None = None,
    ) -> ObjectEntry:
        self.grant.permits(*_WRITES)
        await self.may_write()
        return await self._services.uploads.complete(
            self.record, key, upload_id, requested, object_checksums
        )

    async def abort_upload(self, key: str, upload_id: str) -> None:
        self.grant.permits(*_WRITES)
        await self._services.uploads.abort(self.record, key, upload_id)

    async def list_uploads(self, query: UploadsQuery) -> UploadsPage:
        self.grant.permits(*_LISTS)
        return await self._services.uploads.list_uploads(self.record, query)

    # -- the bucket itself -------------------------------------------------------

    async def read_config(self, item: str) -> tuple[BucketRecord, bytes | None]:
        """The ``item`` document of this very bucket (its ACL to READ_ACP grantees)."""
        self._may_use_config(item, Permission.BUCKET_READ_ACP)
        return await self._services.buckets.read_config(self.record, item)

    async def write_config(self, item: str, value: bytes | None) -> BucketRecord:
        """Set (None: remove) the ``item`` document of this very bucket."""
        if item == REPLICATION_ITEM:  # only through set_replication, with S3's checks
            raise AccessDenied("the replication document is set with its checks")
        self._may_use_config(item, Permission.BUCKET_WRITE_ACP)
        return await self._services.buckets.write_config(self.record, item, value)

    async def delete_bucket(self) -> None:
        self.grant.permits()  # the owner's (or a service's) only
        await self._services.buckets.delete(self.name, expected=self.record)

    def _may_use_config(self, item: str, *acl_permissions: Permission) -> None:
        if self.grant.unrestricted:
            return
        if item != BUCKET_ACL_ITEM or self.operation.needs not in acl_permissions:
            raise AccessDenied(f"{self.operation} does not permit the {item} document")
