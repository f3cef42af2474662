"""Versioned writes and reads of one key: what S3 versioning does to the bucket index.

A bucket's versioning state is its ``cfg.versioning`` document: none (never
enabled; every object is the ``null`` version, as before), ``Enabled`` or
``Suspended``. In the index the current version of a key stays ``o<key>``
(a delete marker included, which listings skip) and every other version is
``v<key>\\x01\\x01<token>`` (``engine.versions``), with ``n<key>`` pointing at the
noncurrent null version, if any. Each change is one guarded transaction on
the key (``BucketIndex.transact``):

- a write (PUT, copy, completion, POST) with versioning Enabled makes a new
  version current and files the old current among the noncurrent versions;
  Suspended, it is the ``null`` version and replaces the key's null version
  wherever it is (whose payload becomes garbage);
- a delete without a version id adds a delete marker the same way;
- a delete of one version removes it; if it was current, the newest
  noncurrent version becomes current again.

Payloads are released only when the last reference to them goes (the
caller releases the ``garbage`` a commit returns). The state is cached per
process for ``STATE_TTL_S`` seconds (AWS asks clients to allow 15 minutes
for a change to spread); the gateway that changes it sees the change at once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

from engine import layout
from engine.buckets import BucketService
from engine.change_log import change_record, metadata_change
from engine.clock import Clock
from engine.errors import (
    ConcurrentUpdate,
    DeleteMarkerCurrent,
    DeleteMarkerVersion,
    NoSuchBucket,
    NoSuchKey,
    NoSuchVersion,
)
from engine.index import KEEP, BucketIndex, KeyState, KeyWrite, StaleBucket
from engine.object_lock import LOCK_CONFIG, LockConfig, check_deletable
from engine.records import BucketRecord, ObjectEntry, Segment
from engine.replication_rules import (
    PENDING,
    REPLICA,
    REPLICATION_ITEM,
    REPLICATION_STATUS_HEADER,
    ReplicationConfig,
)
from engine.version_listing import Cursor, VersionsPage, list_versions
from engine.versions import NULL, HybridClock, token, version_id

VERSIONING_CONFIG = "versioning"
MFA_DELETE_CONFIG = "mfa-delete"  # "Enabled" or "Disabled" once ever set
ENABLED, SUSPENDED = "Enabled", "Suspended"
STATE_TTL_S = 5.0
RETRIES = 256


@dataclass(slots=True)
class Commit:
    """A committed write: the entry as stored, the one it displaced, what to release."""

    entry: ObjectEntry | None
    replaced: ObjectEntry | None
    garbage: list[Segment]


def entry_token(entry: ObjectEntry) -> str:
    return token(entry.version_id, entry.stamp)


def is_version(entry: ObjectEntry, vid: str) -> bool:
    return (entry.version_id or NULL) == vid


class Versioning:
    def __init__(self, buckets: BucketService, index: BucketIndex, clock: Clock) -> None:
        self.buckets = buckets
        self.index = index
        self.clock = clock
        self.hlc = HybridClock(clock.time)
        # (bucket id, config item) -> (when read, the document or None); see cached_config.
        self._configs: dict[tuple[str, str], tuple[float, bytes | None]] = {}

    # -- the bucket's state ---------------------------------------------------------------

    async def state(self, record: BucketRecord) -> str | None:
        """None (never enabled), ENABLED or SUSPENDED; cached for a few seconds."""
        raw = await self.cached_config(record, VERSIONING_CONFIG)
        return raw.decode() if raw else None

    def changed(self, record: BucketRecord, value: str | None) -> None:
        """This process wrote the state: use it at once."""
        self.remember_config(record, VERSIONING_CONFIG, value.encode() if value else None)

    async def mfa_delete(self, record: BucketRecord) -> str | None:
        """The bucket's MFA delete state (None: never set), read fresh: a version delete
        in one gateway must not miss the MFA delete another one just enabled."""
        try:
            _, raw = await self.buckets.read_config(record, MFA_DELETE_CONFIG)
        except NoSuchBucket:
            raise StaleBucket(record.bucket_id) from None
        return raw.decode() if raw else None

    async def lock_config(self, record: BucketRecord) -> LockConfig | None:
        """The bucket's object lock (None: created without), cached like the state."""
        raw = await self.cached_config(record, LOCK_CONFIG)
        return LockConfig.decode(raw) if raw else None

    def lock_changed(self, record: BucketRecord, config: LockConfig) -> None:
        self.remember_config(record, LOCK_CONFIG, config.encode())

    async def replication(self, record: BucketRecord) -> ReplicationConfig | None:
        """The bucket's replication configuration, cached like the state: its changes
        are logged (``engine.change_log``) while one is present."""
        raw = await self.cached_config(record, REPLICATION_ITEM)
        return _decoded_replication(raw) if raw else None

    def replication_changed(self, record: BucketRecord, config: ReplicationConfig | None) -> None:
        self.remember_config(record, REPLICATION_ITEM, config.encode() if config else None)

    async def logs(self, record: BucketRecord, key: str) -> bool:
        """Whether changes of ``key`` are logged for replication."""
        config = await self.replication(record)
        return config is not None and config.covers(key)

    async def cached_config(self, record: BucketRecord, item: str) -> bytes | None:
        """A configuration document, read at most every STATE_TTL_S seconds per process."""
        cached = self._configs.get((record.bucket_id, item))
        if cached is not None and self.clock.monotonic() - cached[0] < STATE_TTL_S:
            return cached[1]
        try:
            _, raw = await self.buckets.read_config(record, item)
        except NoSuchBucket:
            raise StaleBucket(record.bucket_id) from None  # the caller decides: retry or not
        self.remember_config(record, item, raw)
        return raw

    def remember_config(self, record: BucketRecord, item: str, raw: bytes | None) -> None:
        self._configs[(record.bucket_id, item)] = (self.clock.monotonic(), raw)

    # -- writes ---------------------------------------------------------------------------

    async def put(
        self,
        record: BucketRecord,
        key: str,
        entry: ObjectEntry,
        state: str,
        check: Callable[[ObjectEntry | None], None] = lambda current: None,
    ) -> Commit:
        """Make ``entry`` the key's current version (``check`` sees the visible current)."""
        return await self._make_current(record, key, entry, state, check)

    async def delete(
        self,
        record: BucketRecord,
        key: str,
        state: str,
        check: Callable[[ObjectEntry | None], None] = lambda current: None,
    ) -> Commit:
        """A delete without a version id: a new delete marker becomes current."""
        marker = ObjectEntry(0, '""', self.clock.time(), delete_marker=True)
        return await self._make_current(record, key, marker, state, check)

    async def _make_current(
        self,
        record: BucketRecord,
        key: str,
        entry: ObjectEntry,
        state: str,
        check: Callable[[ObjectEntry | None], None],
    ) -> Commit:
        null_ptr = layout.null_key(key)
        made: list[ObjectEntry] = []
        garbage: list[Segment] = []
        config = await self.replication(record)
        logged = config is not None and config.covers(key)
        headers = {k: v for k, v in entry.headers.items() if k != REPLICATION_STATUS_HEADER}
        if config is not None and not entry.delete_marker and config.rules_for(key, entry.tags):
            headers[REPLICATION_STATUS_HEADER] = PENDING  # a copy's source status is its own
        entry = dataclasses.replace(entry, headers=headers)

        async def decide(now: KeyState) -> KeyWrite:
            current = now.current
            check(current)  # the raw current: a delete marker is the caller's to judge
            stamp = self.hlc.stamp()
            if current is not None and stamp <= current.stamp:
                self.hlc.observe(current.stamp)
                stamp = self.hlc.stamp()
            vid = None if state == SUSPENDED else self._vid(stamp)
            new = dataclasses.replace(entry, version_id=vid, stamp=stamp)
            made[:] = [new]
            log = (change_record(key, self.clock.time(), written=(vid or NULL,), size=new.size)
                   if logged else {})
            write = KeyWrite(new, sets=log)
            garbage.clear()  # decided again after a conflict: only the last decision counts
            if current is not None and (state == ENABLED or current.version_id is not None):
                self.file_noncurrent(write, key, current)
            elif current is not None:
                garbage.extend(current.stored_segments)  # the null version, replaced
            if state == SUSPENDED and null_ptr in now.values:
                garbage.extend(await self._drop_noncurrent_null(record, key, now, write))
            return write

        applied = await self.index.transact(
            record.bucket_id, key, decide, reads=(null_ptr,), retries=RETRIES
        )
        return Commit(made[0], applied.current, garbage)

    async def delete_version(
        self, record: BucketRecord, key: str, vid: str, bypass_governance: bool = False,
        expect: ObjectEntry | None = None,
    ) -> Commit:
        """Remove one version; the newest noncurrent one becomes current if it was current.
        A version object lock protects is refused (ObjectLocked), on every path.
        ``expect``: only if the version is still that entry (a ``null`` version is
        replaced in place by a write while versioning is suspended): else ConcurrentUpdate."""
        null_ptr = layout.null_key(key)
        removed: list[ObjectEntry | None] = [None]
        now_s = self.clock.time()
        logged = await self.logs(record, key)

        def log(found: ObjectEntry) -> dict[str, bytes]:
            if not logged:
                return {}
            # A replica's removal is not passed on (as in S3): the destination's copy
            # might be the original.
            # Nor a null version's: the other side's null version is its own.
            replica = found.headers.get(REPLICATION_STATUS_HEADER) == REPLICA
            return change_record(key, now_s, () if replica or vid == NULL else (vid,))

        def checked(found: ObjectEntry) -> None:
            check_deletable(found, now_s, bypass_governance)
            if expect is not None and not same_version(found, expect):
                raise ConcurrentUpdate("The version changed since it was judged", Key=key)

        async def decide(now: KeyState) -> KeyWrite | None:
            current = now.current
            if current is not None and is_version(current, vid):
                checked(current)
                removed[0] = current
                if not now.versions:
                    return KeyWrite(None, sets=log(current))
                tok, raw = now.versions[0]
                promoted = ObjectEntry.decode(raw)
                write = KeyWrite(promoted, sets=log(current),
                                 removes=[layout.version_key(key, tok)])
                if promoted.version_id is None:
                    write.removes.append(null_ptr)
                return write
            tok = self._noncurrent_token(now, key, vid)
            found = await self.get_noncurrent(record, key, tok) if tok else None
            removed[0] = found
            if found is None:
                return None  # no such version: deleting it changes nothing, as on S3
            checked(found)
            write = KeyWrite(KEEP, sets=log(found), removes=[layout.version_key(key, tok or "")])
            if found.version_id is None:
                write.removes.append(null_ptr)
            return write

        await self.index.transact(
            record.bucket_id, key, decide, reads=(null_ptr,), versions=1, retries=RETRIES
        )
        gone = removed[0]
        return Commit(gone, gone, list(gone.stored_segments) if gone is not None else [])

    async def update_version(
        self,
        record: BucketRecord,
        key: str,
        vid: str,
        change: Callable[[ObjectEntry], ObjectEntry],
    ) -> ObjectEntry:
        """Replace version ``vid``'s metadata (retention, legal hold, tags) where it is."""
        null_ptr = layout.null_key(key)
        changed: list[ObjectEntry] = []
        logged = await self.logs(record, key)

        def log(old: ObjectEntry, new: ObjectEntry) -> dict[str, bytes]:
            return metadata_change(key, old, new, self.clock.time()) if logged else {}

        async def decide(now: KeyState) -> KeyWrite:
            if now.current is not None and is_version(now.current, vid):
                new = change(now.current)
                changed[:] = [new]
                return KeyWrite(new, sets=log(now.current, new))
            tok = self._noncurrent_token(now, key, vid)
            found = await self.get_noncurrent(record, key, tok) if tok else None
            if found is None:
                raise NoSuchVersion(Key=key, VersionId=vid)
            if found.delete_marker:
                raise DeleteMarkerVersion(vid, found.mtime)
            new = change(found)
            changed[:] = [new]
            sets = {layout.version_key(key, tok or ""): new.encode(), **log(found, new)}
            return KeyWrite(KEEP, sets=sets)

        await self.index.transact(
            record.bucket_id, key, decide, reads=(null_ptr,), retries=RETRIES
        )
        return changed[0]

    # -- reads ----------------------------------------------------------------------------

    async def get(self, record: BucketRecord, key: str, vid: str) -> ObjectEntry:
        """Version ``vid`` of ``key``: NoSuchVersion if none; a delete marker is refused."""
        null_ptr = layout.null_key(key)
        found: list[ObjectEntry | None] = [None]

        async def decide(now: KeyState) -> None:
            if now.current is not None and is_version(now.current, vid):
                found[0] = now.current
                return None
            tok = self._noncurrent_token(now, key, vid)
            found[0] = await self.get_noncurrent(record, key, tok) if tok else None
            return None

        await self.index.transact(record.bucket_id, key, decide, reads=(null_ptr,))
        entry = found[0]
        if entry is None:
            raise NoSuchVersion(Key=key, VersionId=vid)
        if entry.delete_marker:
            raise DeleteMarkerVersion(entry.version_id or NULL, entry.mtime)
        return entry

    async def get_noncurrent(self, record: BucketRecord, key: str, tok: str) -> ObjectEntry | None:
        vkey = layout.version_key(key, tok)
        found = await self.index.router.locate(record.bucket_id, key, (vkey,))
        raw = found.values.get(vkey)
        return ObjectEntry.decode(raw) if raw is not None else None

    async def list_versions(
        self,
        record: BucketRecord,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionsPage:
        """A page of versions after (key_marker, version_marker), as ListObjectVersions."""
        cursor: Cursor = ("", None)
        if key_marker:
            order = await self._order_of(record, key_marker, version_marker or None)
            cursor = (key_marker, order)
        return await list_versions(
            self.index.router,
            self.index.splitter,
            record.bucket_id,
            prefix,
            delimiter,
            cursor,
            max_keys,
        )

    async def _order_of(self, record: BucketRecord, key: str, vid: str | None) -> str | None:
        """Where version ``vid`` of ``key`` sits in a listing ("": the current one);
        None (after all of the key's versions) without a version or for a null it lacks."""
        if vid is None:
            return None
        ikey, null_ptr = layout.index_key(key), layout.null_key(key)
        found = await self.index.router.locate(record.bucket_id, key, (ikey, null_ptr))
        raw = found.values.get(ikey)
        if raw is not None and is_version(ObjectEntry.decode(raw), vid):
            return ""
        if vid == NULL:
            ptr = found.values.get(null_ptr)
            return ptr.decode() if ptr is not None else None
        return token(vid, 0)

    # -- helpers --------------------------------------------------------------------------

    def _vid(self, stamp: int) -> str:
        return version_id(stamp, self.hlc.writer)

    @staticmethod
    def _noncurrent_token(now: KeyState, key: str, vid: str) -> str | None:
        if vid == NULL:
            raw = now.values.get(layout.null_key(key))
            return raw.decode() if raw is not None else None
        return token(vid, 0)

    @staticmethod
    def file_noncurrent(write: KeyWrite, key: str, current: ObjectEntry) -> None:
        tok = entry_token(current)
        write.sets[layout.version_key(key, tok)] = current.encode()
        if current.version_id is None:
            write.sets[layout.null_key(key)] = tok.encode()

    async def _drop_noncurrent_null(
        self, record: BucketRecord, key: str, now: KeyState, write: KeyWrite
    ) -> list[Segment]:
        tok = now.values[layout.null_key(key)].decode()
        old = await self.get_noncurrent(record, key, tok)
        write.removes.append(layout.version_key(key, tok))
        if layout.null_key(key) not in write.sets:
            write.removes.append(layout.null_key(key))
        return list(old.stored_segments) if old is not None else []


@functools.lru_cache(maxsize=256)
def _decoded_replication(raw: bytes) -> ReplicationConfig:
    """Decoded once per document, not on every write (it is immutable)."""
    return ReplicationConfig.decode(raw)


def visible(entry: ObjectEntry | None, key: str) -> ObjectEntry:
    """The current entry as a read without a version id sees it."""
    if entry is None:
        raise NoSuchKey(Key=key)
    if entry.delete_marker:
        raise DeleteMarkerCurrent(entry.version_id or NULL, Key=key)
    return entry


def same_version(a: ObjectEntry, b: ObjectEntry) -> bool:
    """Whether two entries are the same write of one version."""
    return (a.version_id, a.mtime, a.etag, a.delete_marker) == (
        b.version_id, b.mtime, b.etag, b.delete_marker
    )
