"""Content-addressed chunks with per-reference omap keys, over the storage protocol.

A chunk lives in a pack (``dedupe.packs``: many chunks in one object, found
through ``dedupe.fingerprints``) or in an object of its own. Either object is a
*reference holder* with the omap keys below; packs are keyed by their 16-byte
id, chunk objects by their 32-byte fingerprint (``holder_oid``).

Chunk ``<fp>`` stored alone is the object ``c.<sha256 hex>`` in its tier's pool:
data = ``chunk_format`` header + payload; omap =

- ``gen``: a random token, replaced by every reference *add*. The collector
  guards its mark and its removal on it, so a reference added at any moment in
  between makes the removal fail (no ABA: tokens never repeat).
- ``ref.<owner id>``: one key per manifest that uses the chunk (value: the time
  it was taken). Adding is idempotent (a retried or replayed add changes
  nothing), the count is the number of keys, and fsck compares the key set with
  the live manifests directly, which a bare counter could never be checked against.
- ``zero_since``: ``"<time> <gen>"``, set by the collector when it first saw no
  reference (see ``dedupe.gc``).

A delta chunk (codec ``ZSTD_DELTA``, see ``chunk_format``) also has ``base``:
``"<base fp hex>.<token>"`` (plus ``.<pack hex>.<offset>.<size>`` when the base
is packed), and its base (chunk object or pack) carries the reference
``ref.delta:<delta fp hex>.<token>`` for as long as the delta exists: taken
before the delta is created, dropped by the collector after it removed the
delta. The token is new for every delta object created, so a collector that
removed an old delta can never drop the reference of a new one with the same
content.

Write order for one chunk: a new chunk is created *with* its first reference in
one atomic exclusive create (a chunk is never visible without the reference
that justifies it, and existing chunks are never rewritten); an existing chunk
gets only the reference. If the collector removes the chunk between our
"exists" and our add, the add fails its existence guard and we create it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from dedupe import failpoints
from dedupe.cache import ChunkCache
from dedupe.chunk_format import (
    HEADER_SIZE,
    ChunkHeader,
    Codec,
    EncodedChunk,
    decode_chunk,
    delta_base,
    object_size,
    parse_header,
)
from dedupe.dictionary import Dictionaries
from dedupe.errors import ChunkCorrupt, ChunkMissing, DedupeError
from dedupe.fingerprints import FingerprintIndex
from dedupe.manifest import Manifest, ManifestEntry
from dedupe.packs import (
    CHUNK_PREFIX,
    PACK_PREFIX,
    TABLE_KEY,
    PackBuffer,
    PackedAt,
    encode_table,
    holder_oid,
    is_pack,
)
from dedupe.refs import (
    BASE_KEY,
    GEN_KEY,
    PLAIN_KEY,
    REF_PREFIX,
    ZERO_KEY,
    DeltaLink,
    RefState,
    ZeroMark,
    delta_owner,
    new_gen,
    ref_key,
)
from dedupe.workers import CpuPool
from storage import GuardFailed, ObjectExists, ObjectNotFound, Pool, PoolNotFound, WriteOp

_PUT_ATTEMPTS = 8


def chunk_oid(fp: bytes) -> str:
    return CHUNK_PREFIX + fp.hex()


def packed_at(entry: ManifestEntry) -> PackedAt | None:
    return PackedAt(entry.pack, entry.offset, entry.stored_len) if entry.pack else None


@dataclass(slots=True)
class DedupeStats:
    """Counters the server exports as metrics."""

    chunks_created: int = 0
    packs_created: int = 0
    chunks_reused: int = 0
    bytes_stored: int = 0  # chunk object bytes this process created
    raw_bytes_created: int = 0  # raw (uncompressed) bytes of the chunks it created
    chunks_read: int = 0
    checksum_failures: int = 0
    deltas_created: int = 0  # of chunks_created, stored as a delta against a base


class ChunkStore:
    """Chunks in one or more tiers (tier name -> pool)."""

    def __init__(
        self,
        tiers: Mapping[str, Pool],
        default_tier: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        dictionaries: Dictionaries | None = None,
        cache: ChunkCache | None = None,
        unknown_tier: Callable[[str], Pool] | None = None,
    ) -> None:
        """``unknown_tier``: the pool of a tier named by a manifest but not configured
        (data an earlier tiering policy placed), instead of failing the read."""
        if not tiers:
            raise ValueError("a ChunkStore needs at least one tier")
        self.tiers = dict(tiers)
        self.default_tier = default_tier or next(iter(self.tiers))
        self.clock = clock
        self.stats = DedupeStats()
        self.dictionaries = dictionaries or Dictionaries(self.tiers)
        self.cache = cache
        self._indexes: dict[str, FingerprintIndex] = {}
        self._unknown_tier = unknown_tier

    def pool(self, tier: str) -> Pool:
        found = self.tiers.get(tier)
        if found is not None:
            return found
        if self._unknown_tier is None:
            raise DedupeError(f"unknown tier {tier!r}")
        # Remembered: the collector and fsck walk it from now on too.
        found = self._unknown_tier(tier)
        self.set_pool(tier, found)
        return found

    def set_pool(self, tier: str, pool: Pool) -> None:
        """Add a tier, or give one a new pool (a reloaded tiering policy)."""
        self.tiers[tier] = pool
        self._indexes.pop(tier, None)
        self.dictionaries.add_tier(tier, pool)

    def index(self, tier: str) -> FingerprintIndex:
        """The tier's fingerprint index (which pack holds a chunk)."""
        found = self._indexes.get(tier)
        if found is None:
            found = self._indexes[tier] = FingerprintIndex(self.pool(tier))
        return found

    # --- writes ---------------------------------------------------------------
    async def put(
        self, tier: str, chunk: EncodedChunk, owner: str, *, ref_first: bool = False
    ) -> bool:
        """Make sure the chunk exists and carries ``ref.<owner>``; True if we created it.

        ``ref_first`` tries the (small) reference add before the (large) create:
        cheaper when the chunk probably exists, e.g. right after a duplicate.
        """
        fp, pool = chunk.fingerprint, self.pool(tier)
        for _ in range(_PUT_ATTEMPTS):
            if ref_first and await self.try_add_ref(tier, fp, owner):
                return False
            await failpoints.hit("store.before_create")
            op = WriteOp().create(exclusive=True).write_full(chunk.blob)
            op.omap_set({GEN_KEY: new_gen(), PLAIN_KEY: b"1", ref_key(owner): self._now()})
            try:
                await pool.operate(chunk_oid(fp), op)
            except ObjectExists:
                await failpoints.hit("store.exists")  # the window the GC race test uses
                if await self.try_add_ref(tier, fp, owner):
                    return False
                continue  # collected between our create and our add: write it again
            self.stats.chunks_created += 1
            self.stats.bytes_stored += chunk.stored_len
            self.stats.raw_bytes_created += chunk.raw_len
            await failpoints.hit("store.after_create")
            return True
        raise DedupeError(f"chunk {fp.hex()} kept vanishing while being referenced")

    async def put_pack(
        self, tier: str, buffer: PackBuffer, owner: str, more_owners: list[str] | None = None
    ) -> None:
        """Create the pack with its chunk table and ``ref.<owner>`` (and those of
        ``more_owners``) in one exclusive create.

        The caller adds the pack's chunks to the fingerprint index only after this.
        """
        await failpoints.hit("pack.before_write")
        op = WriteOp().create(exclusive=True).write_full(buffer.data())
        now = self._now()
        items = {GEN_KEY: new_gen(), TABLE_KEY: encode_table(buffer.slots)}
        items.update((ref_key(o), now) for o in [owner, *(more_owners or [])])
        op.omap_set(items)
        await self.pool(tier).operate(holder_oid(buffer.pack), op)
        self.stats.packs_created += 1
        self.stats.chunks_created += len(buffer.slots)
        self.stats.bytes_stored += buffer.size
        self.stats.raw_bytes_created += buffer.raw_size
        await failpoints.hit("pack.after_write")

    async def put_delta(
        self,
        tier: str,
        chunk: EncodedChunk,
        base: bytes,
        owner: str,
        base_at: PackedAt | None = None,
    ) -> bool | None:
        """Store a delta chunk against ``base``; like ``put``, True if we created it.

        None when it could not be stored as a delta (the base is gone, or the
        chunk appeared and vanished meanwhile): the caller stores it plainly.
        The base's reference is taken first, so a delta never exists without it.
        """
        link = DeltaLink(base, secrets.token_hex(6), base_at)
        base_ref = delta_owner(chunk.fingerprint, link.token)
        if not await self.add_base_ref(tier, link.holder, base_ref):
            return None
        await failpoints.hit("store.before_create")
        op = WriteOp().create(exclusive=True).write_full(chunk.blob)
        op.omap_set({BASE_KEY: link.encode(), GEN_KEY: new_gen(), ref_key(owner): self._now()})
        try:
            await self.pool(tier).operate(chunk_oid(chunk.fingerprint), op)
        except ObjectExists:
            # The token is ours alone: nobody else can depend on this reference.
            await self.drop_ref(tier, link.holder, base_ref)
            return False if await self.try_add_ref(tier, chunk.fingerprint, owner) else None
        self.stats.chunks_created += 1
        self.stats.deltas_created += 1
        self.stats.bytes_stored += chunk.stored_len
        self.stats.raw_bytes_created += chunk.raw_len
        await failpoints.hit("store.after_create")
        return True

    async def add_base_ref(self, tier: str, holder: bytes, owner: str) -> bool:
        """Give a delta's base (its chunk object or pack) the delta's reference
        (``owner`` from ``delta_owner``).

        A chunk object is guarded on being plain: it may have been collected and
        stored again as a delta since it was chosen, and deltas do not chain
        (packs hold plain chunks only). False if it is gone or not plain.
        """
        op = self._ref_op(owner)
        if not is_pack(holder):
            op.omap_cmp(PLAIN_KEY, b"1")
        try:
            await self.pool(tier).operate(holder_oid(holder), op)
        except (ObjectNotFound, GuardFailed):
            return False
        return True

    async def base_state(self, tier: str, holder: bytes, owner: str) -> tuple[bool, bool, bool]:
        """(exists, plain, holds ``ref.<owner>``) of a delta's base: what fsck checks."""
        try:
            items = await self.pool(tier).omap_get(holder_oid(holder), [PLAIN_KEY, ref_key(owner)])
        except ObjectNotFound:
            return False, False, False
        return True, is_pack(holder) or items.get(PLAIN_KEY) == b"1", ref_key(owner) in items

    async def try_add_ref(self, tier: str, fp: bytes, owner: str) -> bool:
        """Reference an existing chunk object or pack; False if there is none."""
        try:
            await self.add_ref(tier, fp, owner)
        except ObjectNotFound:
            return False
        self.stats.chunks_reused += 1
        return True

    async def add_ref(self, tier: str, fp: bytes, owner: str) -> None:
        """Add ``ref.<owner>`` to an existing chunk (``ObjectNotFound`` if there is none)."""
        await self.pool(tier).operate(holder_oid(fp), self._ref_op(owner))
        await failpoints.hit("store.after_add_ref")

    def _ref_op(self, owner: str) -> WriteOp:
        """Add ``ref.<owner>`` to an existing chunk, replacing ``gen`` (see dedupe.gc)."""
        return WriteOp().assert_exists().omap_set({ref_key(owner): self._now(), GEN_KEY: new_gen()})

    async def drop_ref(self, tier: str, fp: bytes, owner: str) -> None:
        """Remove ``ref.<owner>``; idempotent, and a missing chunk is not an error."""
        with contextlib.suppress(ObjectNotFound):
            op = WriteOp().assert_exists().omap_rm([ref_key(owner)])
            await self.pool(tier).operate(holder_oid(fp), op)

    async def release(self, manifest: Manifest, concurrency: int = 64) -> None:
        """Drop every reference of a manifest (after its index entry is gone)."""
        slots = asyncio.Semaphore(concurrency)

        async def drop(tier: str, fp: bytes) -> None:
            async with slots:
                await self.drop_ref(tier, fp, manifest.owner)
                await failpoints.hit("store.after_drop_ref")

        await asyncio.gather(*(drop(t, fp) for t, fp in sorted(manifest.chunk_refs())))

    # --- reads ----------------------------------------------------------------
    async def read_blob(
        self, tier: str, fp: bytes, size_hint: int = 0, at: PackedAt | None = None
    ) -> bytes:
        """The chunk's stored bytes; ``size_hint`` (from the manifest) sizes the read.

        A packed chunk is one ranged read of its pack (packs never change). For
        a chunk object, a read of unknown length makes the backend reserve a
        large buffer; the manifest knows the size. The hint can be short: a
        chunk collected and stored again by another writer may be encoded
        differently, so when the header says there is more, the rest is read too.
        """
        pool = self.pool(tier)
        try:
            if at is not None:
                return await pool.read(holder_oid(at.pack), at.offset, at.stored_len)
            oid = chunk_oid(fp)
            if size_hint <= HEADER_SIZE:
                return await pool.read(oid)
            blob = await pool.read(oid, 0, size_hint)
            full = object_size(blob)  # an invalid header is left for decoding to report
            if len(blob) == size_hint and full is not None and full > size_hint:
                blob += await pool.read(oid, size_hint, full - size_hint)
            return blob
        except ObjectNotFound:
            raise ChunkMissing(fp, tier) from None

    async def read_chunk(
        self,
        tier: str,
        fp: bytes,
        cpu: CpuPool,
        *,
        verify_identity: bool = False,
        size_hint: int = 0,
        at: PackedAt | None = None,
    ) -> bytes:
        """Raw bytes of a chunk (in a pack when ``at`` says where), checksum
        verified (``ChunkCorrupt`` is counted).

        Through the process's chunk cache when there is one (chunks never
        change, so a cached chunk is never stale); fsck's identity check
        always reads the backend.
        """
        return await self._read(tier, fp, cpu, verify_identity, size_hint, at, as_base=False)

    async def read_entry(self, entry: ManifestEntry, cpu: CpuPool) -> bytes:
        """The raw bytes of a manifest entry's chunk.

        A packed chunk that is corrupt (or whose pack is gone) is read from the
        pack the fingerprint index names instead, if that is another one: the
        same bytes stored again by a later upload heal every object that
        shares them, as a chunk object stored again does.
        """
        at = packed_at(entry)
        return await self._read_healing(
            entry.tier, entry.fingerprint, cpu, entry.stored_len, at, as_base=False
        )

    async def _read_healing(
        self,
        tier: str,
        fp: bytes,
        cpu: CpuPool,
        size_hint: int,
        at: PackedAt | None,
        *,
        as_base: bool,
    ) -> bytes:
        """``_read`` at ``at``, or where the index names another copy if that fails."""
        try:
            return await self._read(tier, fp, cpu, False, size_hint, at, as_base=as_base)
        except (ChunkCorrupt, ChunkMissing):
            other = await self.elsewhere(tier, fp, at)
            if other is None:
                raise
        return await self._read(tier, fp, cpu, False, 0, other, as_base=as_base)

    async def elsewhere(self, tier: str, fp: bytes, at: PackedAt | None) -> PackedAt | None:
        """Where the index says a packed chunk also is, if not at ``at``."""
        if at is None:
            return None
        hit = (await self.index(tier).lookup([fp])).get(fp)
        if hit is None or hit[0] in (at.pack, b""):
            return None
        return PackedAt(hit[0], hit[1].offset, hit[1].stored_len)

    async def _read(
        self,
        tier: str,
        fp: bytes,
        cpu: CpuPool,
        verify_identity: bool,
        size_hint: int,
        at: PackedAt | None,
        *,
        as_base: bool,
    ) -> bytes:
        def load() -> Awaitable[bytes]:
            return self._read_verified(tier, fp, cpu, verify_identity, size_hint, at, as_base)

        if self.cache is not None and not verify_identity:
            return await self.cache.get_or_load((tier, fp), load)
        return await load()

    async def _read_verified(
        self,
        tier: str,
        fp: bytes,
        cpu: CpuPool,
        verify_identity: bool,
        size_hint: int,
        at: PackedAt | None,
        as_base: bool,
    ) -> bytes:
        blob = await self.read_blob(tier, fp, size_hint, at)
        try:
            head = parse_header(blob, fp)
            zdict = await self._dictionary_for(tier, head)
            base_raw = await self._base_for(tier, fp, blob, head, cpu, as_base)
            decode = functools.partial(
                decode_chunk, verify_identity=verify_identity, zdict=zdict, base_raw=base_raw
            )
            raw = await cpu.run(decode, blob, fp)
        except ChunkCorrupt:
            self.stats.checksum_failures += 1
            raise
        self.stats.chunks_read += 1
        return raw

    async def _base_for(
        self, tier: str, fp: bytes, blob: bytes, head: ChunkHeader, cpu: CpuPool, as_base: bool
    ) -> bytes | None:
        """The raw bytes a delta chunk is stored against (None for other codecs)."""
        base = delta_base(blob, head)
        if base is None:
            return None
        if as_base:  # writers never store a delta against a delta
            raise ChunkCorrupt(fp, "a delta chunk used as the base of another")
        link = await self.delta_link(tier, fp)  # where the base is (deltas are never packed)
        at = link.at if link is not None and link.base == base else None
        return await self._read_healing(tier, base, cpu, 0, at, as_base=True)

    async def _dictionary_for(self, tier: str, head: ChunkHeader):
        if head.codec is not Codec.ZSTD_DICT:
            return None
        return await self.dictionaries.get(tier, head.dict_id)

    async def ref_state(self, tier: str, fp: bytes) -> RefState:
        """gen, whether any reference exists, and the zero mark — in one omap read."""
        # Keys sort base < gen < plain < ref.* < table < zero_since: four settle
        # all of them (a chunk object has no table, a pack no base or plain).
        items = dict(await self.pool(tier).omap_list(holder_oid(fp), max_items=4))
        zero = items.get(ZERO_KEY)
        return RefState(
            gen=items.get(GEN_KEY),
            has_refs=any(k.startswith(REF_PREFIX) for k in items),
            zero_mark=ZeroMark.decode(zero) if zero is not None else None,
            zero_raw=zero,
            delta=DeltaLink.decode(items.get(BASE_KEY)),
            table=items.get(TABLE_KEY),
        )

    async def delta_link(self, tier: str, fp: bytes) -> DeltaLink | None:
        """The base a chunk is stored against (None: not a delta, or no such chunk)."""
        try:
            items = await self.pool(tier).omap_get(chunk_oid(fp), [BASE_KEY])
        except ObjectNotFound:
            return None
        return DeltaLink.decode(items.get(BASE_KEY))

    async def refs(self, tier: str, fp: bytes) -> dict[str, float]:
        """Every reference of a chunk: owner -> time taken (pages through the omap)."""
        out: dict[str, float] = {}
        after = ""
        while True:
            page = await self.pool(tier).omap_list(holder_oid(fp), after, REF_PREFIX, 1000)
            for key, value in page:
                out[key[len(REF_PREFIX) :]] = _float(value)
            if len(page) < 1000:
                return out
            after = page[-1][0]

    async def some_owners(self, tier: str, fp: bytes, limit: int = 8) -> list[str]:
        """Up to ``limit`` owners of references to a chunk (one omap read)."""
        page = await self.pool(tier).omap_list(holder_oid(fp), "", REF_PREFIX, limit)
        return [key[len(REF_PREFIX) :] for key, _ in page]

    async def list_chunks(self, tier: str, fp_prefix: str = "") -> AsyncIterator[bytes]:
        """Fingerprints of every chunk object in a tier (optionally one hex prefix)."""
        async for oid in self._list(tier, CHUNK_PREFIX + fp_prefix):
            with contextlib.suppress(ValueError):
                yield bytes.fromhex(oid[len(CHUNK_PREFIX) :])

    async def list_packs(self, tier: str, prefix: str = "") -> AsyncIterator[bytes]:
        """The id of every pack in a tier (optionally of one hex prefix)."""
        async for oid in self._list(tier, PACK_PREFIX + prefix):
            with contextlib.suppress(ValueError):
                key = bytes.fromhex(oid[len(PACK_PREFIX) :])
                if is_pack(key):
                    yield key

    async def list_holders(self, tier: str, prefix: str = "") -> AsyncIterator[bytes]:
        """Every reference holder of a tier (optionally of one hex prefix): chunk
        objects' fingerprints, then pack ids."""
        async for fp in self.list_chunks(tier, prefix):
            yield fp
        async for pack in self.list_packs(tier, prefix):
            yield pack

    async def _list(self, tier: str, prefix: str) -> AsyncIterator[str]:
        # A tier's pool is created by its first write: until then it holds nothing.
        try:
            async for oid in self.pool(tier).list_objects(prefix):
                yield oid
        except PoolNotFound:
            return

    def _now(self) -> bytes:
        return f"{self.clock():.6f}".encode()


def _float(value: bytes) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0  # unreadable: treat as old, so fsck may judge it
