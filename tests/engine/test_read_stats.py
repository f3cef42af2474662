"""Clients' reads counted per object version (engine.read_log) and what the tiering
service makes of them, on both backends, with a manual clock and explicit flushes:
last read and counts after a flush, a promotion back to hot after N reads, a
transition by days since the last read, overwrites and deletes, two gateways
flushing the same object, and a clean stop that loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator

import pytest

from engine import (
    ENABLED,
    Engine,
    EngineSettings,
    ManualClock,
    Operation,
    PutRequest,
    ReadTracking,
)
from tests.contract.conftest import make_backend
from tests.engine.conftest import OWNER, SERVICE
from tiering.policy_file import parse_policy
from tiering.service import TieringService

DAY = 86400.0
KiB = 1024
POOLS = ("meta", "data", "chunks", "chunks.warm")

POLICY = """\
tiers:
  hot: {}
  warm: {zstd_level: 9}
rules:
  - name: promoted
    match: {prefix: "p/"}
    transitions: [{days: 30, to: warm}]
    promote: {reads: 3, within: 2d}
  - name: idle
    match: {prefix: "i/"}
    transitions: [{days_since_read: 10, to: warm}]
"""


@contextlib.asynccontextmanager
async def namespace(backend_kind: str, tmp_path) -> AsyncIterator[str]:
    """A fresh pool prefix on the backend, its pools removed after."""
    prefix = "t" + uuid.uuid4().hex[:10]
    try:
        yield prefix
    finally:
        backend = make_backend(backend_kind, tmp_path)
        await backend.connect()
        for pool in POOLS:
            with contextlib.suppress(Exception):
                await backend.delete_pool(f"{prefix}.{pool}")
        await backend.close()


@contextlib.asynccontextmanager
async def process(
    backend_kind: str, tmp_path, clock: ManualClock, prefix: str, serving: bool = False,
    **tracking,
) -> AsyncIterator[Engine]:
    """One engine on the namespace: an admin command's (connected), or a gateway's
    (``serving``: started and, at the end, stopped cleanly)."""
    eng = Engine.over(
        make_backend(backend_kind, tmp_path), EngineSettings(pool_prefix=prefix),
        clock=clock, reads=ReadTracking(**tracking),
    )
    await (eng.start() if serving else eng.connect())
    try:
        yield eng
    finally:
        await (eng.stop() if serving else eng.close())


@contextlib.asynccontextmanager
async def engines(
    backend_kind: str, tmp_path, clock: ManualClock, count: int = 1, **tracking
) -> AsyncIterator[list[Engine]]:
    """``count`` engines (processes) on one fresh namespace of the backend."""
    async with contextlib.AsyncExitStack() as stack:
        prefix = await stack.enter_async_context(namespace(backend_kind, tmp_path))
        yield [
            await stack.enter_async_context(
                process(backend_kind, tmp_path, clock, prefix, **tracking)
            )
            for _ in range(count)
        ]


async def _body(data: bytes):
    yield data


async def _put(engine: Engine, bucket: str, key: str, size: int = 4 * KiB):
    handle = await engine.bucket(OWNER, bucket, Operation.PUT_OBJECT)
    return await handle.put(key, PutRequest(body=_body(random.randbytes(size)), size=size))


async def _get(engine: Engine, bucket: str, key: str, times: int = 1, principal=OWNER) -> None:
    """GetObject as the S3 front end does it: head, then read the entry it returned."""
    for _ in range(times):
        handle = await engine.bucket(principal, bucket, Operation.GET_OBJECT, key=key)
        entry = await handle.head(key)
        async for _ in handle.read(entry).body():
            pass


async def _reads(engine: Engine, bucket: str):
    return (await engine.bucket(SERVICE, bucket, Operation.LIST_OBJECT_VERSIONS)).reads()


def _service(engine: Engine) -> TieringService:
    return TieringService(engine, SERVICE, parse_policy(POLICY, "tiering.yaml"), {"hot", "warm"})


async def _placement(engine: Engine, bucket: str, key: str) -> dict[str, int]:
    return await (await engine.bucket(OWNER, bucket, Operation.GET_OBJECT)).placement(key)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_gets_give_last_read_and_counts_after_a_flush(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock) as (engine,):
        await engine.create_bucket(OWNER, "bkt", "us-east-1")
        await _put(engine, "bkt", "k")
        reads = await _reads(engine, "bkt")
        await _get(engine, "bkt", "k", times=3)
        assert await reads.of("k") is None  # nothing is written before the flush
        await reads.flush()
        clock.advance(60)
        await _get(engine, "bkt", "k")
        last = clock.time()
        # Neither a HEAD (which opens a reader to size its answer) nor a service's read
        # (a backup, the mover) counts.
        head = await engine.bucket(OWNER, "bkt", Operation.HEAD_OBJECT, key="k")
        head.read(await head.head("k"))
        await _get(engine, "bkt", "k", principal=SERVICE)
        await reads.flush()
        stats = await reads.of("k")
        assert (stats.reads, stats.last_read) == (4, last)
        assert stats.reads_within(DAY, clock.time()) == 4
        await _get(engine, "bkt", "k", times=2)
        await reads.flush()
        assert (await reads.of("k")).reads == 6  # merged with what was stored
        explained = await _service(engine).explain("bkt", "k")
        assert explained["last_read"] == clock.time()


async def test_a_part_read_counts(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock) as (engine,):
        await engine.create_bucket(OWNER, "bkt", "us-east-1")
        await _put(engine, "bkt", "k")
        handle = await engine.bucket(OWNER, "bkt", Operation.GET_OBJECT, key="k")
        await handle.open_part("k", 1)
        reads = await _reads(engine, "bkt")
        await reads.flush()
        assert (await reads.of("k")).reads == 1


async def test_reads_promote_a_warm_object_back_to_hot(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock) as (engine,):
        await engine.create_bucket(OWNER, "bkt", "us-east-1")
        await _put(engine, "bkt", "p/x", 128 * KiB)
        clock.advance(31 * DAY)
        assert (await _service(engine).apply(["bkt"])).moved_objects == 1
        assert await _placement(engine, "bkt", "p/x") == {"warm": 128 * KiB}
        await _get(engine, "bkt", "p/x", times=2)
        await (await _reads(engine, "bkt")).flush()
        assert (await _service(engine).plan(["bkt"])).moves == {}  # 2 reads: not enough
        await _get(engine, "bkt", "p/x")
        await (await _reads(engine, "bkt")).flush()
        report = await _service(engine).apply(["bkt"])
        assert (report.moved_objects, report.failed) == (1, [])
        assert await _placement(engine, "bkt", "p/x") == {"hot": 128 * KiB}
        # Past the window the reads no longer hold it: the write's age moves it again.
        clock.advance(3 * DAY)
        plan = (await _service(engine).plan(["bkt"])).as_dict()
        assert plan["moves"] == {"promoted: hot -> warm": {"objects": 1, "bytes": 128 * KiB}}


async def test_days_since_read_count_from_the_last_read(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock) as (engine,):
        await engine.create_bucket(OWNER, "bkt", "us-east-1")
        await _put(engine, "bkt", "i/read")
        await _put(engine, "bkt", "i/unread")
        clock.advance(8 * DAY)
        await _get(engine, "bkt", "i/read")
        await (await _reads(engine, "bkt")).flush()
        clock.advance(5 * DAY)  # 13 days since written, 5 since read
        plan = (await _service(engine).plan(["bkt"])).as_dict()
        assert plan["moves"] == {"idle: hot -> warm": {"objects": 1, "bytes": 4 * KiB}}
        explained = await _service(engine).explain("bkt", "i/read")
        assert (explained["belongs_on"], explained["next"]["tier"]) == ("hot", "warm")
        assert explained["next"]["at"] == pytest.approx(clock.time() + 5 * DAY)
        clock.advance(6 * DAY)
        assert (await _service(engine).apply(["bkt"])).moved_objects == 2


async def test_an_overwrite_starts_its_counts_afresh(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock) as (engine,):
        await engine.create_bucket(OWNER, "bkt", "us-east-1")
        await _put(engine, "bkt", "k")
        await _get(engine, "bkt", "k", times=3)
        reads = await _reads(engine, "bkt")
        await reads.flush()
        clock.advance(10)
        await _put(engine, "bkt", "k")
        explained = await _service(engine).explain("bkt", "k")
        assert explained["last_read"] is None  # the stored stats are of the object replaced
        await _get(engine, "bkt", "k")
        await reads.flush()
        assert (await reads.of("k")).reads == 1


async def test_a_delete_takes_the_stats_along(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock) as (engine,):
        await engine.create_bucket(OWNER, "bkt", "us-east-1")
        handle = await engine.bucket(OWNER, "bkt", Operation.PUT_OBJECT)
        await handle.set_versioning(ENABLED)
        first = await _put(engine, "bkt", "k")
        await _get(engine, "bkt", "k", times=2)
        reads = await _reads(engine, "bkt")
        await reads.flush()
        await handle.delete("k")  # a delete marker: the version and its stats stay
        await reads.flush()
        assert (await reads.of("k", first.version_id)).reads == 2
        await handle.delete("k", version_id=first.version_id)
        await reads.flush()
        assert await reads.of("k", first.version_id) is None


async def test_the_walk_drops_stats_of_versions_deleted_elsewhere(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock, count=2) as (gateway, admin):
        await gateway.create_bucket(OWNER, "bkt", "us-east-1")
        for key in ("i/a", "i/b", "i/c", "p/d"):
            await _put(gateway, "bkt", key)
            await _get(gateway, "bkt", key)
        reads = await _reads(gateway, "bkt")
        await reads.flush()
        # Deleted by a process that never flushes (an admin command): the stats stay...
        for key in ("i/a", "p/d"):
            await (await admin.bucket(OWNER, "bkt", Operation.DELETE_OBJECT)).delete(key)
        assert await reads.of("i/a") is not None
        await _service(gateway).plan(["bkt"])  # ...a plan only reads...
        assert await reads.of("p/d") is not None
        await _service(gateway).apply(["bkt"])  # ...and the mover's walk drops them
        assert [await reads.of(k) is None for k in ("i/a", "i/b", "i/c", "p/d")] == [
            True, False, False, True
        ]


async def test_two_gateways_flushing_one_object_add_up(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock, count=3) as (one, two, three):
        await one.create_bucket(OWNER, "bkt", "us-east-1")
        await _put(one, "bkt", "k")
        await _get(one, "bkt", "k", times=2)
        await _get(two, "bkt", "k", times=3)
        await _get(three, "bkt", "k", times=4)
        await asyncio.gather(*[(await _reads(e, "bkt")).flush() for e in (one, two, three)])
        assert (await (await _reads(one, "bkt")).of("k")).reads == 9


async def test_a_clean_stop_flushes_and_a_deleted_bucket_takes_its_stats(
    backend_kind, tmp_path, clock
):
    async with namespace(backend_kind, tmp_path) as prefix:
        gateway = process(backend_kind, tmp_path, clock, prefix, serving=True)
        async with gateway as engine:  # flushes only when it stops, in this test
            await engine.create_bucket(OWNER, "bkt", "us-east-1")
            await _put(engine, "bkt", "k")
            await _get(engine, "bkt", "k", times=2)
        async with process(backend_kind, tmp_path, clock, prefix) as admin:
            reads = await _reads(admin, "bkt")
            assert (await reads.of("k")).reads == 2
            await (await admin.bucket(OWNER, "bkt", Operation.DELETE_OBJECT)).delete("k")
            await reads.flush()
            bucket = await admin.bucket(OWNER, "bkt", Operation.DELETE_BUCKET, fresh=True)
            await bucket.delete_bucket()
            assert await reads.of("k") is None


async def test_sampled_reads_are_scaled_back_up(backend_kind, tmp_path, clock):
    random.seed(12)
    async with engines(backend_kind, tmp_path, clock, sample_rate=0.25) as (engine,):
        await engine.create_bucket(OWNER, "bkt", "us-east-1")
        await _put(engine, "bkt", "k")
        await _get(engine, "bkt", "k", times=400)
        reads = await _reads(engine, "bkt")
        await reads.flush()
        assert 300 <= (await reads.of("k")).reads <= 500


async def test_pending_versions_are_bounded(backend_kind, tmp_path, clock):
    async with engines(backend_kind, tmp_path, clock, max_pending=2) as (engine,):
        await engine.create_bucket(OWNER, "bkt", "us-east-1")
        for key in "abc":
            await _put(engine, "bkt", key)
            await _get(engine, "bkt", key)
        await _get(engine, "bkt", "a")  # a version already pending still counts
        reads = await _reads(engine, "bkt")
        await reads.flush()
        stored = [await reads.of(key) for key in "abc"]
        assert [s.reads if s else None for s in stored] == [2, 1, None]
