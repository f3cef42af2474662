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

The grace period is not what makes removal safe (the guards do); it keeps a
just-unreferenced chunk for readers that still hold the old manifest (a GET
running while its object is overwritten) and for writers likely to reuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dedupe import failpoints
from dedupe.store import GEN_KEY, ZERO_KEY, ChunkStore, ZeroMark, chunk_oid, delta_owner
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
        """One pass over every chunk of the tiers (or of one fingerprint hex prefix)."""
        report = GcReport()
        for tier in tiers or list(self.store.tiers):
            async for fp in self.store.list_chunks(tier, fp_prefix):
                report.add(await self.examine(tier, fp))
        return report

    async def examine(self, tier: str, fp: bytes) -> str:
        """Advance one chunk: mark it, remove it, or leave it; returns the outcome."""
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
        if now - mark.since < self.grace:
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
            await self.store.drop_ref(tier, state.delta.base, owner)
        return REMOVED

    async def _guarded(self, tier: str, fp: bytes, op: WriteOp) -> bool:
        try:
            await self.store.pool(tier).operate(chunk_oid(fp), op)
        except (GuardFailed, ObjectNotFound):
            return False
        return True
