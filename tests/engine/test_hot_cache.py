"""The hot cache stays coherent across gateway processes, on both backends.

Each test runs two serving engines (two gateways: separate backend
connections, separate caches) over one namespace, and often a third engine
connected the way an admin command is. A read served from a gateway's cache
must never return what another process has since replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from engine import ENABLED, Engine, ManualClock, NoSuchKey, Operation, PutRequest
from engine.hot_cache import key_tag
from tests.engine.conftest import OWNER, SERVICE, engine_over


async def _body(data: bytes):
    yield data


@contextlib.asynccontextmanager
async def _gateways(backend_kind, tmp_path, clock, count=2, admin=False):
    prefix = "t" + uuid.uuid4().hex[:10]
    async with contextlib.AsyncExitStack() as stack:
        engines = [
            await stack.enter_async_context(
                engine_over(backend_kind, tmp_path, clock, serving=True, pool_prefix=prefix)
            )
            for _ in range(count)
        ]
        if admin:
            engines.append(
                await stack.enter_async_context(
                    engine_over(backend_kind, tmp_path, clock, pool_prefix=prefix)
                )
            )
        yield engines


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def _put(engine: Engine, bucket: str, key: str, data: bytes) -> None:
    b = await engine.bucket(OWNER, bucket, Operation.PUT_OBJECT)
    await b.put(key, PutRequest(_body(data), len(data)))


async def _get(engine: Engine, bucket: str, key: str) -> bytes:
    b = await engine.bucket(OWNER, bucket, Operation.GET_OBJECT)
    entry = await b.head(key)
    return b"".join([part async for part in b.read(entry).body()])


def _cache(engine: Engine):
    return engine._services.hot_cache


async def test_a_cached_read_sees_every_write_of_another_gateway(backend_kind, tmp_path, clock):
    async with _gateways(backend_kind, tmp_path, clock) as (a, b):
        await a.create_bucket(OWNER, "hot", "us-east-1")
        await _put(a, "hot", "k", b"one")
        assert await _get(b, "hot", "k") == b"one"
        hits = _cache(b).hits
        assert await _get(b, "hot", "k") == b"one"
        assert _cache(b).hits == hits + 1, "the second read should come from the cache"
        for n in range(20):  # each overwrite is seen by the very next read
            await _put(a, "hot", "k", f"v{n}".encode())
            assert await _get(b, "hot", "k") == f"v{n}".encode()
            assert await _get(b, "hot", "k") == f"v{n}".encode()
        b_bucket = await a.bucket(OWNER, "hot", Operation.DELETE_OBJECT)
        await b_bucket.delete("k")
        with pytest.raises(NoSuchKey):
            await _get(b, "hot", "k")


async def test_versioned_writes_and_tags_invalidate(backend_kind, tmp_path, clock):
    async with _gateways(backend_kind, tmp_path, clock) as (a, b):
        await a.create_bucket(OWNER, "ver", "us-east-1")
        await (await a.bucket(OWNER, "ver", Operation.PUT_BUCKET_VERSIONING)).set_versioning(
            ENABLED
        )
        await _put(a, "ver", "k", b"first")
        assert await _get(b, "ver", "k") == b"first"
        await _put(a, "ver", "k", b"second")
        assert await _get(b, "ver", "k") == b"second"
        tagger = await a.bucket(OWNER, "ver", Operation.PUT_OBJECT_TAGGING)
        await tagger.update("k", lambda e: type(e)(**{**_fields(e), "tags": {"t": "1"}}))
        reader = await b.bucket(OWNER, "ver", Operation.GET_OBJECT)
        assert (await reader.head("k")).tags == {"t": "1"}
        await (await a.bucket(OWNER, "ver", Operation.DELETE_OBJECT)).delete("k")
        with pytest.raises(NoSuchKey):  # a delete marker is current now
            await _get(b, "ver", "k")


def _fields(entry) -> dict:
    return {name: getattr(entry, name) for name in entry.__slots__}


async def test_admin_commands_invalidate_serving_gateways(backend_kind, tmp_path, clock):
    """A CLI process caches nothing but publishes what it changes: a restore, a clone."""
    async with _gateways(backend_kind, tmp_path, clock, count=1, admin=True) as (gw, cli):
        await gw.create_bucket(OWNER, "src", "us-east-1")
        await (await gw.bucket(OWNER, "src", Operation.PUT_BUCKET_VERSIONING)).set_versioning(
            ENABLED
        )
        await _put(gw, "src", "k", b"old")
        clock.advance(60)
        before = clock.time()
        clock.advance(60)
        await _put(gw, "src", "k", b"new")
        assert await _get(gw, "src", "k") == b"new"
        assert await _get(gw, "src", "k") == b"new"  # cached now
        report = await cli.restore(SERVICE, "src", before)
        assert report.overwritten == 1
        assert await _get(gw, "src", "k") == b"old"
        assert _cache(cli).max_bytes == 0, "an admin process must not cache"


async def test_a_read_racing_a_write_leaves_nothing_stale(backend_kind, tmp_path, clock):
    """The ticket protocol: what a read got before a write was published is not kept."""
    async with _gateways(backend_kind, tmp_path, clock) as (a, b):
        await a.create_bucket(OWNER, "race", "us-east-1")
        await _put(a, "race", "k", b"before")
        record = await b._services.buckets.get("race")
        cache = _cache(b)
        missed, ticket = cache.lookup(record.bucket_id, "k")
        assert missed is None and ticket is not None
        stale = await b._services.index.get(record.bucket_id, "k")  # (this read caches)
        await _put(a, "race", "k", b"after")
        cache.keep(record.bucket_id, "k", stale, ticket)  # a slow reader arriving late
        assert await _get(b, "race", "k") == b"after"


async def test_reads_racing_writes_never_outlive_the_acknowledgement(
    backend_kind, tmp_path, clock
):
    """Readers in both gateways fill their caches while writes go through either one;
    once a write is acknowledged, every gateway returns exactly it."""
    async with _gateways(backend_kind, tmp_path, clock) as (a, b):
        await a.create_bucket(OWNER, "many", "us-east-1")
        await _put(a, "many", "k", b"0")
        done = asyncio.Event()

        async def hammer(engine):
            while not done.is_set():
                await _get(engine, "many", "k")
                await asyncio.sleep(0.001)  # a cache hit never suspends: let the writer run

        readers = [asyncio.create_task(hammer(e)) for e in (a, b, a, b)]
        try:
            for n in range(1, 41):
                await _put(a if n % 2 else b, "many", "k", str(n).encode())
                assert [await _get(e, "many", "k") for e in (a, b)] == [str(n).encode()] * 2
        finally:
            done.set()
            await asyncio.gather(*readers)
        assert _cache(a).hits + _cache(b).hits > 0


def test_tags_spread_keys_over_slots():
    tags = {key_tag("b", f"k{n}") & 0xFFFF for n in range(1000)}
    assert len(tags) > 950
