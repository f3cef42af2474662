"""Committing a replica: a version made elsewhere, filed among a key's versions with its
own version id and stamp (``put_replica``), and reading all of a key's versions to
compare two copies (``key_versions``). Used by same-region shipping
(``engine.replicas``) and by replica PUTs from another region (``engine.objects``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from engine import layout
from engine.errors import ConcurrentUpdate
from engine.index import KEEP, KeyState, KeyWrite
from engine.object_lock import ObjectLocked, check_deletable
from engine.records import BucketRecord, ObjectEntry
from engine.replication_rules import NO_PRIMACY, REPLICA, REPLICATION_STATUS_HEADER, Primacy
from engine.versioning import Commit, Versioning, entry_token, is_version

KEY_VERSIONS = 1000  # versions of one key compared per sync (older ones are left alone)


@dataclass(frozen=True)
class ReplicaOf:
    """What a replica PUT from another region keeps of its source version."""

    version_id: str
    stamp: int
    mtime: float
    etag: str | None = None  # a multipart source's ETag (a single PUT's is the body's MD5)
    primacy: Primacy = NO_PRIMACY  # the sender's bucket's (engine.primacy fences by it)


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
                      entry: ObjectEntry,
                      onto: Callable[[ObjectEntry], ObjectEntry] | None = None) -> Commit:
    """File ``entry`` (a version made elsewhere, its id and stamp kept) among the key's
    versions; the same version already there is replaced (its payload is garbage),
    unless object lock protects it and the bytes differ (ObjectLocked).

    ``onto(existing)``: a metadata update of a replica already there, decided on
    the entry the transaction read (its payload and placement are kept, nothing is
    garbage); ConcurrentUpdate if that version is gone meanwhile."""
    versioning.hlc.observe(entry.stamp)  # our later versions sort after it
    tok = entry_token(entry)
    vkey = layout.version_key(key, tok)
    replaced: list[ObjectEntry | None] = [None]
    written: list[ObjectEntry] = [entry]

    def replacing(old: ObjectEntry) -> ObjectEntry:
        if onto is None:
            try:  # a version object lock protects is never replaced, whoever asks
                check_deletable(old, versioning.clock.time(), bypass_governance=False)
            except ObjectLocked:
                if (old.etag, old.size) != (entry.etag, entry.size):
                    raise
                written[0] = old  # the same bytes shipped again: it is there already
                return old
        replaced[0] = old
        written[0] = onto(old) if onto is not None else entry
        return written[0]

    async def decide(now: KeyState) -> KeyWrite:
        current = now.current
        replaced[0] = None
        if current is not None and is_version(current, entry.version_id or ""):
            return KeyWrite(replacing(current))
        if vkey in now.values:
            new = replacing(ObjectEntry.decode(now.values[vkey]))
            return KeyWrite(KEEP, sets={vkey: new.encode()})
        if onto is not None:
            raise ConcurrentUpdate("The replica changed while it was updated", Key=key)
        if current is None or newer(entry, current):
            write = KeyWrite(entry)
            if current is not None:
                Versioning.file_noncurrent(write, key, current)
            return write
        return KeyWrite(KEEP, sets={vkey: entry.encode()})

    await versioning.index.transact(record.bucket_id, key, decide, reads=(vkey,))
    old = replaced[0]
    garbage = list(old.stored_segments) if old is not None and onto is None else []
    return Commit(written[0], old, garbage)


def replica_entry(entry: ObjectEntry, of: ReplicaOf) -> ObjectEntry:
    """``entry`` as the replica of version ``of`` (its id, stamp, time and ETag)."""
    return dataclasses.replace(
        entry, version_id=of.version_id, stamp=of.stamp, mtime=of.mtime,
        etag=of.etag or entry.etag,
        headers={**entry.headers, REPLICATION_STATUS_HEADER: REPLICA},
    )
