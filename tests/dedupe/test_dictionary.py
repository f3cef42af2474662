"""Trained zstd dictionaries: learned from a tier's chunks, stored, used, and read back."""

from __future__ import annotations

import random

import pytest

from dedupe import ChunkCollector, ChunkStore, Codec, decode_chunk, encode_chunk, fsck, read_all
from dedupe.dictionary import CURRENT_OID, Dictionaries, dict_oid
from tests.dedupe.conftest import write_manifest


def log_lines(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    paths = ["/api/v1/users", "/api/v1/orders", "/static/app.js", "/login", "/health"]
    out = bytearray()
    while len(out) < size:
        out += (
            f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)} - - [2024-05-0{rng.randint(1, 9)}] "
            f'"GET {rng.choice(paths)} HTTP/1.1" {rng.choice([200, 200, 404, 500])} '
            f'{rng.randint(0, 99999)} "Mozilla/5.0 (X11; Linux x86_64)" rt={rng.random():.3f}\n'
        ).encode()
    return bytes(out[:size])


def learning_store(pool, **kw) -> ChunkStore:
    dicts = Dictionaries({"hot": pool}, sample_bytes=96 * 1024, dict_size=8192, **kw)
    return ChunkStore({"hot": pool}, dictionaries=dicts)


def test_dictionary_codec_round_trip():
    import zstandard

    samples = [log_lines(4000, s) for s in range(60)]
    zdict = zstandard.train_dictionary(8192, samples)
    raw = log_lines(4000, 999)
    enc = encode_chunk(raw, zdict=zdict)
    assert enc.codec is Codec.ZSTD_DICT
    assert enc.stored_len < encode_chunk(raw).stored_len
    assert decode_chunk(enc.blob, enc.fingerprint, verify_identity=True, zdict=zdict) == raw
    with pytest.raises(ValueError):
        decode_chunk(enc.blob)  # the reader must supply the dictionary the header names


async def test_tier_learns_a_dictionary_and_uses_it(pool, cpu):
    store = learning_store(pool)
    data = log_lines(400_000, 1)
    first = await write_manifest(store, cpu, data)
    codecs = [e.codec for e in first.entries]
    assert Codec.ZSTD in codecs and Codec.ZSTD_DICT in codecs  # switched once trained
    dict_id = int(await pool.read(CURRENT_OID))
    assert await pool.stat(dict_oid(dict_id))
    later = await write_manifest(store, cpu, log_lines(100_000, 2))
    assert {e.codec for e in later.entries} == {Codec.ZSTD_DICT}

    # A fresh process (no cached dictionary) reads everything back and checks it.
    fresh = ChunkStore({"hot": pool})
    assert await read_all(fresh, first, cpu=cpu) == data
    report = await fsck(fresh, [first, later], cpu=cpu)
    assert report.clean and not report.corrupt
    # Dictionaries are not chunks: the collector never touches them.
    await fresh.release(first)
    await fresh.release(later)
    gc = ChunkCollector(fresh, grace_seconds=0)
    await gc.collect()
    await gc.collect()
    assert [fp async for fp in fresh.list_chunks("hot")] == []
    assert await pool.stat(dict_oid(dict_id))


async def test_incompressible_data_trains_nothing(pool, cpu):
    store = learning_store(pool)
    await write_manifest(store, cpu, random.Random(3).randbytes(300_000))
    assert await store.dictionaries.current("hot") is None


async def test_dictionaries_can_be_switched_off(pool, cpu):
    store = ChunkStore({"hot": pool}, dictionaries=Dictionaries({"hot": pool}, learn=False))
    m = await write_manifest(store, cpu, log_lines(300_000, 4))
    assert {e.codec for e in m.entries} == {Codec.ZSTD}
