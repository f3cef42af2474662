"""The bucket index: ordered object entries in range-partitioned omap shards.

A bucket's index is a chain of shard objects ``idx.<bucket id>.<shard>`` in
the meta pool, each covering a key range ``(after, upto]``; the root shard
(``0000``) covers the lowest keys and holds the shard map. A shard's omap
holds one entry per object key (``o<key>`` -> ObjectEntry), a sample of its
keys (``s<key>``, the split trigger) and its header: ``h.bucket`` =
``<bucket id>:<state>``, ``h.range`` (range, successor, split state, see
index_shards) and ``h.gen`` (a token every write replaces, for ``put_if``).

Every mutation guards on ``h.bucket`` (the bucket was not deleted, or deleted
and re-created, since this gateway looked it up) and on the exact bytes of
``h.range`` (the shard still covers the key and is not being split); every
read fetches both with the entry in the same operation. A PUT therefore
costs one read (the entry it replaces, which also refreshes the route) and
one write. Shards split in two when they pass ``split_threshold`` keys (see
index_split); listing is in index_listing. Design: docs/design.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from engine import layout
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import ConcurrentUpdate
from engine.hot_cache import HotCache
from engine.index_listing import ListPage, list_page
from engine.index_router import (
    ACTIVE,
    DELETING,
    MAX_HOPS,
    ShardRouter,
    StaleBucket,
    active_guard,
)
from engine.index_shards import (
    ROOT_SHARD,
    IndexSettings,
    ShardView,
    initial_generations,
    is_sampled,
)
from engine.index_split import ShardSplitter
from engine.records import ObjectEntry
from storage import GuardFailed, ObjectNotFound, Pool, WriteOp

__all__ = [
    "ACTIVE", "DELETING", "KEEP", "BucketIndex", "IndexSettings", "KeyState", "KeyWrite",
    "ListPage", "StaleBucket",
]

log = logging.getLogger("atonix.index")
CONDITIONAL_RETRIES = 16
BULK_BATCH = 1000  # entries per write in put_many
KEEP = object()  # KeyWrite.entry: leave the current entry as it is


@dataclass(slots=True)
class KeyState:
    """What a transaction on one key read: the current entry, extra keys, noncurrent versions."""

    current: ObjectEntry | None
    values: dict[str, bytes]
    versions: list[tuple[str, bytes]]  # (token, encoded entry), newest first


@dataclass(slots=True)
class KeyWrite:
    """What a transaction writes: the new current entry (None removes it, KEEP leaves it)
    and other omap keys of the key's shard (its versions, its null pointer)."""

    entry: object  # ObjectEntry | None | KEEP
    sets: dict[str, bytes] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)

    def values(self, ikey: str) -> dict[str, bytes] | None:
        if self.entry is KEEP:
            return {}  # only the generation token is renewed
        if self.entry is None:
            return None
        assert isinstance(self.entry, ObjectEntry)
        return {ikey: self.entry.encode()}


