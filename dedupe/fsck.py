"""fsck core: check chunks and references against the live manifests; repair on request.

The caller supplies every *live* manifest (those an index entry or an
in-progress upload record names). fsck then walks every chunk object and reports:

- **missing**: a live manifest names a chunk that does not exist (data loss;
  nothing to repair from — a later upload of the same bytes recreates it);
- **missing_refs**: the chunk exists but lacks ``ref.<owner>`` of a manifest
  that uses it. Repair adds it (idempotent).
- **stale_refs**: ``ref.<owner>`` with no live manifest ``owner``, older than
  ``stale_ref_seconds`` (an upload that crashed after taking references, or a
  delete that crashed before dropping them). Repair drops it. Younger unknown
  references are only counted (``young_refs``): they may belong to an upload
  still in flight.
  A delta chunk's reference on its base (``delta:<fp>.<token>``) is live while
  that delta exists and names this base with that token.
- **orphans**: chunks with no reference at all. Not an error: the collector
  removes them after its grace period.
- **corrupt**: header, XXH3 or SHA-256 check failed. Repair copies the bytes
  to ``q.<fp>.<time>`` for inspection and removes the chunk (guarded on its
  ``gen``), so the next upload of the same content stores a good copy instead
  of referencing the bad one; its manifests then report it missing.

Packs (``dedupe.packs``) are checked the same way per pack: references against
the manifests that name the pack, and every chunk of its table decoded and
verified. A corrupt chunk in a pack is reported; repair removes its
fingerprint-index entry (so the next upload of those bytes stores a good copy)
but keeps the pack, whose other chunks are good. Repair also removes index
entries that name a pack that no longer exists (``stale_index``).

``fp_prefix`` restricts a run to chunk objects and packs whose hex key starts
with it, so a large store can be checked in slices with bounded memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field

from dedupe.errors import ChunkCorrupt, ChunkMissing, ManifestCorrupt
from dedupe.fingerprints import decode_hit
from dedupe.manifest import Manifest
from dedupe.packs import PackedAt, decode_table, holder_oid, is_pack
from dedupe.refs import GEN_KEY, DeltaLink, delta_owner
from dedupe.store import TABLE_KEY, ChunkStore, chunk_oid
from dedupe.workers import CpuPool
from storage import GuardFailed, ObjectNotFound, WriteOp

_PARALLEL = 16


@dataclass(slots=True)
class FsckReport:
    manifests: int = 0
    chunks: int = 0
    missing: list[tuple[str, str, bytes]] = field(default_factory=list)  # owner, tier, fp
    missing_refs: list[tuple[str, bytes, str]] = field(default_factory=list)  # tier, fp, owner
    stale_refs: list[tuple[str, bytes, str]] = field(default_factory=list)  # tier, fp, owner
    young_refs: int = 0
    orphans: list[tuple[str, bytes]] = field(default_factory=list)
    corrupt: list[tuple[str, bytes, str]] = field(default_factory=list)  # tier, fp, reason
    packs: int = 0
    stale_index: int = 0  # fingerprint-index entries naming a pack that is gone
    healed: int = 0  # corrupt packed chunks whose bytes a later upload stored again
    repaired: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """No loss, no corruption and references exactly as the manifests say."""
        return not (self.missing or self.missing_refs or self.stale_refs or self.corrupt)

    def _repaired(self, what: str) -> None:
        self.repaired[what] = self.repaired.get(what, 0) + 1


async def fsck(
    store: ChunkStore,
    manifests: Iterable[Manifest] | AsyncIterable[Manifest],
    *,
    cpu: CpuPool,
    repair: bool = False,
    verify_data: bool = True,
    stale_ref_seconds: float = 24 * 3600.0,
    fp_prefix: str = "",
) -> FsckReport:
    report = FsckReport()
    expected = await _expected_refs(manifests, fp_prefix, report)
    check = _ChunkCheck(store, cpu, report, repair, verify_data, stale_ref_seconds)
    seen: set[tuple[str, bytes]] = set()
    for tier in store.tiers:
        batch: list[bytes] = []
        async for fp in store.list_holders(tier, fp_prefix):
            batch.append(fp)
            if len(batch) >= _PARALLEL:
                await check.run(tier, batch, expected, seen)
                batch = []
        await check.run(tier, batch, expected, seen)
    for (tier, fp), owners in sorted(expected.items()):
        if (tier, fp) not in seen:
            report.missing.extend((owner, tier, fp) for owner in sorted(owners))
    if not fp_prefix:
        for tier in store.tiers:
            await _check_index(store, tier, report, repair)
    return report


async def _check_index(store: ChunkStore, tier: str, report: FsckReport, repair: bool) -> None:
    """Index entries that name a pack which no longer exists (a collector that
    stopped between removing a pack and its entries)."""
    index, pool = store.index(tier), store.pool(tier)
    by_holder: dict[bytes, list] = {}  # pack id, or the fingerprint of a chunk object
    for _shard, fp, value in await index.entries():
        hit = decode_hit(fp, value)
        if hit is not None:
            by_holder.setdefault(hit[0] or fp, []).append(hit[1])
    for holder, slots in by_holder.items():
        try:
            await pool.stat(holder_oid(holder))
            continue
        except ObjectNotFound:
            pass
        pack = holder if is_pack(holder) else b""
        report.stale_index += len(slots)
        if repair:
            report.repaired["stale_index"] = report.repaired.get(
                "stale_index", 0
            ) + await index.forget(pack, slots)


async def _expected_refs(
    manifests: Iterable[Manifest] | AsyncIterable[Manifest], fp_prefix: str, report: FsckReport
) -> dict[tuple[str, bytes], set[str]]:
    expected: dict[tuple[str, bytes], set[str]] = {}

    def take(m: Manifest) -> None:
        report.manifests += 1
        for tier, fp in m.chunk_refs():
            if fp.hex().startswith(fp_prefix):
                expected.setdefault((tier, fp), set()).add(m.owner)

    if isinstance(manifests, AsyncIterable):
        async for m in manifests:
            take(m)
    else:
        for m in manifests:
            take(m)
    return expected


@dataclass(slots=True)
class _ChunkCheck:
    store: ChunkStore
    cpu: CpuPool
    report: FsckReport
    repair: bool
    verify_data: bool
    stale_ref_seconds: float

    async def run(self, tier, fps, expected, seen) -> None:
        seen.update((tier, fp) for fp in fps)
        await asyncio.gather(*(self.one(tier, fp, expected.get((tier, fp), set())) for fp in fps))

    async def one(self, tier: str, fp: bytes, wanted: set[str]) -> None:
        try:
            refs = await self.store.refs(tier, fp)
        except ObjectNotFound:  # removed by the collector since we listed it
            return
        if is_pack(fp):
            self.report.packs += 1
            if self.verify_data:
                await self._verify_pack(tier, fp)
        else:
            self.report.chunks += 1
            await self._check_delta(tier, fp)
            if self.verify_data and not await self._verify(tier, fp):
                return
        now = self.store.clock()
        for owner in sorted(wanted - refs.keys()):
            self.report.missing_refs.append((tier, fp, owner))
            if self.repair:
                try:
                    await self.store.add_ref(tier, fp, owner)
                    self.report._repaired("missing_refs")
                except ObjectNotFound:
                    pass
        kept = len(wanted)
        for owner in sorted(refs.keys() - wanted):
            if await self._delta_depends(tier, fp, owner):
                kept += 1
                continue
            if now - refs[owner] < self.stale_ref_seconds:
                self.report.young_refs += 1
                kept += 1
                continue
            self.report.stale_refs.append((tier, fp, owner))
            if self.repair:
                await self.store.drop_ref(tier, fp, owner)
                self.report._repaired("stale_refs")
            else:
                kept += 1
        if kept == 0:
            self.report.orphans.append((tier, fp))

    async def _delta_depends(self, tier: str, fp: bytes, owner: str) -> bool:
        """Whether ``owner`` is the reference of a delta chunk that is stored against ``fp``."""
        named = DeltaLink.from_owner(owner)
        if named is None:
            return False
        delta_fp, token = named
        link = await self.store.delta_link(tier, delta_fp)
        return link is not None and link.holder == fp and link.token == token

    async def _check_delta(self, tier: str, fp: bytes) -> None:
        """A delta needs its base: present, plain, and holding the delta's reference.

        A base that is missing or not plain makes the delta unreadable: reported
        as corrupt (the delta itself is intact, so it is not quarantined; storing
        the base's bytes again brings it back, and a repair then re-attaches it).
        A missing reference is added back by a repair.
        """
        link = await self.store.delta_link(tier, fp)
        if link is None:
            return
        owner = delta_owner(fp, link.token)
        exists, plain, held = await self.store.base_state(tier, link.holder, owner)
        if not exists or not plain:
            problem = "missing" if not exists else "not a plain chunk"
            self.report.corrupt.append((tier, fp, f"delta base {link.base.hex()} {problem}"))
        elif not held:
            self.report.missing_refs.append((tier, link.holder, owner))
            if self.repair and await self.store.add_base_ref(tier, link.holder, owner):
                self.report._repaired("missing_refs")

    async def _verify(self, tier: str, fp: bytes) -> bool:
        try:
            await self.store.read_chunk(tier, fp, self.cpu, verify_identity=True)
            return True
        except (ChunkMissing, ChunkCorrupt) as e:
            if e.fingerprint != fp:
                return False  # its delta base's failure: reported for the base, or above
            if isinstance(e, ChunkMissing):
                return False  # removed by the collector since we listed it
            self.report.corrupt.append((tier, fp, e.reason))
        if self.repair:
            await self._quarantine(tier, fp)
        return False

    async def _verify_pack(self, tier: str, pack: bytes) -> None:
        """Decode and check every chunk in the pack's table."""
        try:
            items = await self.store.pool(tier).omap_get(holder_oid(pack), [TABLE_KEY])
            slots = decode_table(items.get(TABLE_KEY, b""))
        except ObjectNotFound:
            return  # removed by the collector since we listed it
        except ManifestCorrupt as e:
            self.report.corrupt.append((tier, pack, f"pack table: {e}"))
            return
        bad = []
        for slot in slots:
            at = PackedAt(pack, slot.offset, slot.stored_len)
            try:
                await self.store.read_chunk(
                    tier, slot.fingerprint, self.cpu, verify_identity=True, at=at
                )
            except ChunkMissing:
                return  # removed since we listed it
            except ChunkCorrupt as e:
                if await self._healed(tier, slot.fingerprint, at):
                    continue
                where = f"in pack {pack.hex()}: {e.reason}"
                self.report.corrupt.append((tier, slot.fingerprint, where))
                bad.append(slot)
        if bad and self.repair:
            await self.store.index(tier).forget(pack, bad)
            self.report._repaired("corrupt_unindexed")

    async def _healed(self, tier: str, fp: bytes, at: PackedAt) -> bool:
        """Whether a corrupt packed chunk has a good copy the index names (which
        readers then use, see ``ChunkStore.read_entry``)."""
        other = await self.store.elsewhere(tier, fp, at)
        if other is None:
            return False
        try:
            await self.store.read_chunk(tier, fp, self.cpu, verify_identity=True, at=other)
        except (ChunkCorrupt, ChunkMissing):
            return False
        self.report.healed += 1
        return True

    async def _quarantine(self, tier: str, fp: bytes) -> None:
        pool = self.store.pool(tier)
        try:
            state = await self.store.ref_state(tier, fp)
            blob = await pool.read(chunk_oid(fp))
        except ObjectNotFound:
            return
        await pool.write_full(f"q.{fp.hex()}.{int(self.store.clock())}", blob)
        op = WriteOp().assert_exists()
        if state.gen is not None:
            op.omap_cmp(GEN_KEY, state.gen)
        try:
            await pool.operate(chunk_oid(fp), op.remove())
            self.report._repaired("quarantined")
        except (GuardFailed, ObjectNotFound):
            pass  # changed meanwhile: the next run looks again
