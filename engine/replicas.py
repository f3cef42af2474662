"""Replicas: a key's versions made equal in a destination bucket, as the change log asks.

Shipping is by state, not by replaying operations: for each logged key the
shipper calls ``sync_key``, which reads the key's versions on both sides as
they are *now* and makes the destination agree. So shipping a change late,
twice or out of order converges to the same copy, and a crash mid-ship is
repaired by shipping again.

- A version the source has and the destination lacks is written there with
  its own version id and stamp (``put_replica``), filed among the
  destination's versions by stamp, then writer id (the version id's order):
  current if it is the newest, noncurrent otherwise. Two regions writing one
  key at once therefore agree on the winner without talking to each other.
  Its payload is a clone (``engine.clone``): same deployment, no byte copied.
- A version present on both sides whose metadata differs (tags, ACL, user
  metadata, retention) is rewritten in place on the destination, decided on
  the replica as the transaction reads it (its payload and placement kept).
- A version the log says was removed (``Change.gone``) is removed from the
  destination too if it is a replica there (never an original of the
  destination's own) and object lock allows it (a locked one stays).
- A version that is itself a replica is not shipped on (as in S3), nor a
  delete marker unless the rule replicates delete markers, nor a ``null``
  version (written before versioning was enabled).

The versions a destination holds are returned (``SyncResult.shipped``); the
shipper marks them COMPLETED (``x-amz-replication-status``; REPLICA on the
destination) once every destination took them, a change not logged again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.change_log import local_header, replicated_view
from engine.clone import PayloadCloner
from engine.errors import InvalidRequestForBucket
from engine.object_lock import ObjectLocked
from engine.records import BucketRecord, ObjectEntry
from engine.replica_commit import ReplicaOf, key_versions, put_replica
from engine.replication_rules import (
    COMPLETED,
    PENDING,
    REPLICA,
    REPLICATION_STATUS_HEADER,
    ReplicationRule,
)
from engine.versioning import ENABLED, Versioning


@dataclass
class SyncResult:
    copied: int = 0
    updated: int = 0
    removed: int = 0
    kept_locked: int = 0  # removed at the source, kept by the destination's object lock
    bytes: int = 0
    shipped: list[ObjectEntry] = field(default_factory=list)  # the destination has them


class ReplicaWriter:
    def __init__(self, versioning: Versioning, cloner: PayloadCloner,
                 move: Callable | None = None) -> None:
        self.versioning = versioning
        self.cloner = cloner
        self.payloads = cloner.payloads
        self.move = move  # (record, key, storage_class, version_id) -> None: a rule's class

    async def put_marker(self, record: BucketRecord, key: str, of: ReplicaOf) -> ObjectEntry:
        """A delete marker made elsewhere, filed by its stamp."""
        marker = ObjectEntry(0, '""', of.mtime, delete_marker=True, version_id=of.version_id,
                             stamp=of.stamp, headers={REPLICATION_STATUS_HEADER: REPLICA})
        done = await put_replica(self.versioning, record, key, marker)
        await self.payloads.release(done.garbage)
        return marker

    async def sync_key(
        self, source: BucketRecord, destination: BucketRecord, key: str,
        gone: tuple[str, ...], rule_for: Callable[[ObjectEntry], ReplicationRule | None],
    ) -> SyncResult:
        """Make ``destination``'s versions of ``key`` agree with ``source``'s (see module);
        the source versions it holds now are ``result.shipped`` (the caller marks them
        COMPLETED once every destination took them)."""
        if await self.versioning.state(destination) != ENABLED:
            raise InvalidRequestForBucket(f"Destination bucket {destination.name} must "
                                          "have versioning enabled.")
        result = SyncResult()
        mine = await key_versions(self.versioning, source, key)
        theirs = {v.version_id: v for v in await key_versions(self.versioning, destination, key)}
        have = {v.version_id for v in mine}
        for vid in gone:
            if vid in theirs and vid not in have:
                await self._remove(destination, key, theirs.pop(vid), result)
        for version in reversed(mine):  # oldest first: the newest lands last, as current
            rule = rule_for(version)
            if not ships(version, rule):
                continue
            assert rule is not None
            await self._ship(destination, key, version, theirs.get(version.version_id), rule,
                             result)
            result.shipped.append(version)
        return result

    async def _remove(self, destination: BucketRecord, key: str, there: ObjectEntry,
                      result: SyncResult) -> None:
        """A version removed at the source goes from the destination too, if it is a
        replica there (an original of the destination's own never goes), and if object
        lock lets it (a locked replica stays, as the lock says)."""
        if there.headers.get(REPLICATION_STATUS_HEADER) != REPLICA:
            return
        try:
            done = await self.versioning.delete_version(
                destination, key, there.version_id or "", expect=there)
        except ObjectLocked:
            result.kept_locked += 1
            return
        await self.payloads.release(done.garbage)
        result.removed += 1

    async def _ship(self, destination: BucketRecord, key: str, version: ObjectEntry,
                    there: ObjectEntry | None, rule: ReplicationRule, result: SyncResult) -> None:
        if there is not None and replicated_view(there) == replicated_view(version):
            return
        if there is not None and (there.etag, there.size) != (version.etag, version.size):
            there = None  # other bytes under the same id (a planted difference): copy again
        if there is not None:  # metadata only: decided on the replica as it is then
            await put_replica(self.versioning, destination, key, version,
                              onto=lambda old: updated_replica(version, old))
            result.updated += 1
            return
        segments = await self.cloner.clone(version, destination.bucket_id)
        replica = dataclasses.replace(
            version, segments=segments, restored=[],
            headers={**version.headers, REPLICATION_STATUS_HEADER: REPLICA})
        try:
            done = await put_replica(self.versioning, destination, key, replica)
        except BaseException:
            await self.payloads.remove(segments)
            raise
        if done.entry is not replica:  # the same version, locked, was there already
            await self.payloads.remove(segments)
        await self.payloads.release(done.garbage)
        result.copied += 1
        result.bytes += version.size
        if rule.storage_class and self.move is not None:
            await self.move(destination, key, rule.storage_class, version.version_id)

    async def mark_completed(self, source: BucketRecord, key: str,
                             shipped: list[ObjectEntry], status: str = COMPLETED) -> None:
        """The PENDING ones among ``shipped`` now have ``status`` (COMPLETED, or FAILED
        when the shipper gave up on them)."""
        for version in shipped:
            if version.headers.get(REPLICATION_STATUS_HEADER) != PENDING:
                continue

            def marked(entry: ObjectEntry) -> ObjectEntry:
                return dataclasses.replace(
                    entry, headers={**entry.headers, REPLICATION_STATUS_HEADER: status})

            await self.versioning.update_version(source, key, version.version_id or "",
                                                 marked)


def updated_replica(source: ObjectEntry, old: ObjectEntry) -> ObjectEntry:
    """The source version's metadata on the replica ``old`` (its payload, placement and
    restore kept)."""
    headers = {**{k: v for k, v in source.headers.items() if not local_header(k)},
               **{k: v for k, v in old.headers.items() if local_header(k)},
               REPLICATION_STATUS_HEADER: REPLICA}
    return dataclasses.replace(source, headers=headers, segments=old.segments,
                               restored=old.restored)


def ships(version: ObjectEntry, rule: ReplicationRule | None) -> bool:
    """Whether ``rule`` ships ``version`` (not a replica, a null version, or a delete
    marker the rule leaves alone)."""
    if rule is None or version.version_id is None:
        return False
    if version.headers.get(REPLICATION_STATUS_HEADER) == REPLICA:
        return False
    return rule.delete_markers or not version.delete_marker
