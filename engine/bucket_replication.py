"""What a bucket handle offers replication: its configuration (the owner's, with S3's
checks), replica writes from another region (the owner's or a service's, into a
versioned bucket), and the change log and shipping calls of the replication
service (a service principal's alone). A part of ``AuthorizedBucket``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.change_log import Change, log_shards, read_changes, trim
from engine.chunk_transfer import HeldChunks, chunk_map, held_chunks
from engine.errors import AccessDenied, InvalidRequestForBucket
from engine.primacy import admit_replica, check_client_write, primacy, promote, raise_primacy
from engine.records import ObjectEntry
from engine.replica_commit import ReplicaOf, key_versions
from engine.replicas import SyncResult
from engine.replication_config import read_replication, write_replication
from engine.replication_rules import (
    COMPLETED,
    FAILED,
    Primacy,
    ReplicationConfig,
    ReplicationRule,
)
from engine.versioning import ENABLED

if TYPE_CHECKING:
    from engine.access.decision import Grant
    from engine.assembly import ObjectEngine
    from engine.records import BucketRecord


class ReplicationCalls:
    grant: Grant
    _services: ObjectEngine
    record: BucketRecord  # AuthorizedBucket's: the record the access decision pinned

    async def replication(self) -> ReplicationConfig | None:
        """The bucket's replication configuration (None: none)."""
        self.grant.permits()
        return await read_replication(self._services, self.record)

    async def set_replication(self, config: ReplicationConfig | None) -> None:
        """Set (None: remove) the replication configuration, checked as S3 checks it."""
        self.grant.permits()
        await write_replication(self._services, self.record, config)

    # -- which region takes writes (engine.primacy) -------------------------------------

    async def may_write(self, shipped_by: Primacy | None = None) -> None:
        """Refuse a write this copy may not take: a client's unless this region is the
        bucket's primary (or it has none), one shipped by another region (``shipped_by``:
        the sender's primacy) if the sender was fenced off. A service's upkeep (lifecycle,
        restores) is this copy's own and always goes. Only the owner (the key another
        region's shipper writes with) or a service may ship: a grantee of the bucket
        cannot pass for another region."""
        if shipped_by is not None:
            await self._replica_allowed()
            await admit_replica(self._services, self.record, shipped_by)
        elif not self.grant.principal.is_service:
            await check_client_write(self._services, self.record)

    async def primacy(self, fresh: bool = False) -> Primacy:
        """The bucket's primacy (NO_PRIMACY: active-active)."""
        self.grant.permits()
        return await primacy(self._services, self.record, fresh)

    async def fail_over(self) -> Primacy:
        """Make this region the bucket's primary at the next epoch (the owner's or a
        service's call): clients' writes go here from now on, and the old primary's
        shipments are fenced off."""
        self.grant.permits()
        return await promote(self._services, self.record)

    async def adopt_primacy(self, newer: Primacy) -> Primacy:
        """Take on a newer primacy another region answered with (this copy was fenced
        off: it is passive now); what it is now."""
        self._service_only()
        return await raise_primacy(self._services, self.record, newer)

    # -- replication (the replication service's calls) ----------------------------------

    def _service_only(self) -> None:
        """The change log and replica writes are the replication service's, not an
        owner's: they bypass what S3 lets clients do to versions."""
        self.grant.permits()
        if not self.grant.principal.is_service:
            raise AccessDenied("replication internals are for the replication service")

    async def changes(self, limit: int = 1000, shard: str | None = None) -> list[Change]:
        """The oldest records of the bucket's change log (engine.change_log), or of one
        of its ``log_shards`` (each shipped under a lease of its own)."""
        self._service_only()
        return await read_changes(self._services.index, self.record.bucket_id, limit, shard)

    async def log_shards(self) -> list[str]:
        """The shards the bucket's change log is kept in."""
        self._service_only()
        return await log_shards(self._services.index, self.record.bucket_id)

    async def trim_changes(self, changes: list[Change]) -> None:
        """Remove shipped change-log records (of this bucket's shards only)."""
        self._service_only()
        await trim(self._services.meta, changes, self.record.bucket_id)

    async def replicate_key(
        self, key: str, gone: tuple[str, ...], destination: ReplicationCalls,
        rule_for: Callable[[ObjectEntry], ReplicationRule | None],
    ) -> SyncResult:
        """Make ``destination``'s versions of ``key`` agree with this bucket's
        (engine.replicas); ``rule_for(version)``: the rule that ships it, if any."""
        self._service_only()
        destination._service_only()
        return await self._services.replicas.sync_key(
            self.record, destination.record, key, gone, rule_for
        )

    async def key_versions(self, key: str) -> list[ObjectEntry]:
        """Every version of ``key``, newest first (a shipper comparing copies)."""
        self._service_only()
        return await key_versions(self._services.objects.versioning, self.record, key)

    async def mark_replicated(self, key: str, versions: list[ObjectEntry],
                              failed: bool = False) -> None:
        """Shipped everywhere: the PENDING ones among ``versions`` become COMPLETED (or,
        given up on, FAILED)."""
        self._service_only()
        await self._services.replicas.mark_completed(
            self.record, key, versions, FAILED if failed else COMPLETED)

    async def chunk_map(self, version: ObjectEntry) -> list[tuple[bytes, int]] | None:
        """The version's chunks, (fingerprint, length) in order, for a dedupe-aware
        transfer (engine.chunk_transfer); None if not all its bytes are chunks."""
        self._service_only()
        return await chunk_map(self._services.chunks, version)

    async def held_chunks(self, key: str) -> HeldChunks:
        """The chunks of this copy's newest versions of ``key``, which a replica shipped
        chunk-wise may name instead of sending (the owner's or a service's call)."""
        await self._replica_allowed()
        versions = await key_versions(self._services.objects.versioning, self.record, key)
        return await held_chunks(self._services.chunks, versions)

    async def put_marker_replica(self, key: str, of: ReplicaOf) -> ObjectEntry:
        """A delete marker made in another region, with its version id and stamp."""
        await self._replica_allowed()
        await self.may_write(of.primacy)
        return await self._services.replicas.put_marker(self.record, key, of)

    async def _replica_allowed(self) -> None:
        """Replicas keep their source's version ids: the owner's (or a service's) writes
        only, into a bucket that keeps versions."""
        self.grant.permits()
        if await self._services.objects.versioning.state(self.record) != ENABLED:
            raise InvalidRequestForBucket("Replicas need versioning enabled on the bucket")

