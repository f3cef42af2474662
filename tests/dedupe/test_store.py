"""Chunk store contract, on both backends: round trips, dedupe, ranges, concurrent writers."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from dedupe import ChunkMissing, Codec, DedupeWriter, read_all, read_range
from dedupe.chunk_format import encode_chunk
from dedupe.store import chunk_oid
from tests.dedupe.conftest import SMALL_CONFIG, write_manifest


async def stored_chunks(store) -> set[bytes]:
    return {fp async for fp in store.list_chunks("hot")}


def text_like(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [b"alpha", b"beta", b"GET", b"/api/v1/items", b"200", b"user=42", b"ok"]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(words) for _ in range(8)) + b"\n"
    return bytes(out[:size])


@pytest.mark.parametrize(
    "make",
    [
        lambda: os.urandom(200_000),
        lambda: bytes(150_000),
        lambda: text_like(180_000),
        lambda: b"",
        lambda: b"x",
    ],
    ids=["random", "zeros", "text", "empty", "one-byte"],
)
async def test_round_trip(store, cpu, make):
    data = make()
    manifest = await write_manifest(store, cpu, data)
    assert manifest.size == len(data)
    assert await read_all(store, manifest, cpu=cpu) == data
    for entry in manifest.entries:
        assert set(await store.refs("hot", entry.fingerprint)) == {manifest.owner}


async def test_all_zero_data_is_one_chunk_object_and_compressed(store, cpu):
    manifest = await write_manifest(store, cpu, bytes(300_000))
    fps = {e.fingerprint for e in manifest.entries}
    assert len(manifest.entries) > 10
    assert len(fps) <= 2  # every max-size zero chunk is the same (plus the tail)
    assert await stored_chunks(store) == fps
    assert all(e.codec is Codec.ZSTD for e in manifest.entries)
    assert store.stats.bytes_stored < 2000


async def test_incompressible_data_is_stored_raw(store, cpu):
    manifest = await write_manifest(store, cpu, os.urandom(100_000))
    assert all(e.codec is Codec.RAW for e in manifest.entries)


async def test_shifted_data_reuses_chunks(store, cpu):
    # Seeded: with arbitrary bytes, about 1 draw in 3,000 needs a few more cuts to resync.
    data = random.Random(12).randbytes(400_000)
    first = await write_manifest(store, cpu, data)
    created = store.stats.chunks_created
    second = await write_manifest(store, cpu, b"inserted!" + data)
    new = store.stats.chunks_created - created
    assert new <= 3
    assert len(second.entries) >= 50
    assert await read_all(store, second, cpu=cpu) == b"inserted!" + data
    shared = {e.fingerprint for e in first.entries} & {e.fingerprint for e in second.entries}
    for fp in shared:
        assert set(await store.refs("hot", fp)) == {first.owner, second.owner}


async def test_ranged_reads_return_exact_bytes(store, cpu):
    data = text_like(120_000, seed=3) + os.urandom(60_000)
    manifest = await write_manifest(store, cpu, data)
    rng = random.Random(5)
    ranges = [(0, 1), (0, len(data)), (len(data) - 1, len(data)), (5000, 5000), (17, 99_999)]
    ranges += [tuple(sorted(rng.sample(range(len(data) + 1), 2))) for _ in range(25)]
    for start, end in ranges:
        got = b"".join([p async for p in read_range(store, manifest, start, end, cpu=cpu)])
        assert got == data[start:end], (start, end)


async def test_range_reads_only_the_chunks_it_needs(store, cpu):
    data = os.urandom(200_000)
    manifest = await write_manifest(store, cpu, data)
    before = store.stats.chunks_read
    span = manifest.chunk_span(100_000, 100_010)
    got = b"".join([p async for p in read_range(store, manifest, 100_000, 100_010, cpu=cpu)])
    assert got == data[100_000:100_010]
    assert store.stats.chunks_read - before == len(span) <= 2


async def test_abandoned_read_cancels_read_ahead(store, cpu):
    manifest = await write_manifest(store, cpu, os.urandom(200_000))
    reader = read_range(store, manifest, cpu=cpu, read_ahead=4)
    assert await reader.__anext__()
    await reader.aclose()


async def test_concurrent_writers_of_identical_content(store, cpu):
    data = os.urandom(60_000) + bytes(30_000)
    manifests = await asyncio.gather(*(write_manifest(store, cpu, data) for _ in range(12)))
    fps = {e.fingerprint for e in manifests[0].entries}
    assert all({e.fingerprint for e in m.entries} == fps for m in manifests)
    assert await stored_chunks(store) == fps  # one object per distinct chunk
    owners = {m.owner for m in manifests}
    for fp in fps:
        assert set(await store.refs("hot", fp)) == owners
    for m in manifests:
        assert await read_all(store, m, cpu=cpu) == data


async def test_existing_chunk_is_not_rewritten(store, pool, cpu):
    enc = encode_chunk(b"same bytes" * 100)
    assert await store.put("hot", enc, "a") is True
    version = (await pool.stat(chunk_oid(enc.fingerprint))).version
    assert await store.put("hot", enc, "b") is False
    assert await store.put("hot", enc, "b", ref_first=True) is False  # idempotent
    assert (await pool.stat(chunk_oid(enc.fingerprint))).size == enc.stored_len
    assert (await pool.stat(chunk_oid(enc.fingerprint))).version > version  # refs only
    assert set(await store.refs("hot", enc.fingerprint)) == {"a", "b"}


async def test_read_sized_by_the_manifest_still_gets_a_re_encoded_chunk(store, pool, cpu):
    """The manifest's size is only a hint: a chunk collected and stored again by
    another writer may be encoded differently (here raw, then zstd), and a stale
    size must neither cut the read short nor fail it."""
    raw = text_like(40_000, seed=3)
    small = encode_chunk(raw)  # zstd: far smaller than raw
    big = encode_chunk(raw, level=0, min_saving=1.0)  # stored raw
    assert small.codec is Codec.ZSTD and big.codec is Codec.RAW
    await store.put("hot", big, "a")
    for hint in (0, small.stored_len, big.stored_len, big.stored_len + 100):
        assert await store.read_chunk("hot", big.fingerprint, cpu, size_hint=hint) == raw
        assert len(await store.read_blob("hot", big.fingerprint, hint)) == big.stored_len


async def test_release_drops_references_idempotently(store, cpu):
    manifest = await write_manifest(store, cpu, os.urandom(50_000))
    await store.release(manifest)
    await store.release(manifest)
    for entry in manifest.entries:
        assert await store.refs("hot", entry.fingerprint) == {}


async def test_missing_chunk_raises_typed_error(store, pool, cpu):
    manifest = await write_manifest(store, cpu, os.urandom(30_000))
    await pool.remove(chunk_oid(manifest.entries[-1].fingerprint))
    with pytest.raises(ChunkMissing):
        await read_all(store, manifest, cpu=cpu)


async def test_writer_abort_drops_its_references(store, cpu):
    writer = DedupeWriter(store, "aborted", config=SMALL_CONFIG, cpu=cpu)
    await writer.write(os.urandom(80_000))
    await writer.abort()
    for fp in await stored_chunks(store):
        assert await store.refs("hot", fp) == {}


async def test_failed_upload_drops_its_references(store, cpu):
    from dedupe import FailpointHit, failpoints

    async def body():
        yield os.urandom(60_000)
        yield os.urandom(60_000)

    writer = DedupeWriter(store, "failing", config=SMALL_CONFIG, cpu=cpu)
    with failpoints.armed("writer.chunk_stored", skip=5), pytest.raises(FailpointHit):
        await writer.consume(body())
    chunks = await stored_chunks(store)
    assert chunks  # some chunks were stored before the failure...
    for fp in chunks:  # ...and none keeps a reference from the failed upload
        assert await store.refs("hot", fp) == {}
