"""Chunk packs on both backends: one write per pack, one reference per pack, the
fingerprint index, the collector and fsck over packs, and old chunk objects
still readable beside them."""

from __future__ import annotations

import random
from dataclasses import replace

from dedupe import ChunkCollector, Codec, DedupeWriter, decode_manifest, encode_manifest, fsck
from dedupe.compaction import PackCompactor
from dedupe.gc import ChunkObjectIndexer
from dedupe.manifest import ManifestEntry
from dedupe.packs import holder_oid
from dedupe.store import ChunkStore
from tests.dedupe.conftest import SMALL_CONFIG, SMALL_PACKED, Objects, pieces

rng = random.Random(7)
DATA = rng.randbytes(200_000)


async def packed(store, cpu, data: bytes, owner: str):
    writer = DedupeWriter(store, owner, config=SMALL_PACKED, cpu=cpu)
    return await writer.consume(pieces(data))


async def holders(store) -> tuple[set[bytes], set[bytes]]:
    chunks = {fp async for fp in store.list_chunks("hot")}
    packs = {p async for p in store.list_packs("hot")}
    return chunks, packs


async def read_chunks(store, cpu, entries) -> list[bytes]:
    return [await store.read_entry(e, cpu) for e in entries]


async def read(store, cpu, manifest) -> bytes:
    return b"".join(await read_chunks(store, cpu, manifest.entries))


async def test_new_chunks_go_into_packs_named_by_the_index(store, cpu):
    m = await packed(store, cpu, DATA, "one")
    chunks, packs = await holders(store)
    assert chunks == set() and len(packs) >= 4  # 24 KiB packs: several per upload
    assert {e.pack for e in m.entries} == packs
    assert store.stats.packs_created == len(packs)
    assert await read(store, cpu, m) == DATA
    for pack in packs:
        assert set(await store.refs("hot", pack)) == {"one"}
    found = await store.index("hot").lookup(e.fingerprint for e in m.entries)
    assert {fp: hit[0] for fp, hit in found.items()} == {e.fingerprint: e.pack for e in m.entries}
    # The manifest codec keeps every location.
    assert decode_manifest(encode_manifest(m)).entries == m.entries


async def test_repeated_content_writes_nothing_and_references_each_pack_once(store, cpu, pool):
    first = await packed(store, cpu, DATA, "one")
    _, packs = await holders(store)
    fresh = ChunkStore({"hot": pool})  # another process: no recent hits, the index answers
    second = await packed(fresh, cpu, DATA, "two")
    assert fresh.stats.packs_created == 0 and fresh.stats.chunks_created == 0
    assert (await holders(store))[1] == packs
    assert second.entries == [e for e in first.entries]  # same places, other owner
    for pack in packs:
        assert set(await store.refs("hot", pack)) == {"one", "two"}
    assert await read(fresh, cpu, second) == DATA


async def test_released_packs_are_collected_with_their_index_entries(store, cpu):
    keep = await packed(store, cpu, DATA[:50_000], "keep")
    gone = await packed(store, cpu, rng.randbytes(120_000), "gone")
    await store.release(gone)
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()
    report = await gc.collect()
    assert report["removed"] == len({e.pack for e in gone.entries})
    assert (await holders(store))[1] == {e.pack for e in keep.entries}
    entries = await store.index("hot").entries()
    assert {fp for _, fp, _ in entries} == {e.fingerprint for e in keep.entries}
    assert await read(store, cpu, keep) == DATA[:50_000]
    report = await fsck(store, [keep], cpu=cpu, stale_ref_seconds=0)
    assert report.clean and not report.orphans and report.stale_index == 0


async def test_index_entry_of_a_vanished_pack_is_rewritten(store, cpu, pool):
    first = await packed(store, cpu, DATA, "one")
    victim = first.entries[0].pack
    await pool.remove(holder_oid(victim))  # as a collector that stopped before the index
    report = await fsck(store, [], cpu=cpu, stale_ref_seconds=0)
    assert report.stale_index == sum(e.pack == victim for e in first.entries)
    fresh = ChunkStore({"hot": pool})
    again = await packed(fresh, cpu, DATA, "two")
    assert fresh.stats.packs_created >= 1  # the lost chunks were stored anew
    assert victim not in {e.pack for e in again.entries}
    assert await read(fresh, cpu, again) == DATA
    report = await fsck(fresh, [again], cpu=cpu, stale_ref_seconds=0, repair=True)
    assert not report.missing and not report.corrupt
    assert (await fsck(fresh, [again], cpu=cpu, stale_ref_seconds=0)).stale_index == 0


async def test_chunk_objects_and_packs_side_by_side(store, cpu):
    writer = DedupeWriter(store, "old", config=SMALL_CONFIG, cpu=cpu)
    old = await writer.consume(pieces(DATA))
    new = await packed(store, cpu, DATA[:100_000] + rng.randbytes(50_000), "new")
    chunks, packs = await holders(store)
    assert chunks == {e.fingerprint for e in old.entries} and packs
    assert all(not e.pack for e in old.entries) and all(e.pack for e in new.entries)
    assert await read(store, cpu, old) == DATA
    report = await fsck(store, [old, new], cpu=cpu, stale_ref_seconds=0)
    assert report.clean and report.chunks == len(chunks) and report.packs == len(packs)


