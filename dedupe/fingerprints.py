"""The fingerprint index: which pack holds a chunk, in omap shards of the tier's pool.

Shard ``fx.<h>`` (``h`` the first hex digit of the fingerprint, 16 shards)
maps ``<fp hex>`` to the chunk's ``PackSlot`` in a pack, or (pack id all
zero) to the chunk's own object ``c.<fp>``: delta chunks, and chunk objects
written before packs once the collector has indexed them
(``ChunkObjectIndexer``). An upload looks up
all its chunks with one read per shard it touches and inserts the chunks it
packed with one write per shard, instead of one operation per chunk.

The index is a hint, never the truth: a pack named here may have been
collected since (its reference add then fails and the writer stores the chunk
anew, overwriting the entry), two writers of the same new chunk each write a
pack and the last entry wins (both packs are valid). Entries are written only
after their pack is durable (data first), and the collector removes a removed
pack's entries guarded on their value, so it never drops a newer entry.

16 shards keep one upload's index work to about 32 small operations; with
Ceph's large-omap warning at 200k keys per object they index about 3.2M
chunks (about 100 GiB of unique data at 32 KiB chunks) before they should
split, the way bucket index shards do (not built yet: docs/design-dedupe.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import defaultdict
from collections.abc import Iterable

from dedupe.chunk_format import Codec
from dedupe.packs import PACK_ID_LEN, PackSlot
from storage import GuardFailed, ObjectNotFound, Pool, PoolNotFound, WriteOp

SHARD_PREFIX = "fx."
_VALUE = struct.Struct(f"<{PACK_ID_LEN}sIIIB")


def shard_oid(fp: bytes) -> str:
    return SHARD_PREFIX + fp[:1].hex()[0]


_OWN_OBJECT = bytes(PACK_ID_LEN)


def encode_hit(pack: bytes, slot: PackSlot) -> bytes:
    """``pack`` empty: the chunk is its own object."""
    where = pack or _OWN_OBJECT
    return _VALUE.pack(where, slot.offset, slot.stored_len, slot.length, slot.codec)


def decode_hit(fp: bytes, value: bytes) -> tuple[bytes, PackSlot] | None:
    """(pack, slot) of an index value, pack empty for a chunk object; None for
    a value that does not decode."""
    try:
        pack, offset, stored, length, codec = _VALUE.unpack(value)
        slot = PackSlot(fp, offset, stored, length, Codec(codec))
    except (struct.error, ValueError):
        return None
    return (b"" if pack == _OWN_OBJECT else pack), slot


def _by_shard(fps: Iterable[bytes]) -> dict[str, list[bytes]]:
    shards: dict[str, list[bytes]] = defaultdict(list)
    for fp in fps:
        shards[shard_oid(fp)].append(fp)
    return shards


class FingerprintIndex:
    """The index of one tier's pool."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def lookup(self, fps: Iterable[bytes]) -> dict[bytes, tuple[bytes, PackSlot]]:
        """fp -> (pack, slot) for each fingerprint the index knows; one read per shard."""
        found: dict[bytes, tuple[bytes, PackSlot]] = {}

        async def one(shard: str, members: list[bytes]) -> None:
            try:
                got = await self.pool.omap_get(shard, [fp.hex() for fp in members])
            except (ObjectNotFound, PoolNotFound):  # a tier never written to yet
                return
            for fp in members:
                value = got.get(fp.hex())
                hit = decode_hit(fp, value) if value is not None else None
                if hit is not None:
                    found[fp] = hit

        await asyncio.gather(*(one(s, m) for s, m in _by_shard(fps).items()))
        return found

    async def insert(self, pack: bytes, slots: Iterable[PackSlot]) -> None:
        """Name ``pack`` for each slot's chunk (after the pack is durable)."""
        table = {s.fingerprint: s for s in slots}

        async def one(shard: str, members: list[bytes]) -> None:
            items = {fp.hex(): encode_hit(pack, table[fp]) for fp in members}
            await self.pool.operate(shard, WriteOp().omap_set(items))

        await asyncio.gather(*(one(s, m) for s, m in _by_shard(table).items()))

    async def forget(self, pack: bytes, slots: Iterable[PackSlot]) -> int:
        """Remove the entries that still name ``pack`` for these chunks; how many went."""
        expected = {s.fingerprint: encode_hit(pack, s) for s in slots}
        return await self._replace_where(expected, None)

    async def forget_object(self, fp: bytes) -> None:
        """Remove the entry naming ``fp``'s own object (after the collector removed
        it), guarded on its value: an entry naming a pack is kept."""
        shard = shard_oid(fp)
        try:
            value = (await self.pool.omap_get(shard, [fp.hex()])).get(fp.hex())
            hit = decode_hit(fp, value) if value is not None else None
            if value is None or hit is None or hit[0]:
                return
            op = WriteOp().assert_exists().omap_cmp(fp.hex(), value).omap_rm([fp.hex()])
            await self.pool.operate(shard, op)
        except (GuardFailed, ObjectNotFound):
            pass

    async def move(
        self, old: bytes, old_slots: list[PackSlot], new: bytes, new_slots: list[PackSlot]
    ) -> None:
        """Re-point entries that still name ``old`` at ``new`` (compaction); entries
        another writer replaced meanwhile are left as they are."""
        pairs = list(zip(old_slots, new_slots, strict=True))
        expected = {a.fingerprint: encode_hit(old, a) for a, _ in pairs}
        await self._replace_where(expected, {b.fingerprint: encode_hit(new, b) for _, b in pairs})

    async def _replace_where(
        self, expected: dict[bytes, bytes], values: dict[bytes, bytes] | None
    ) -> int:
        """Set (or with ``values`` None, remove) each entry whose value is still the
        expected one; how many changed. One guarded write per shard; when another
        writer has replaced an entry meanwhile the guard fails and that shard
        goes key by key."""
        changed = 0

        async def guarded(shard: str, members: list[bytes]) -> bool:
            op = WriteOp().assert_exists()
            for fp in members:
                op.omap_cmp(fp.hex(), expected[fp])
            if values is None:
                op.omap_rm([fp.hex() for fp in members])
            else:
                op.omap_set({fp.hex(): values[fp] for fp in members})
            try:
                await self.pool.operate(shard, op)
            except (GuardFailed, ObjectNotFound):
                return False
            return True

        async def one(shard: str, members: list[bytes]) -> None:
            nonlocal changed
            if await guarded(shard, members):
                changed += len(members)
                return
            for fp in members if len(members) > 1 else []:
                changed += await guarded(shard, [fp])

        await asyncio.gather(*(one(s, m) for s, m in _by_shard(expected).items()))
        return changed

    async def entries(self) -> list[tuple[str, bytes, bytes]]:
        """Every entry: (shard, fp, value); for fsck."""
        out = []
        for digit in "0123456789abcdef":
            shard, after = SHARD_PREFIX + digit, ""
            while True:
                with contextlib.suppress(ObjectNotFound, PoolNotFound):  # pool: tier unused
                    page = await self.pool.omap_list(shard, after, "", 1000)
                    for key, value in page:
                        with contextlib.suppress(ValueError):
                            out.append((shard, bytes.fromhex(key), value))
                    if len(page) == 1000:
                        after = page[-1][0]
                        continue
                break
        return out

