"""The chunk cache: bounded, scan resistant (S3-FIFO), one load per key at a time."""

from __future__ import annotations

import asyncio

import pytest

from dedupe import ChunkCache

KiB = 1024


def _load(value: bytes, calls: list[int]):
    async def load() -> bytes:
        calls.append(1)
        await asyncio.sleep(0)
        return value

    return load


async def test_hits_after_first_load_and_stays_bounded():
    cache = ChunkCache(100 * KiB)
    calls: list[int] = []
    for i in range(50):
        await cache.get_or_load(i, _load(bytes(10 * KiB), calls))
        assert cache.size <= 100 * KiB
    await cache.get_or_load(49, _load(b"", calls))
    assert len(calls) == 50 and cache.hits == 1


async def test_a_scan_does_not_evict_the_working_set():
    cache = ChunkCache(100 * KiB)
    calls: list[int] = []
    hot = range(5)
    for _ in range(3):  # the working set: read repeatedly, promoted to main
        for k in hot:
            await cache.get_or_load(("hot", k), _load(bytes(10 * KiB), calls))
    for k in range(200):  # a one-pass scan, twice the cache
        await cache.get_or_load(("scan", k), _load(bytes(10 * KiB), calls))
    before = len(calls)
    for k in hot:
        await cache.get_or_load(("hot", k), _load(bytes(10 * KiB), calls))
    assert len(calls) == before  # every hot chunk survived the scan


async def test_concurrent_misses_share_one_load():
    cache = ChunkCache(1024 * KiB)
    calls: list[int] = []
    gate = asyncio.Event()

    async def slow() -> bytes:
        calls.append(1)
        await gate.wait()
        return b"chunk"

    waiters = [asyncio.ensure_future(cache.get_or_load("k", slow)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == [b"chunk"] * 20
    assert len(calls) == 1


async def test_a_failed_load_is_not_cached_and_reaches_every_waiter():
    cache = ChunkCache(1024 * KiB)

    async def bad() -> bytes:
        await asyncio.sleep(0)
        raise ValueError("corrupt")

    results = await asyncio.gather(
        *(cache.get_or_load("k", bad) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    calls: list[int] = []
    assert await cache.get_or_load("k", _load(b"good", calls)) == b"good" and calls


@pytest.mark.parametrize("size", [0, 1])
async def test_values_larger_than_half_the_cache_are_not_kept(size):
    cache = ChunkCache(8 * KiB + size)
    await cache.get_or_load("big", _load(bytes(5 * KiB), []))
    assert cache.size == 0


async def test_a_cancelled_first_caller_does_not_fail_the_others():
    cache = ChunkCache(100 * KiB)
    gate = asyncio.Event()
    calls: list[int] = []

    async def slow() -> bytes:
        calls.append(1)
        await gate.wait()
        return b"v" * KiB

    first = asyncio.ensure_future(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    first.cancel()  # its client hung up
    await asyncio.sleep(0)
    gate.set()
    assert await second == b"v" * KiB
    assert first.cancelled() and calls == [1]
    assert cache.get("k") == b"v" * KiB
