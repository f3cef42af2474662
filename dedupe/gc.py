"""The chunk garbage collector: remove chunks that stayed unreferenced for a grace period.

Two passes per chunk, each one guarded compare-and-swap on the chunk's ``gen``
token (which every reference add replaces):

1. **mark**: a chunk seen with no ``ref.*`` key gets ``zero_since = "<now> <gen>"``,
   guarded on ``gen`` being what was read with the empty reference set. If a
   reference was added meanwhile, the guard fails and nothing is marked.
2. **remove**: a chunk still without references, whose mark is older than the
   grace period and names the *current* ``gen``, is removed in one op guarded
   on both ``gen`` and ``zero_since``. A reference added at any time after the
   mark replaced ``gen``, so the removal fails; a reference added after the
   removal finds no object (its add is guarded on existence) and the writer
   creates the chunk again. Either way no reference ever points at a removed
   chunk. Dropping a reference does not touch ``gen``: it cannot make a
   removable chunk unsafe to remove.

A delta chunk holds a reference on its base (``ref.delta:<fp>.<token>``); the
collector drops it after removing the delta, so a base outlives its deltas.

Packs (``dedupe.packs``) follow the same protocol, per pack. After removing a
pack the collector removes the fingerprint-index entries that still name it
(guarded on their value); a crash before that leaves entries that only cost
a writer one failed reference add, and fsck's repair removes them.

The grace period is not what makes removal safe (the guards do); it keeps a
just-unreferenced chunk for readers that still hold the old manifest (a GET
running while its object is overwritten) and for writers likely to reuse it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from dedupe import failpoints
from dedupe.chunk_format import HEADER_SIZE, peek_header
from dedupe.errors import ChunkCorrupt, ManifestCorrupt
from dedupe.packs import PackSlot, decode_table, holder_oid, is_pack
from dedupe.refs import GEN_KEY, ZERO_KEY, ZeroMark, delta_owner
from dedupe.store import ChunkStore, chunk_oid
from storage import GuardFailed, ObjectNotFound, WriteOp

# What examine() can find.
LIVE, MARKED, WAITING, REMOVED, RACED, GONE, FOREIGN = (
    "live", "marked", "waiting", "removed", "raced", "gone", "foreign",
)  # fmt: skip


@dataclass(slots=True)
class GcReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def __getitem__(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)


class ChunkCollector:
    def __init__(
        self,
        store: ChunkStore,
        *,
        grace_seconds: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.grace = grace_seconds
        self.clock = clock or store.clock

    async def collect(self, tiers: list[str] | None = None, fp_prefix: str = "") -> GcReport:
        """One pass over every chunk object and pack of the tiers (or over the chunk
        objects of one fingerprint hex prefix)."""
        report = GcReport()
        for tier in tiers or list(self.store.tiers):
            async for fp in self.store.list_chunks(tier, fp_prefix):
                report.add(await self.examine(tier, fp))
            if not fp_prefix:
                async for pack in self.store.list_packs(tier):
                    report.add(await self.examine(tier, pack))
        return report

    async def examine(self, tier: str, fp: bytes) -> str:
        """Advance one chunk object or pack (``fp`` is its holder key): mark it,
        remove it, or leave it; returns the outcome."""
        try:
            state = await self.store.ref_state(tier, fp)
        except ObjectNotFound:
            return GONE
        if state.gen is None:
            return FOREIGN  # not written by ChunkStore: never ours to remove
        if state.has_refs:
            return LIVE
        mark = state.zero_mark
        now = self.clock()
        if mark is None or mark.gen != state.gen:
            await failpoints.hit("gc.before_mark")
            op = WriteOp().assert_exists().omap_cmp(GEN_KEY, state.gen)
            op.omap_set({ZERO_KEY: ZeroMark(now, state.gen).encode()})
            return MARKED if await self._guarded(tier, fp, op) else RACED
        if mark.waited(now) < self.grace:
            return WAITING
        await failpoints.hit("gc.before_remove")
        op = WriteOp().assert_exists().omap_cmp(GEN_KEY, state.gen)
        op.omap_cmp(ZERO_KEY, state.zero_raw or b"").remove()
        if not await self._guarded(tier, fp, op):
            return RACED
        if state.delta is not None:
            # Only now may the base go: a crash before this leaves a reference
            # to a delta that no longer exists, which fsck drops.
            await failpoints.hit("gc.before_base_release")
            owner = delta_owner(fp, state.delta.token)
            await self.store.drop_ref(tier, state.delta.holder, owner)
        await failpoints.hit("gc.before_index_forget")
        if not is_pack(fp):
            await self.store.index(tier).forget_object(fp)
        elif state.table is not None:
            with contextlib.suppress(ManifestCorrupt):  # fsck reports stale entries
                await self.store.index(tier).forget(fp, decode_table(state.table))
        return REMOVED

    async def _guarded(self, tier: str, fp: bytes, op: WriteOp) -> bool:
        try:
            await self.store.pool(tier).operate(holder_oid(fp), op)
        except (GuardFailed, ObjectNotFound):
            return False
        return True


class ChunkObjectIndexer:
    """Names live chunk objects written before packs in the fingerprint index, so
    new uploads deduplicate against them (the collector's pass offers each).

    Batched: one lookup per shard per batch; for chunks not indexed yet, a
    header read (72 bytes) each and one insert per shard. Once a store is
    indexed a pass costs only the lookups. A chunk removed between its header
    read and the insert leaves an entry that costs a writer one failed
    reference add (and that fsck's repair removes).
    """

    BATCH = 512

    def __init__(self, store: ChunkStore) -> None:
        self.store = store
        self.indexed = 0
        self._todo: dict[str, list[bytes]] = {}

    async def offer(self, tier: str, fp: bytes) -> None:
        todo = self._todo.setdefault(tier, [])
        todo.append(fp)
        if len(todo) >= self.BATCH:
            await self._index(tier)

    async def flush(self) -> None:
        for tier in list(self._todo):
            await self._index(tier)

    async def _index(self, tier: str) -> None:
        fps, self._todo[tier] = self._todo[tier], []
        index, pool = self.store.index(tier), self.store.pool(tier)
        known = await index.lookup(fps)
        slots = []
        for fp in fps:
            if fp in known:
                continue
            try:
                prefix = await pool.read(chunk_oid(fp), 0, HEADER_SIZE)
                codec, raw_len, size = peek_header(prefix, fp)
            except (ObjectNotFound, ChunkCorrupt):
                continue
            slots.append(PackSlot(fp, 0, size, raw_len, codec))
        if slots:
            await index.insert(b"", slots)
            self.indexed += len(slots)
