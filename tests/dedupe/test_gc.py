"""Garbage collection: grace period, guarded removal, and add-reference races (both backends)."""

from __future__ import annotations

import asyncio
import random

import pytest

from dedupe import ChunkCollector, decode_chunk, failpoints
from dedupe.chunk_format import encode_chunk
from dedupe.gc import GONE, LIVE, MARKED, RACED, REMOVED, WAITING
from storage import ObjectNotFound


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def unreferenced_chunk(store, i: int = 0):
    enc = encode_chunk(f"chunk number {i} ".encode() * 64)
    await store.put("hot", enc, "old")
    await store.drop_ref("hot", enc.fingerprint, "old")
    return enc


async def assert_intact(store, enc, owners: set[str]) -> None:
    assert set(await store.refs("hot", enc.fingerprint)) == owners
    blob = await store.read_blob("hot", enc.fingerprint)
    assert decode_chunk(blob, enc.fingerprint, verify_identity=True) == decode_chunk(enc.blob)


async def test_removed_only_after_grace(store):
    clock = Clock()
    gc = ChunkCollector(store, grace_seconds=60, clock=clock)
    enc = await unreferenced_chunk(store)
    assert await gc.examine("hot", enc.fingerprint) == MARKED
    clock.now += 59
    assert await gc.examine("hot", enc.fingerprint) == WAITING
    clock.now += 2
    assert await gc.examine("hot", enc.fingerprint) == REMOVED
    assert await gc.examine("hot", enc.fingerprint) == GONE


async def test_referenced_chunks_are_never_collected(store, cpu):
    gc = ChunkCollector(store, grace_seconds=0)
    enc = encode_chunk(b"kept" * 100)
    await store.put("hot", enc, "owner")
    for _ in range(3):
        assert (await gc.collect())[LIVE] == 1
    await assert_intact(store, enc, {"owner"})


async def test_reference_added_and_dropped_after_mark_restarts_grace(store):
    clock = Clock()
    gc = ChunkCollector(store, grace_seconds=60, clock=clock)
    enc = await unreferenced_chunk(store)
    assert await gc.examine("hot", enc.fingerprint) == MARKED
    await store.put("hot", enc, "brief")
    await store.drop_ref("hot", enc.fingerprint, "brief")
    clock.now += 3600
    # The old mark names an old gen: it is renewed, not trusted.
    assert await gc.examine("hot", enc.fingerprint) == MARKED
    assert await gc.examine("hot", enc.fingerprint) == WAITING


async def test_collect_pass_reports(store):
    gc = ChunkCollector(store, grace_seconds=0)
    for i in range(3):
        await unreferenced_chunk(store, i)
    await store.put("hot", encode_chunk(b"live" * 50), "x")
    first = await gc.collect()
    assert (first[MARKED], first[LIVE]) == (3, 1)
    second = await gc.collect()
    assert (second[REMOVED], second[LIVE]) == (2 + 1, 1)
    assert [fp async for fp in store.list_chunks("hot")] == [encode_chunk(b"live" * 50).fingerprint]


async def test_writer_reference_between_exists_and_add_races_removal(store):
    """Deterministic: the chunk is collected after the writer saw it exist."""
    gc = ChunkCollector(store, grace_seconds=0)
    enc = await unreferenced_chunk(store)
    assert await gc.examine("hot", enc.fingerprint) == MARKED

    async def collect_now() -> None:
        assert await gc.examine("hot", enc.fingerprint) == REMOVED

    with failpoints.armed("store.exists", "hook", hook=collect_now, times=1):
        created = await store.put("hot", enc, "new")
    assert created is True  # its add found no object, so it wrote the chunk again
    await assert_intact(store, enc, {"new"})


async def test_removal_fails_when_a_reference_lands_first(store):
    """Deterministic: the reference is added after the collector decided to remove."""
    gc = ChunkCollector(store, grace_seconds=0)
    enc = await unreferenced_chunk(store)
    assert await gc.examine("hot", enc.fingerprint) == MARKED

    async def reference_now() -> None:
        assert await store.put("hot", enc, "new", ref_first=True) is False

    with failpoints.armed("gc.before_remove", "hook", hook=reference_now, times=1):
        assert await gc.examine("hot", enc.fingerprint) == RACED
    await assert_intact(store, enc, {"new"})


async def test_mark_fails_when_a_reference_lands_first(store):
    gc = ChunkCollector(store, grace_seconds=0)
    enc = await unreferenced_chunk(store)

    async def reference_and_drop() -> None:
        await store.put("hot", enc, "brief", ref_first=True)
        await store.drop_ref("hot", enc.fingerprint, "brief")

    with failpoints.armed("gc.before_mark", "hook", hook=reference_and_drop, times=1):
        assert await gc.examine("hot", enc.fingerprint) == RACED
    # Not marked, so not removable yet, although it has no reference again.
    assert await gc.examine("hot", enc.fingerprint) == MARKED


async def _jitter(rng: random.Random) -> None:
    for _ in range(rng.randint(0, 6)):
        await asyncio.sleep(0)


@pytest.mark.parametrize("rounds", [60])
async def test_add_reference_races_collector_many_times(store, rounds):
    """Free-running race: whatever the interleaving, a referenced chunk survives whole."""
    rng = random.Random(1234)
    gc = ChunkCollector(store, grace_seconds=0)
    outcomes: dict[str, int] = {}
    recreated = 0
    for i in range(rounds):
        enc = await unreferenced_chunk(store, i)
        assert await gc.examine("hot", enc.fingerprint) == MARKED

        async def writer(enc=enc) -> bool:
            await _jitter(rng)
            return await store.put("hot", enc, "new", ref_first=rng.random() < 0.5)

        async def collector(enc=enc) -> str:
            await _jitter(rng)
            return await gc.examine("hot", enc.fingerprint)

        created, outcome = await asyncio.gather(writer(), collector())
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        recreated += created
        await assert_intact(store, enc, {"new"})
        # And the survivor is collectable again once its reference goes.
        await store.drop_ref("hot", enc.fingerprint, "new")
        assert await gc.examine("hot", enc.fingerprint) == MARKED
        assert await gc.examine("hot", enc.fingerprint) == REMOVED
        with pytest.raises(ObjectNotFound):
            await store.pool("hot").stat(f"c.{enc.fingerprint.hex()}")
    assert sum(outcomes.values()) == rounds
    assert outcomes.get(REMOVED, 0) == recreated  # every removal was followed by a rewrite