class BucketIndex:
    def __init__(
        self,
        meta: Pool,
        settings: IndexSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        cache: HotCache | None = None,
    ) -> None:
        self.meta = meta
        # Every write below publishes the keys it changed through the cache (see hot_cache).
        self.cache = cache or HotCache(None, 0)
        self.settings = settings or IndexSettings()
        self.router = ShardRouter(meta, self.settings)
        self.splitter = ShardSplitter(meta, self.router, self.settings, clock)

    # --- bucket lifecycle -------------------------------------------------------
    async def create(self, bucket_id: str) -> None:
        root = ShardView.root(self.settings.sample_rate)
        op = (
            WriteOp()
            .create(exclusive=True)
            .omap_set(
                {
                    layout.SHARD_HEADER: layout.shard_header(bucket_id, ACTIVE),
                    layout.SHARD_RANGE: root.raw,
                    **initial_generations(),
                }
            )
        )
        await self.meta.operate(self.router.oid(bucket_id, ROOT_SHARD), op)

    async def destroy(self, bucket_id: str) -> None:
        """Remove every shard (and any shard a split left uncommitted); the root last."""
        shards: list[str] = []
        with contextlib.suppress(StaleBucket):
            for found in await self.router.chain(bucket_id):
                shards.append(found.view.shard)
                if found.view.split is not None:
                    shards.append(found.view.split.to)
        for shard in [s for s in reversed(shards) if s != ROOT_SHARD] + [ROOT_SHARD]:
            with contextlib.suppress(ObjectNotFound):
                await self.meta.remove(self.router.oid(bucket_id, shard))
        self.router.forget(bucket_id)

    async def set_state(self, bucket_id: str, expected: str, new: str) -> None:
        """Compare-and-swap the bucket state; StaleBucket if it was not ``expected``.

        The root shard decides (its compare-and-swap is the one that can fail);
        then every other shard follows, in chain order. A shard's successor is
        read after its own switch, and a shard that is not active cannot commit
        a split, so a switch to ``deleting`` reaches every shard that exists.
        """
        await self._swap_state(bucket_id, ROOT_SHARD, expected, new, strict=True)
        shard = (await self.router.read(bucket_id, ROOT_SHARD)).view.next
        while shard is not None:
            await self._swap_state(bucket_id, shard, expected, new, strict=False)
            shard = (await self.router.read(bucket_id, shard)).view.next

    async def _swap_state(
        self, bucket_id: str, shard: str, expected: str, new: str, strict: bool
    ) -> None:
        op = (
            WriteOp()
            .omap_cmp(layout.SHARD_HEADER, layout.shard_header(bucket_id, expected))
            .omap_set({layout.SHARD_HEADER: layout.shard_header(bucket_id, new)})
        )
        try:
            await self.meta.operate(self.router.oid(bucket_id, shard), op)
        except (GuardFailed, ObjectNotFound):
            if strict or (await self.router.read(bucket_id, shard)).state != new:
                raise StaleBucket(bucket_id) from None

    async def is_empty(self, bucket_id: str) -> bool:
        """No object and no version of one in any shard's range (delete markers count, as
        on S3; leftovers above a range do not)."""
        for found in await self.router.chain(bucket_id):
            view = found.view
            oid = self.router.oid(bucket_id, view.shard)
            try:
                current = await self.meta.omap_list(oid, prefix=layout.OBJECT_PREFIX, max_items=1)
                older = await self.meta.omap_list(oid, prefix=layout.VERSION_PREFIX, max_items=1)
            except ObjectNotFound:
                raise StaleBucket(bucket_id) from None
            if current and view.covers(layout.object_key(current[0][0])):
                return False
            if older and view.covers(layout.split_version_key(older[0][0])[0]):
                return False
        return True

    # --- reads ------------------------------------------------------------------
    async def get(self, bucket_id: str, key: str) -> ObjectEntry | None:
        """The entry for key, or None; StaleBucket if the bucket is gone."""
        cached, ticket = self.cache.lookup(bucket_id, key)
        if cached is not None:
            return cached
        ikey = layout.index_key(key)
        found = await self.router.locate(bucket_id, key, (ikey,))
        raw = found.values.get(ikey)
        if raw is None:
            return None
        entry = ObjectEntry.decode(raw)
        if ticket is not None:
            self.cache.keep(bucket_id, key, entry, ticket)
        return entry

    async def list(
        self,
        bucket_id: str,
        prefix: str = "",
        delimiter: str = "",
        start_after: str = "",
        max_keys: int = 1000,
    ) -> ListPage:
        """One page of keys > start_after under prefix, rolled up at the delimiter."""
        return await list_page(
            self.router, self.splitter, bucket_id, prefix, delimiter, start_after, max_keys
        )

    async def shards(self, bucket_id: str) -> list[ShardView]:
        """The bucket's shards in key order (for tests, benchmarks and operators)."""
        return [found.view for found in await self.router.chain(bucket_id)]

    # --- writes -----------------------------------------------------------------
    async def put(self, bucket_id: str, key: str, entry: ObjectEntry) -> None:
        """Write the entry (last writer wins)."""
        await self._write(bucket_id, key, {layout.index_key(key): entry.encode()})

    async def remove(self, bucket_id: str, key: str) -> None:
        await self._write(bucket_id, key, None)

    async def put_if(
        self,
        bucket_id: str,
        key: str,
        entry: ObjectEntry | None,
        check: Callable[[ObjectEntry | None], None] = lambda current: None,
        retries: int = CONDITIONAL_RETRIES,
        sets: Callable[[ObjectEntry | None], dict[str, bytes]] | None = None,
    ) -> ObjectEntry | None:
        """Atomically: check(current entry) (raises to refuse), then write or remove.

        Returns the entry that was replaced, exactly: an overwrite releases
        what it returns, and two racing writers never both see the same one.
        ``entry=None`` removes the key (a missing key: nothing is written).
        ``sets(current)``: other omap items of the shard written with it (a
        change-log record).
        """

        async def decide(state: KeyState) -> KeyWrite | None:
            check(state.current)
            if entry is None and state.current is None:
                return None
            return KeyWrite(entry, sets=sets(state.current) if sets is not None else {})

        return (await self.transact(bucket_id, key, decide, retries=retries)).current

    async def transact(
        self,
        bucket_id: str,
        key: str,
        decide: Callable[[KeyState], Awaitable[KeyWrite | None]],
        *,
        reads: tuple[str, ...] = (),
        versions: int = 0,
        retries: int = CONDITIONAL_RETRIES,
    ) -> KeyState:
        """Read key's state, let ``decide`` choose the writes, apply them atomically.

        The state is the current entry, the omap keys ``reads`` of key's
        shard and, with ``versions``, that many of key's noncurrent versions
        (newest first). Every index write replaces the generation token of
        its key's slot (``layout.generation_key``); this write is guarded on
        the token it read (and on the shard's header), so nothing can slip in
        between the decision and the write: a conflict, or a split of the
        shard, reads and decides again. More than ``retries`` conflicts
        (other writers of the key's slot kept winning): ConcurrentUpdate.
        Returns the state the applied writes were decided on.
        """
        ikey, gen_key = layout.index_key(key), layout.generation_key(key)
        conflicts = 0
        for _ in range(MAX_HOPS + retries):
            found = await self.router.locate(bucket_id, key, (gen_key, ikey, *reads))
            if found.state != ACTIVE:
                raise StaleBucket(bucket_id)
            view = found.view
            if await self._unwritable(bucket_id, view):
                continue
            generation = found.values.get(gen_key)
            if generation is None:  # a root from before slots: give this slot a token
                await self._write(bucket_id, key, {})
                continue
            oid = self.router.oid(bucket_id, view.shard)
            raw = found.values.get(ikey)
            state = KeyState(
                ObjectEntry.decode(raw) if raw is not None else None,
                {k: found.values[k] for k in reads if k in found.values},
                await self._versions(oid, key, versions),
            )
            write = await decide(state)
            if write is None:
                return state
            op = self._mutation(bucket_id, key, view, write.values(ikey)).omap_cmp(
                gen_key, generation
            )
            if write.sets:
                op.omap_set(write.sets)
            if write.removes:
                op.omap_rm(write.removes)
            try:
                await self._apply(bucket_id, oid, op, (key,))
            except (GuardFailed, ObjectNotFound):
                conflicts += 1
                if conflicts >= retries:
                    raise ConcurrentUpdate(Key=key) from None
                continue  # re-read: the key's generation moved, the shard split or the bucket went
            await self._after_write(bucket_id, key, view, isinstance(write.entry, ObjectEntry))
            return state
        raise StaleBucket(bucket_id)

    async def _versions(self, oid: str, key: str, count: int) -> list[tuple[str, bytes]]:
        if count <= 0:
            return []
        items = await self.meta.omap_list(oid, prefix=layout.versions_of(key), max_items=count)
        return [(layout.split_version_key(k)[1], v) for k, v in items]

    async def put_many(
        self,
        bucket_id: str,
        items: Iterable[tuple[str, ObjectEntry]],
        noncurrent: Callable[[str], list[tuple[str, ObjectEntry]]] | None = None,
    ) -> None:
        """Bulk load: write many entries (last writer wins), a batch per shard write;
        ``noncurrent(key)`` gives (token, entry) versions to file under each key.

        Not atomic as a whole. After each batch the shard it went to is split,
        and its halves again, until each is under the threshold: the same
        split logic as single PUTs, run inline, so a load ends with the layout
        a stream of PUTs would build."""
        pending = sorted(items, key=lambda item: item[0])
        while pending:
            view = await self._writable(bucket_id, pending[0][0])
            batch = [kv for kv in pending[:BULK_BATCH] if view.covers(kv[0])]
            values = {layout.index_key(k): e.encode() for k, e in batch}
            for k, _ in batch if noncurrent is not None else ():
                values.update(
                    {layout.version_key(k, tok): v.encode() for tok, v in noncurrent(k)}
                )
            values.update(
                {
                    layout.sample_key(k): b""
                    for k, _ in batch
                    if is_sampled(bucket_id, k, view.sample)
                }
            )
            op = self._mutation(bucket_id, batch[0][0], view, values)
            oid = self.router.oid(bucket_id, view.shard)
            try:
                await self._apply(bucket_id, oid, op, [k for k, _ in batch])
            except (GuardFailed, ObjectNotFound):
                await self._conflict(bucket_id, view)
                continue
            pending = pending[len(batch) :]
            if any(k.startswith(layout.SAMPLE_PREFIX) for k in values):
                await self.splitter.split_now(bucket_id, view.shard)

    async def drain(self) -> None:
        """Wait for this process's background split checks, splits and clean-ups."""
        await self.splitter.drain()

    async def _write(self, bucket_id: str, key: str, values: dict[str, bytes] | None) -> None:
        """Set (values) or remove (None) key's entry in the shard that covers it."""
        for _ in range(MAX_HOPS):
            view = await self._writable(bucket_id, key)
            op = self._mutation(bucket_id, key, view, values)
            try:
                await self._apply(bucket_id, self.router.oid(bucket_id, view.shard), op, (key,))
            except (GuardFailed, ObjectNotFound):
                await self._conflict(bucket_id, view)
                continue
            await self._after_write(bucket_id, key, view, bool(values))
            return
        raise StaleBucket(bucket_id)

    async def _apply(self, bucket_id: str, oid: str, op: WriteOp, keys: Iterable[str]) -> None:
        """Apply an index write, then publish its keys (before anyone is answered)."""
        try:
            await self.meta.operate(oid, op)
        except (GuardFailed, ObjectNotFound):
            raise  # refused: nothing changed
        except BaseException:
            # Failed in flight: the write may have landed, or may still land, so
            # nobody may keep what it would replace, now or once it does.
            self.cache.changed_later(bucket_id, keys)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.cache.changed(bucket_id, keys))
            raise
        await _settle(self.cache.changed(bucket_id, keys))

    def _mutation(
        self, bucket_id: str, key: str, view: ShardView, values: dict[str, bytes] | None
    ) -> WriteOp:
        """The guarded write: bucket active, shard header unchanged, new generation."""
        op = active_guard(bucket_id).omap_cmp(layout.SHARD_RANGE, view.raw)
        sampled = is_sampled(bucket_id, key, view.sample)
        if values is None:
            op.omap_rm(
                [layout.index_key(key), layout.sample_key(key)]
                if sampled
                else [layout.index_key(key)]
            )
            values = {}
        elif sampled and values:  # ({} only renews the generation token)
            values = {**values, layout.sample_key(key): b""}
        return op.omap_set({**values, layout.generation_key(key): _token()})

    async def _writable(self, bucket_id: str, key: str) -> ShardView:
        """A view of the shard covering key that a write can guard on (may wait for a split)."""
        table = await self.router.loaded(bucket_id)
        for _ in range(MAX_HOPS):
            shard = table.for_key(key)
            view = table.fresh_view(shard)
            if view is None or not view.covers(key):
                found = await self.router.read(bucket_id, shard)
                if found.state != ACTIVE:
                    raise StaleBucket(bucket_id)
                view = found.view
                await self.router.confirm_map(bucket_id)
                if not view.covers(key):
                    continue  # moved right: the table now knows the next shard
            if await self._unwritable(bucket_id, view):
                continue
            return view
        raise StaleBucket(bucket_id)

    async def _unwritable(self, bucket_id: str, view: ShardView) -> bool:
        """Clear what keeps a shard from taking writes; True if the caller must re-read."""
        if view.split is not None:
            await self.splitter.wait(bucket_id, view)
        elif view.pending:
            await self.splitter.activate(bucket_id, view)
        elif view.legacy:
            await self._add_range(bucket_id)
        else:
            return False
        self.router.table(bucket_id).views.pop(view.shard, None)
        return True

    async def _add_range(self, bucket_id: str) -> None:
        """Give a root shard from before ranges its header (no split can precede it)."""
        root = ShardView.root(self.settings.sample_rate)
        op = active_guard(bucket_id).omap_set({layout.SHARD_RANGE: root.raw})
        try:
            await self.meta.operate(self.router.oid(bucket_id, ROOT_SHARD), op)
        except (GuardFailed, ObjectNotFound):
            raise StaleBucket(bucket_id) from None

    async def _conflict(self, bucket_id: str, view: ShardView) -> None:
        """A guarded write failed: find out why (StaleBucket if the bucket is not active)."""
        found = await self.router.read(bucket_id, view.shard)
        if found.state != ACTIVE:
            raise StaleBucket(bucket_id)

    async def _after_write(self, bucket_id: str, key: str, view: ShardView, stored: bool) -> None:
        if stored and is_sampled(bucket_id, key, view.sample):
            task = self.splitter.after_write(bucket_id, view)
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)


async def _settle(publish: Awaitable[None]) -> None:
    """Finish publishing a write that landed, even through a cancellation: a caller
    told "failed" would undo what the index now points to."""
    task = asyncio.ensure_future(publish)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:
            break
    if cancelled:
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
    if not task.cancelled() and task.exception() is not None:  # (done by now)
        log.error("publishing an index change failed: %r", task.exception())


def _token() -> bytes:
    return secrets.token_hex(8).encode()