async def test_corrupt_packed_chunk_is_reported_then_healed_by_a_new_copy(store, cpu, pool):
    m = await packed(store, cpu, DATA, "one")
    victim: ManifestEntry = m.entries[3]
    oid = holder_oid(victim.pack)
    blob = bytearray(await pool.read(oid))
    blob[victim.offset + victim.stored_len - 1] ^= 0xFF
    await pool.write_full(oid, bytes(blob))
    report = await fsck(store, [m], cpu=cpu, repair=True)
    assert [fp for _, fp, _ in report.corrupt] == [victim.fingerprint]
    # Repair dropped its index entry: the same bytes uploaded again are stored again...
    fresh = ChunkStore({"hot": pool})
    again = await packed(fresh, cpu, DATA, "two")
    assert fresh.stats.chunks_created == 1
    # ...and heal every object that shares them.
    assert await read(fresh, cpu, m) == DATA
    report = await fsck(fresh, [m, again], cpu=cpu)
    assert report.clean and report.healed == 1


async def test_edit_of_a_packed_version_is_stored_as_a_delta(packed_objects, store, cpu):
    v1 = rng.randbytes(150_000)
    v2 = v1[:70_000] + b"an edit" + v1[70_000:]
    await packed_objects.put("f", v1)
    m2 = await packed_objects.put("f", v2)
    assert store.stats.deltas_created >= 1
    delta = [e for e in m2.entries if e.codec is Codec.ZSTD_DELTA]
    assert delta and all(not e.pack for e in delta)  # deltas stay objects of their own
    link = await store.delta_link("hot", delta[0].fingerprint)
    assert link is not None and link.at is not None  # ...against a packed base
    assert await packed_objects.get("f") == v2
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()
    await gc.collect()
    report = await fsck(store, await packed_objects.live(), cpu=cpu, stale_ref_seconds=0)
    assert report.clean and not report.orphans
    assert await packed_objects.get("f") == v2


async def test_compaction_moves_the_live_chunks_of_a_mostly_dead_pack(
    store, meta_pool, cpu
):
    # Without deltas: a pack that holds a delta's base is left alone (pinned).
    objects = Objects(store, meta_pool, cpu, replace(SMALL_PACKED, delta_chunks=False))
    big = rng.randbytes(20_000)  # one pack of 24 KiB holds it whole
    m_big = await objects.put("big", big)
    [old_pack] = {e.pack for e in m_big.entries}
    assert len(m_big.entries) >= 4
    small = b"".join(await read_chunks(store, cpu, m_big.entries[:1]))  # one of its chunks
    m_small = await objects.put("small", small)
    assert {e.pack for e in m_small.entries} == {old_pack}
    await objects.delete("big")
    report = await PackCompactor(store, objects, min_live=0.5).compact()
    assert report.counts == {"compacted": 1} and report.reclaimable_bytes > 0
    moved = await objects.manifest(m_small.owner)
    [new_pack] = {e.pack for e in moved.entries}
    assert new_pack != old_pack
    assert set(await store.refs("hot", old_pack)) == set()
    assert set(await store.refs("hot", new_pack)) == {m_small.owner}
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()
    await gc.collect()
    assert {p async for p in store.list_packs("hot")} == {new_pack}
    assert await objects.get("small") == small
    assert await read(store, cpu, m_small) == small  # a copy from before the move
    found = await store.index("hot").lookup(e.fingerprint for e in moved.entries)
    assert {hit[0] for hit in found.values()} == {new_pack}
    report = await fsck(store, await objects.live(), cpu=cpu, stale_ref_seconds=0)
    assert report.clean and not report.orphans and report.stale_index == 0
    # A pack that is mostly live, or referenced by an upload in flight, stays.
    assert (await PackCompactor(store, objects).compact()).counts == {"kept": 1}
    await store.add_ref("hot", new_pack, "in-flight")
    assert (await PackCompactor(store, objects).compact()).counts == {"pinned": 1}


async def test_chunk_objects_from_before_packs_are_indexed_then_reused(store, cpu, pool):
    old = await DedupeWriter(store, "old", config=SMALL_CONFIG, cpu=cpu).consume(pieces(DATA))
    indexer = ChunkObjectIndexer(store)
    for fp in {e.fingerprint for e in old.entries}:
        await indexer.offer("hot", fp)
    await indexer.flush()
    assert indexer.indexed == len({e.fingerprint for e in old.entries})
    fresh = ChunkStore({"hot": pool})
    again = await packed(fresh, cpu, DATA, "new")
    assert fresh.stats.chunks_created == 0  # every chunk referenced where it is
    assert all(not e.pack for e in again.entries)
    assert await read(fresh, cpu, again) == DATA
    # Once the old objects are collected, their entries go with them.
    await store.release(old)
    await store.release(again)
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()
    await gc.collect()
    assert await store.index("hot").entries() == []


async def test_a_delta_stored_once_is_found_by_the_next_upload(packed_objects, store, cpu):
    v1 = rng.randbytes(150_000)
    v2 = v1[:70_000] + b"an edit" + v1[70_000:]
    await packed_objects.put("f", v1)
    await packed_objects.put("f", v2)
    created = store.stats.deltas_created
    assert created >= 1
    m = await packed_objects.put("g", v2)  # the same edited bytes under another key
    assert store.stats.deltas_created == created and store.stats.chunks_created > 0
    deltas = [e for e in m.entries if e.codec is Codec.ZSTD_DELTA]
    assert deltas and all(not e.pack for e in deltas)
    assert await packed_objects.get("g") == v2
