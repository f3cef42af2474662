"""The change log of a replicated bucket: one record per committed index change, in the
omap of the index shard that holds the key, written by the same guarded operation
as the entry itself (``KeyWrite.sets``), so an acknowledged change is never
missing from it and a refused one never in it.

A record's key is ``~log.<commit time, µs, 16 hex>.<8 random hex>``: records of
one shard list oldest first, and two gateways never collide. Its value names
the object key, the version ids the change wrote and those it removed (what
a destination must remove too; a replica's removal is not passed on);
everything else a shipper needs it reads from the index, as it
is when shipped: changes are shipped as *state*, so shipping them late, twice
or out of order converges to the same copy (``engine.replicas``). ``~`` sorts
after every other index space, and every scan of the index names its space's
prefix, so listings never see these records. A split copies only the object
and version spaces: a shard keeps the records it had, and its keys' later
changes are logged where the keys then live.

The log is trimmed record by record once shipped (``trim``); a bucket without
a replication configuration writes no records.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from engine import layout
from engine.index import BucketIndex
from engine.records import ObjectEntry
from engine.replication_rules import REPLICATION_STATUS_HEADER
from engine.tiers import (
    RESTORE_HEADER,
    RESTORED_UNTIL_HEADER,
    STORAGE_CLASS_HEADER,
    TIER_HEADER,
)
from storage import ObjectNotFound, Pool, WriteOp

LOG_PREFIX = "~log."
# What a replica may differ in from its source: where it is stored, its replication
# status, a restore of its own (``replicated_view``). ACLs, retention and legal holds
# (x-atonix-acl, the lock headers) are the version's and travel with it.
_LOCAL_HEADERS = (STORAGE_CLASS_HEADER, TIER_HEADER, RESTORE_HEADER, RESTORED_UNTIL_HEADER,
                  REPLICATION_STATUS_HEADER)

@dataclass(frozen=True)
class Change:
    shard: str  # the index shard object holding the record
    record: str  # the record's omap key
    key: str
    time: float
    gone: tuple[str, ...]  # version ids the change removed
    written: tuple[str, ...] = ()  # version ids the change wrote or changed
    size: int = 0  # bytes of what it wrote (for the backlog in bytes)


def change_record(key: str, now: float, gone: Iterable[str] = (),
                  written: Iterable[str] = (), size: int = 0) -> dict[str, bytes]:
    """The omap item logging a change of ``key`` at ``now`` (for ``KeyWrite.sets``)."""
    name = f"{LOG_PREFIX}{int(now * 1_000_000):016x}.{secrets.token_hex(4)}"
    doc = {"k": key, "t": now, "g": list(gone), "w": list(written), "s": size}
    return {name: json.dumps(doc).encode()}


def metadata_change(key: str, old: ObjectEntry | None, new: ObjectEntry,
                    now: float) -> dict[str, bytes]:
    """The record of an in-place change of a version (tags, ACL, retention), or nothing
    when a replica need not follow it (a tier move, a restore, a status update)."""
    if old is not None and replicated_view(old) == replicated_view(new):
        return {}
    return change_record(key, now, written=(new.version_id or "null",))


def local_header(name: str) -> bool:
    """A header about this copy alone (placement, restore, replication status)."""
    return name in _LOCAL_HEADERS


def replicated_view(entry: ObjectEntry) -> tuple:
    """What a replica must agree with its source on (content and metadata)."""
    headers = {k: v for k, v in entry.headers.items() if not local_header(k)}
    return (entry.version_id, entry.etag, entry.size, entry.delete_marker,
            sorted(entry.user_meta.items()), sorted(entry.tags.items()), sorted(headers.items()))


async def log_shards(index: BucketIndex, bucket_id: str) -> list[str]:
    """The index shard objects whose omaps hold the bucket's change log."""
    return [index.router.oid(bucket_id, view.shard) for view in await index.shards(bucket_id)]


async def read_changes(index: BucketIndex, bucket_id: str, limit: int,
                       shard: str | None = None) -> list[Change]:
    """Up to ``limit`` of the oldest records of each shard (or of ``shard`` alone, one
    of ``log_shards``), oldest first overall."""
    out: list[Change] = []
    for oid in await log_shards(index, bucket_id):
        if shard is not None and oid != shard:
            continue
        try:
            items = await index.meta.omap_list(oid, prefix=LOG_PREFIX, max_items=limit)
        except ObjectNotFound:
            continue  # the bucket went meanwhile
        for name, raw in items:
            doc = json.loads(raw)
            out.append(Change(oid, name, doc["k"], float(doc["t"]), tuple(doc.get("g", ())),
                              tuple(doc.get("w", ())), int(doc.get("s", 0))))
    out.sort(key=lambda c: (c.time, c.record))
    return out[:limit]


async def trim(meta: Pool, changes: Iterable[Change], bucket_id: str) -> None:
    """Remove shipped records of bucket ``bucket_id``'s shards (a shard that is gone has
    nothing left to trim); anything else handed in is refused."""
    shard_prefix = layout.index_shard_object(bucket_id, "")
    by_shard: dict[str, list[str]] = {}
    for change in changes:
        if not change.shard.startswith(shard_prefix) or not change.record.startswith(LOG_PREFIX):
            raise ValueError(f"not a change-log record of this bucket: {change}")
        by_shard.setdefault(change.shard, []).append(change.record)
    for oid, names in by_shard.items():
        try:
            await meta.operate(oid, WriteOp().assert_exists().omap_rm(names))
        except ObjectNotFound:
            continue
