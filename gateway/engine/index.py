"""The bucket index: ordered object entries in omap, every write guarded by the shard header.

Each bucket has index shard objects in the meta pool. A shard's omap holds
one entry per object key (``o<key>`` -> ObjectEntry) plus a header
(``h.bucket`` -> ``<bucket id>:<state>``). Every mutation carries an
``omap_cmp`` guard on the header, so a write can never land in a bucket that
was deleted (or deleted and re-created) after this gateway looked it up: the
guard makes the bucket lookup cache safe across gateway processes.

This first slice uses one shard per bucket covering the whole key range; the
shard id is part of the layout so range-partitioned shards (split as a bucket
grows) can replace it without changing entries. See docs/design.md.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gateway.engine import layout
from gateway.engine.records import ObjectEntry
from storage import GuardFailed, ObjectNotFound, Pool, WriteOp

ACTIVE = "active"
DELETING = "deleting"
# Sorts after every valid UTF-8 continuation of a prefix (U+10FFFF is the largest code point).
_AFTER_ALL = "\U0010ffff"


CONDITIONAL_RETRIES = 16


class StaleBucket(Exception):
    """The shard header no longer names this bucket id in the active state."""


@dataclass(slots=True)
class ListPage:
    entries: list[tuple[str, ObjectEntry]]
    common_prefixes: list[str]
    is_truncated: bool
    next_marker: str | None  # the last key or prefix returned, for the next page


class BucketIndex:
    def __init__(self, meta: Pool) -> None:
        self.meta = meta

    @staticmethod
    def _shard(bucket_id: str) -> str:
        return layout.index_shard(bucket_id)

    async def create(self, bucket_id: str) -> None:
        header = layout.shard_header(bucket_id, ACTIVE)
        op = WriteOp().create(exclusive=True).omap_set(
            {layout.SHARD_HEADER: header, layout.SHARD_GENERATION: _token()}
        )
        await self.meta.operate(self._shard(bucket_id), op)

    async def destroy(self, bucket_id: str) -> None:
        with contextlib.suppress(ObjectNotFound):
            await self.meta.remove(self._shard(bucket_id))

    async def get(self, bucket_id: str, key: str) -> ObjectEntry | None:
        """The entry for key, or None; StaleBucket if the bucket is gone."""
        ikey = layout.index_key(key)
        try:
            got = await self.meta.omap_get(self._shard(bucket_id), [layout.SHARD_HEADER, ikey])
        except ObjectNotFound:
            raise StaleBucket(bucket_id) from None
        header = got.get(layout.SHARD_HEADER, b"")
        if not header.startswith(bucket_id.encode() + b":"):
            raise StaleBucket(bucket_id)
        raw = got.get(ikey)
        return ObjectEntry.decode(raw) if raw is not None else None

    async def put(self, bucket_id: str, key: str, entry: ObjectEntry) -> None:
        """Write the entry (last writer wins)."""
        op = self._guarded(bucket_id).omap_set(
            {layout.index_key(key): entry.encode(), layout.SHARD_GENERATION: _token()}
        )
        await self._apply(bucket_id, op)

    async def put_if(
        self,
        bucket_id: str,
        key: str,
        entry: ObjectEntry | None,
        check: Callable[[ObjectEntry | None], None],
    ) -> ObjectEntry | None:
        """Atomically: check(current entry) (raises to refuse), then write or remove.

        Every index write changes the shard generation; this write is guarded
        on the generation it read, so nothing can slip in between the check
        and the write (a conflict re-reads and re-checks). Returns the entry
        that was replaced. ``entry=None`` removes the key.
        """
        ikey = layout.index_key(key)
        for _ in range(CONDITIONAL_RETRIES):
            current, generation = await self._read_with_generation(bucket_id, ikey)
            check(current)
            op = (
                self._guarded(bucket_id)
                .omap_cmp(layout.SHARD_GENERATION, generation)
                .omap_set({layout.SHARD_GENERATION: _token()})
            )
            if entry is None:
                op.omap_rm([ikey])
            else:
                op.omap_set({ikey: entry.encode()})
            try:
                await self.meta.operate(self._shard(bucket_id), op)
                return current
            except (GuardFailed, ObjectNotFound):
                continue  # re-read: either the generation moved or the bucket is gone
        raise StaleBucket(bucket_id)

    async def _read_with_generation(
        self, bucket_id: str, ikey: str
    ) -> tuple[ObjectEntry | None, bytes]:
        keys = [layout.SHARD_HEADER, layout.SHARD_GENERATION, ikey]
        try:
            got = await self.meta.omap_get(self._shard(bucket_id), keys)
        except ObjectNotFound:
            raise StaleBucket(bucket_id) from None
        if got.get(layout.SHARD_HEADER) != layout.shard_header(bucket_id, ACTIVE):
            raise StaleBucket(bucket_id)
        raw = got.get(ikey)
        return (ObjectEntry.decode(raw) if raw is not None else None), got.get(
            layout.SHARD_GENERATION, b""
        )

    async def remove(self, bucket_id: str, key: str) -> None:
        op = self._guarded(bucket_id).omap_rm([layout.index_key(key)]).omap_set(
            {layout.SHARD_GENERATION: _token()}
        )
        await self._apply(bucket_id, op)

    async def is_empty(self, bucket_id: str) -> bool:
        page = await self.meta.omap_list(
            self._shard(bucket_id), prefix=layout.OBJECT_PREFIX, max_items=1
        )
        return not page

    async def set_state(self, bucket_id: str, expected: str, new: str) -> None:
        """Compare-and-swap the shard state; StaleBucket if it was not ``expected``."""
        op = (
            WriteOp()
            .omap_cmp(layout.SHARD_HEADER, layout.shard_header(bucket_id, expected))
            .omap_set({layout.SHARD_HEADER: layout.shard_header(bucket_id, new)})
        )
        await self._apply(bucket_id, op)

    async def list(
        self,
        bucket_id: str,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        """One page of keys > start_after under prefix, rolled up at the delimiter.

        Keys under a common prefix are skipped with one seek past the prefix, so
        a page costs O(page size) backend items whatever the bucket holds.
        """
        entries: list[tuple[str, ObjectEntry]] = []
        prefixes: list[str] = []
        cursor = start_after
        if delimiter and start_after.startswith(prefix):
            # A marker inside a rolled-up prefix resumes after that whole prefix.
            rest = start_after[len(prefix) :]
            cut = rest.find(delimiter)
            if cut >= 0:
                cursor = prefix + rest[: cut + len(delimiter)] + _AFTER_ALL
        last: str | None = None
        while len(entries) + len(prefixes) < max_keys:
            want = max_keys - len(entries) - len(prefixes)
            batch = await self._scan(bucket_id, cursor, prefix, min(max(want, 1) + 1, 1000))
            if not batch:
                return ListPage(entries, prefixes, False, last)
            for key, raw in batch:
                if len(entries) + len(prefixes) >= max_keys:
                    return ListPage(entries, prefixes, True, last)
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    prefixes.append(common)
                    last = common
                    cursor = common + _AFTER_ALL
                    break  # re-seek past the whole common prefix
                entries.append((key, ObjectEntry.decode(raw)))
                last = cursor = key
        more = await self._scan(bucket_id, cursor, prefix, 1)
        return ListPage(entries, prefixes, bool(more), last)

    async def _scan(
        self, bucket_id: str, after: str, prefix: str, count: int
    ) -> list[tuple[str, bytes]]:
        start = layout.index_key(after) if after else ""
        try:
            items = await self.meta.omap_list(
                self._shard(bucket_id),
                start_after=start,
                prefix=layout.index_key(prefix),
                max_items=count,
            )
        except ObjectNotFound:
            raise StaleBucket(bucket_id) from None
        return [(layout.object_key(k), v) for k, v in items]

    def _guarded(self, bucket_id: str) -> WriteOp:
        return WriteOp().omap_cmp(layout.SHARD_HEADER, layout.shard_header(bucket_id, ACTIVE))

    async def _apply(self, bucket_id: str, op: WriteOp) -> None:
        try:
            await self.meta.operate(self._shard(bucket_id), op)
        except (GuardFailed, ObjectNotFound):
            raise StaleBucket(bucket_id) from None


def _token() -> bytes:
    return secrets.token_hex(8).encode()
