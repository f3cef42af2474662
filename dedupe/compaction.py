"""Pack compaction: rewrite a pack most of whose chunks no manifest uses any more.

A pack lives while any manifest references it, so one small object that shares
a few chunks with a deleted large one keeps the whole pack. The compactor
finds such packs (live share below ``min_live``), copies their live chunks to
a new pack and moves the manifests there:

1. read the pack's references and load each owner's manifest as stored (never
   a cached copy): the slots they name are live (a pack referenced by an
   owner whose manifest cannot be loaded, e.g. an upload in flight, or by a
   delta, is left alone);
2. write the new pack with the live chunks and a reference for every owner
   (one exclusive create, like any pack);
3. rewrite each manifest to name the new pack (``ManifestStore``, guarded on it
   being unchanged; an owner whose manifest changed or went keeps the old
   pack and loses its new reference);
4. if any manifest moved, point the fingerprint index at the new pack
   (guarded on each entry still naming the old one), else stop: the new pack
   has no reference left and the collector removes it;
5. drop the moved owners' references on the old pack, which the collector
   then removes after its grace period.

A crash after any step loses nothing: both packs hold the live chunks, every
manifest names one of them and holds a reference there; the references left
over are stale ones fsck drops. A gateway holding a cached manifest from
before the move reads the stored one when the old pack is gone (the engine's
``ChunkedPayloads``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Protocol

from dedupe import failpoints
from dedupe.delta import ManifestSource
from dedupe.errors import ChunkCorrupt, FailpointHit
from dedupe.manifest import Manifest
from dedupe.packs import TABLE_KEY, PackBuffer, PackSlot, decode_table, holder_oid
from dedupe.refs import DELTA_OWNER_PREFIX
from dedupe.store import ChunkStore
from storage import ObjectNotFound

KEPT, DEAD, PINNED, COMPACTED, RACED, FAILED = (
    "kept", "dead", "pinned", "compacted", "raced", "failed",
)  # fmt: skip
log = logging.getLogger("atonix.dedupe")


class ManifestStore(ManifestSource, Protocol):
    """Manifests the compactor may move (the engine stores them)."""

    async def stored_manifest(self, owner: str) -> Manifest | None:
        """The manifest as stored now, not a cached copy (None if there is none)."""
        ...

    async def rewrite_manifest(self, old: Manifest, new: Manifest) -> bool:
        """Replace ``old`` by ``new`` (same owner) if it is still stored unchanged."""
        ...


@dataclass(slots=True)
class CompactionReport:
    counts: dict[str, int] = field(default_factory=dict)
    reclaimable_bytes: int = 0  # dead bytes of the packs compacted

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1


class PackCompactor:
    def __init__(self, store: ChunkStore, manifests: ManifestStore, *, min_live: float = 0.5):
        self.store = store
        self.manifests = manifests
        self.min_live = min_live

    async def compact(self, tiers: list[str] | None = None) -> CompactionReport:
        report = CompactionReport()
        for tier in tiers or list(self.store.tiers):
            async for pack in self.store.list_packs(tier):
                try:
                    outcome, dead = await self.compact_pack(tier, pack)
                except FailpointHit:
                    raise  # a simulated crash stops everything
                except Exception:  # one bad pack (say, a corrupt table) must not stop the pass
                    log.warning("compaction of pack %s failed", pack.hex(), exc_info=True)
                    outcome, dead = FAILED, 0
                report.add(outcome)
                if outcome == COMPACTED:
                    report.reclaimable_bytes += dead
        return report

    async def compact_pack(self, tier: str, pack: bytes) -> tuple[str, int]:
        """(outcome, dead bytes) for one pack."""
        found = await self._users(tier, pack)
        if found is None:
            return PINNED, 0
        slots, users = found
        live = {m.offset for manifest in users for m in manifest.entries if m.pack == pack}
        kept = [s for s in slots if s.offset in live]
        total = sum(s.stored_len for s in slots)
        live_bytes = sum(s.stored_len for s in kept)
        if not kept:
            return DEAD, 0  # the collector's work once the references are gone
        if live_bytes >= self.min_live * total:
            return KEPT, 0
        if not await self._move(tier, pack, kept, users):
            return RACED, 0
        return COMPACTED, total - live_bytes

    async def _users(self, tier: str, pack: bytes) -> tuple[list[PackSlot], list[Manifest]] | None:
        """The pack's table and its owners' manifests; None when one cannot be judged."""
        try:
            owners = await self.store.refs(tier, pack)
            items = await self.store.pool(tier).omap_get(holder_oid(pack), [TABLE_KEY])
        except ObjectNotFound:
            return None
        if TABLE_KEY not in items or not owners:
            return None
        users = []
        for owner in owners:
            if owner.startswith(DELTA_OWNER_PREFIX):
                return None  # a delta's base: its link names the offset (not moved)
            manifest = await self.manifests.stored_manifest(owner)
            if manifest is None or manifest.owner != owner:
                return None  # in flight, or gone: fsck's business, not ours
            users.append(manifest)
        return decode_table(items[TABLE_KEY]), users

    async def _move(
        self, tier: str, pack: bytes, kept: list[PackSlot], users: list[Manifest]
    ) -> bool:
        """Steps 2-5; False if no manifest moved (all changed meanwhile)."""
        pool = self.store.pool(tier)
        buffer, where = PackBuffer(), {}
        for slot in kept:
            blob = await pool.read(holder_oid(pack), slot.offset, slot.stored_len)
            if len(blob) != slot.stored_len:  # never copy a short read into a new pack
                raise ChunkCorrupt(f"pack {pack.hex()}: slot at {slot.offset} read "
                                   f"{len(blob)} of {slot.stored_len} bytes")
            where[slot.offset] = buffer.append_blob(slot, blob)
        owners = [m.owner for m in users]
        await self.store.put_pack(tier, buffer, owners[0], more_owners=owners[1:])
        await failpoints.hit("compact.after_write")
        moved = []
        for old in users:
            entries = [
                replace(e, pack=buffer.pack, offset=where[e.offset].offset)
                if e.pack == pack
                else e
                for e in old.entries
            ]
            if await self.manifests.rewrite_manifest(old, Manifest(old.owner, entries)):
                moved.append(old.owner)
            else:
                await self.store.drop_ref(tier, buffer.pack, old.owner)
            await failpoints.hit("compact.after_manifest")
        if not moved:
            return False
        await self.store.index(tier).move(pack, kept, buffer.pack, [where[s.offset] for s in kept])
        await failpoints.hit("compact.after_index")
        for owner in moved:
            await self.store.drop_ref(tier, pack, owner)
        return True
