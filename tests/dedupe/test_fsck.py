"""fsck against live manifests, corruption on read, and repair (both backends)."""

from __future__ import annotations

import os

import pytest

from dedupe import ChunkCollector, ChunkCorrupt, fsck, read_all
from dedupe.store import chunk_oid
from tests.dedupe.conftest import write_manifest


async def test_consistent_store_is_clean(store, cpu):
    live = [await write_manifest(store, cpu, os.urandom(40_000)) for _ in range(3)]
    report = await fsck(store, live, cpu=cpu)
    assert report.clean and not report.orphans
    assert report.manifests == 3
    assert report.chunks == len(set().union(*(m.chunk_refs() for m in live)))


async def test_async_manifest_source_and_fp_prefix(store, cpu):
    live = [await write_manifest(store, cpu, os.urandom(40_000))]

    async def source():
        for m in live:
            yield m

    total = 0
    for digit in "0123456789abcdef":
        part = await fsck(store, source(), cpu=cpu, fp_prefix=digit)
        assert part.clean
        total += part.chunks
    assert total == len(live[0].chunk_refs())


async def test_corrupt_chunk_fails_read_and_is_found_by_fsck(store, pool, cpu):
    data = os.urandom(50_000)
    manifest = await write_manifest(store, cpu, data)
    victim = manifest.entries[2].fingerprint
    # Flip payload bytes (XOR: writing fixed bytes would change nothing if they were there).
    payload = await pool.read(chunk_oid(victim), 200, 2)
    await pool.write(chunk_oid(victim), bytes(b ^ 0xFF for b in payload), 200)
    with pytest.raises(ChunkCorrupt):
        await read_all(store, manifest, cpu=cpu)
    assert store.stats.checksum_failures == 1

    report = await fsck(store, [manifest], cpu=cpu)
    assert [(t, fp) for t, fp, _ in report.corrupt] == [("hot", victim)]
    assert not report.clean

    # Repair quarantines it; the manifest now reports it missing...
    await fsck(store, [manifest], cpu=cpu, repair=True)
    quarantined = [oid async for oid in pool.list_objects("q.")]
    assert quarantined == [oid for oid in quarantined if victim.hex() in oid] != []
    report = await fsck(store, [manifest], cpu=cpu)
    assert [(o, fp) for o, _, fp in report.missing] == [(manifest.owner, victim)]

    # ...until the same bytes are written again, which stores a good copy, and
    # a repair restores the old manifest's reference.
    healer = await write_manifest(store, cpu, data)
    assert victim in {e.fingerprint for e in healer.entries}
    report = await fsck(store, [manifest, healer], cpu=cpu, repair=True)
    assert [(fp, o) for _, fp, o in report.missing_refs] == [(victim, manifest.owner)]
    assert (await fsck(store, [manifest, healer], cpu=cpu)).clean
    assert await read_all(store, manifest, cpu=cpu) == data


async def test_truncated_chunk_object_is_corrupt(store, pool, cpu):
    manifest = await write_manifest(store, cpu, os.urandom(20_000))
    await pool.truncate(chunk_oid(manifest.entries[0].fingerprint), 30)
    with pytest.raises(ChunkCorrupt):
        await read_all(store, manifest, cpu=cpu)
    assert len((await fsck(store, [manifest], cpu=cpu)).corrupt) == 1


async def test_stale_young_and_missing_references(store, cpu):
    kept = await write_manifest(store, cpu, os.urandom(30_000))
    crashed = await write_manifest(store, cpu, os.urandom(30_000))  # never committed
    # Young: could be an upload in flight, so only counted.
    report = await fsck(store, [kept], cpu=cpu, repair=True)
    assert report.young_refs == len(crashed.chunk_refs())
    assert report.clean and not report.stale_refs and not report.orphans
    # Old: stale, dropped by repair; the chunks become orphans for the collector.
    report = await fsck(store, [kept], cpu=cpu, stale_ref_seconds=0, repair=True)
    assert {(t, fp) for t, fp, _ in report.stale_refs} == crashed.chunk_refs()
    assert set(report.orphans) == crashed.chunk_refs()
    # A lost reference of a live manifest is put back.
    tier, fp = next(iter(kept.chunk_refs()))
    await store.drop_ref(tier, fp, kept.owner)
    report = await fsck(store, [kept], cpu=cpu, stale_ref_seconds=0, repair=True)
    assert report.missing_refs == [(tier, fp, kept.owner)]
    assert set(await store.refs(tier, fp)) == {kept.owner}
    # The collector then reclaims the orphans and fsck is clean.
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()
    await gc.collect()
    report = await fsck(store, [kept], cpu=cpu, stale_ref_seconds=0)
    assert report.clean and not report.orphans
    assert await read_all(store, kept, cpu=cpu)


async def test_missing_chunk_is_reported_per_manifest(store, pool, cpu):
    data = os.urandom(20_000)
    a = await write_manifest(store, cpu, data)
    b = await write_manifest(store, cpu, data)
    fp = a.entries[0].fingerprint
    await pool.remove(chunk_oid(fp))
    report = await fsck(store, [a, b], cpu=cpu)
    assert sorted(report.missing) == sorted([(a.owner, "hot", fp), (b.owner, "hot", fp)])
