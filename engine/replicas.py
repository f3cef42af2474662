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
  metadata) is rewritten in place on the destination.
- A version the log says was removed (``Change.gone``) is removed from the
  destination too, if it is there.
- A version that is itself a replica is not shipped on (as in S3), nor a
  delete marker unless the rule replicates delete markers, nor a ``null``
  version (written before versioning was enabled).

The source's versions are then marked COMPLETED (``x-amz-replication-status``;
REPLICA on the destination), a metadata change that is not logged again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from engine import layout
from engine.change_log import local_header, replicated_view
from engine.clone import PayloadCloner
from engine.index import KEEP, KeyState, KeyWrite
from engine.records import BucketRecord, ObjectEntry
from engine.replication_rules import (
    COMPLETED,
    PENDING,
    REPLICA,
    REPLICATION_STATUS_HEADER,
    ReplicationRule,
)
from engine.versioning import Commit, Versioning, entry_token, is_version

KEY_VERSIONS = 1000  # versions of one key compared per sync (older ones are left alone)


@dataclass
class SyncResult:
    copied: int = 0
    updated: int = 0
    removed: int = 0
    bytes: int = 0


async def key_versions(versioning: Versioning, record: BucketRecord, key: str) -> list[ObjectEntry]:
    """The key's versions, newest first (the current one first)."""
    seen: list[KeyState] = []

    async def decide(now: KeyState) -> None:
        seen[:] = [now]

    await versioning.index.transact(record.bucket_id, key, decide, versions=KEY_VERSIONS)
    now = seen[0]
    out = [now.current] if now.current is not None else []
    return out + [ObjectEntry.decode(raw) for _, raw in now.versions]


def newer(a: ObjectEntry, b: ObjectEntry) -> bool:
    """Whether version ``a`` sorts before ``b`` (stamp, then writer id: the id order)."""
    return entry_token(a) < entry_token(b)


async def put_replica(versioning: Versioning, record: BucketRecord, key: str,
                      entry: ObjectEntry) -> Commit:
    """File ``entry`` (a version made elsewhere, its id and stamp kept) among the key's
    versions; the same version already there is replaced (its payload is garbage)."""
    versioning.hlc.observe(entry.stamp)  # our later versions sort after it
    tok = entry_token(entry)
    vkey = layout.version_key(key, tok)
    replaced: list[ObjectEntry | None] = [None]

    async def decide(now: KeyState) -> KeyWrite:
        current = now.current
        replaced[0] = None
        if current is not None and is_version(current, entry.version_id or ""):
            replaced[0] = current
            return KeyWrite(entry)
        if vkey in now.values:
            replaced[0] = ObjectEntry.decode(now.values[vkey])
            return KeyWrite(KEEP, sets={vkey: entry.encode()})
        if current is None or newer(entry, current):
            write = KeyWrite(entry)
            if current is not None:
                Versioning.file_noncurrent(write, key, current)
            return write
        return KeyWrite(KEEP, sets={vkey: entry.encode()})

    await versioning.index.transact(record.bucket_id, key, decide, reads=(vkey,))
    old = replaced[0]
    return Commit(entry, old, list(old.stored_segments) if old is not None else [])


class ReplicaWriter:
    def __init__(self, versioning: Versioning, cloner: PayloadCloner,
                 move: Callable | None = None) -> None:
        self.versioning = versioning
        self.cloner = cloner
        self.payloads = cloner.payloads
        self.move = move  # (record, key, storage_class, version_id) -> None: a rule's class

    async def sync_key(
        self, source: BucketRecord, destination: BucketRecord, key: str,
        gone: tuple[str, ...], rule_for: Callable[[ObjectEntry], ReplicationRule | None],
    ) -> SyncResult:
        """Make ``destination``'s versions of ``key`` agree with ``source``'s (see module)."""
        result = SyncResult()
        mine = await key_versions(self.versioning, source, key)
        theirs = {v.version_id: v for v in await key_versions(self.versioning, destination, key)}
        have = {v.version_id for v in mine}
        for vid in gone:
            if vid in theirs and vid not in have:
                done = await self.versioning.delete_version(destination, key, vid,
                                                            expect=theirs.pop(vid))
                await self.payloads.release(done.garbage)
                result.removed += 1
        shipped: list[ObjectEntry] = []
        for version in reversed(mine):  # oldest first: the newest lands last, as current
            rule = rule_for(version)
            if not _ships(version, rule):
                continue
            assert rule is not None
            await self._ship(destination, key, version, theirs.get(version.version_id), rule,
                             result)
            shipped.append(version)
        await self._mark_completed(source, key, shipped)
        return result

    async def _ship(self, destination: BucketRecord, key: str, version: ObjectEntry,
                    there: ObjectEntry | None, rule: ReplicationRule, result: SyncResult) -> None:
        if there is not None and replicated_view(there) == replicated_view(version):
            return
        headers = {**version.headers, REPLICATION_STATUS_HEADER: REPLICA}
        if there is not None:  # metadata only: the replica keeps its payload and placement
            headers = {**{k: v for k, v in version.headers.items() if not local_header(k)},
                       **{k: v for k, v in there.headers.items() if local_header(k)},
                       REPLICATION_STATUS_HEADER: REPLICA}
            replica = dataclasses.replace(version, headers=headers,
                                          segments=there.segments, restored=there.restored)
            result.updated += 1
        else:
            segments = await self.cloner.clone(version, destination.bucket_id)
            replica = dataclasses.replace(version, headers=headers, segments=segments,
                                          restored=[])
            result.copied += 1
            result.bytes += version.size
        try:
            done = await put_replica(self.versioning, destination, key, replica)
        except BaseException:
            if there is None:
                await self.payloads.remove(replica.segments)
            raise
        if there is not None:
            done.garbage = []  # the replica's payload stays in use
        await self.payloads.release(done.garbage)
        if there is None and rule.storage_class and self.move is not None:
            await self.move(destination, key, rule.storage_class, version.version_id)

    async def _mark_completed(self, source: BucketRecord, key: str,
                              shipped: list[ObjectEntry]) -> None:
        for version in shipped:
            if version.headers.get(REPLICATION_STATUS_HEADER) != PENDING:
                continue

            def completed(entry: ObjectEntry) -> ObjectEntry:
                return dataclasses.replace(
                    entry, headers={**entry.headers, REPLICATION_STATUS_HEADER: COMPLETED})

            await self.versioning.update_version(source, key, version.version_id or "",
                                                 completed)


def _ships(version: ObjectEntry, rule: ReplicationRule | None) -> bool:
    if rule is None or version.version_id is None:
        return False
    if version.headers.get(REPLICATION_STATUS_HEADER) == REPLICA:
        return False
    return rule.delete_markers or not version.delete_marker
