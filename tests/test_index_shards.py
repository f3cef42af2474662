"""Range-partitioned bucket index shards, at engine level, on both backends.

Each test builds real engines (``storage.factory.open_backend`` +
``ObjectEngine``) with a tiny split threshold so that a few thousand keys
make dozens of splits. Two engines over one backend stand for two gateways:
they share nothing but the backend, exactly like two gateway processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import layout
from engine.assembly import EngineSettings, ObjectEngine
from engine.errors import BucketNotEmpty, NoSuchBucket
from engine.index_shards import ShardView
from engine.object_io import PutRequest
from engine.records import ObjectEntry
from storage.factory import open_backend
from tests.conftest import ceph_conf

THRESHOLD = 50
LEASE_S = 0.3


# --- fixtures ------------------------------------------------------------------------
class Gateways:
    """Engines over one backend namespace (each with its own connection), cleaned up at the end."""

    def __init__(self, kind: str, tmp_path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.prefix = "t" + uuid.uuid4().hex[:10]
        self.backends: list = []
        self.engines: list[ObjectEngine] = []

    async def engine(self, **overrides) -> ObjectEngine:
        if self.kind == "local":
            backend = open_backend("local", data_dir=self.tmp_path / "data")
        else:
            backend = open_backend("rados", ceph_conf=ceph_conf())
        await backend.connect()
        self.backends.append(backend)
        options = {
            "pool_prefix": self.prefix,
            "index_split_threshold": THRESHOLD,
            "index_split_lease_s": LEASE_S,
            **overrides,
        }
        engine = ObjectEngine(backend, EngineSettings(**options))
        await engine.prepare()
        self.engines.append(engine)
        return engine

    async def close(self) -> None:
        for engine in self.engines:
            engine.index.splitter.failpoint = None
            await engine.index.drain()
        for backend in self.backends:
            with contextlib.suppress(Exception):
                await backend.close()
        if self.kind == "rados" and self.backends:
            backend = open_backend("rados", ceph_conf=ceph_conf())
            await backend.connect()
            for pool in (layout.META_POOL, layout.DATA_POOL):
                with contextlib.suppress(Exception):
                    await backend.delete_pool(layout.pool_name(self.prefix, pool))
            await backend.close()


@pytest.fixture
async def gateways(backend_kind, tmp_path):
    gw = Gateways(backend_kind, tmp_path)
    yield gw
    await gw.close()


def entry(n: int = 0) -> ObjectEntry:
    return ObjectEntry(size=n, etag=f'"{n:032x}"', mtime=0.0)


async def new_bucket(engine: ObjectEngine) -> tuple[str, str]:
    """A fresh bucket: (name, bucket id)."""
    record = await engine.buckets.create("b-" + uuid.uuid4().hex[:12], "owner")
    return record.name, record.bucket_id


async def put_body(engine: ObjectEngine, bucket: str, key: str, body: bytes) -> None:
    async def chunks():
        yield body

    await engine.objects.put(bucket, key, PutRequest(chunks(), len(body)))


async def list_all(engine: ObjectEngine, bucket: str, page: int = 1000, **query) -> list[str]:
    keys: list[str] = []
    after = query.pop("start_after", "")
    while True:
        got = await engine.objects.list(bucket, start_after=after, max_keys=page, **query)
        keys += [k for k, _ in got.entries] + got.common_prefixes
        if not got.is_truncated:
            return keys
        after = got.next_marker


async def check_layout(engine: ObjectEngine, bid: str) -> list[ShardView]:
    """The chain covers the key space once, no split is underway, no leftovers remain."""
    shards = await engine.index.shards(bid)
    assert shards[0].after == ""
    for left, right in itertools.pairwise(shards):
        assert left.upto == right.after and left.next == right.shard
    assert shards[-1].upto is None and shards[-1].next is None
    for view in shards:
        assert view.split is None and not view.pending
        for space in (layout.OBJECT_PREFIX, layout.SAMPLE_PREFIX):
            if view.upto is not None:
                beyond = await engine.meta.omap_list(
                    layout.index_shard_object(bid, view.shard), space + view.upto, space, 1
                )
                assert beyond == [], f"leftovers above {view.upto!r} in {view.shard}"
    table = await engine.index.router.load_map(bid)
    assert [v.after for v in shards] == table.afters
    return shards


def model_page(keys, prefix="", delimiter="", start_after="", max_keys=1000):
    """ListObjects over a sorted list: what a page must contain."""
    results: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key in sorted(keys):
        if not key.startswith(prefix) or key <= start_after:
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = key[: cut + len(delimiter)]
            if start_after.startswith(common) or common in seen:
                continue
            seen.add(common)
            results.append(("p", common))
        else:
            results.append(("k", key))
    page = results[:max_keys]
    return (
        [k for kind, k in page if kind == "k"],
        [k for kind, k in page if kind == "p"],
        len(results) > max_keys,
        page[-1][1] if page else None,
    )


async def assert_page(engine, bucket, keys, **query):
    got = await engine.objects.list(bucket, **query)
    want = model_page(keys, **query)
    assert (
        [k for k, _ in got.entries],
        got.common_prefixes,
        got.is_truncated,
        got.next_marker,
    ) == (want), query


def tree_keys(n: int, seed: int = 7) -> list[str]:
    """Keys with some structure for delimiters: a/0003/x..., flat ones, deep ones."""
    rnd = random.Random(seed)
    keys = set()
    while len(keys) < n:
        shape = rnd.random()
        if shape < 0.5:
            keys.add(f"{rnd.choice('abc')}/{rnd.randrange(40):04d}/x{rnd.randrange(10**6):06d}")
        elif shape < 0.8:
            keys.add(f"{rnd.choice('abcd')}{rnd.randrange(10**5):05d}")
        else:
            keys.add(f"d/{rnd.randrange(5)}/{rnd.randrange(5)}/{rnd.randrange(10**4):04d}")
    return sorted(keys)


async def load(engine: ObjectEngine, bid: str, keys: list[str], concurrency: int = 16):
    queue = list(keys)
    random.Random(1).shuffle(queue)

    async def worker():
        while queue:
            key = queue.pop()
            await engine.index.put(bid, key, entry(len(key)))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await engine.index.drain()


# --- splits and listing ---------------------------------------------------------------
async def test_thousands_of_keys_split_into_ordered_shards(gateways):
    engine = await gateways.engine()
    bucket, bid = await new_bucket(engine)
    keys = [f"k{i:05d}" for i in range(2500)]
    await load(engine, bid, keys)
    shards = await check_layout(engine, bid)
    assert len(shards) >= 2500 // THRESHOLD // 2
    for page in (1, 7, 1000):
        assert await list_all(engine, bucket, page=page) == keys
    for key in random.Random(3).sample(keys, 100):
        assert (await engine.index.get(bid, key)).size == len(key)
    assert await engine.index.get(bid, "k99999") is None


async def test_listing_across_shard_boundaries_matches_the_model(gateways):
    engine = await gateways.engine()
    bucket, bid = await new_bucket(engine)
    keys = tree_keys(1500)
    await load(engine, bid, keys)
    shards = await check_layout(engine, bid)
    assert len(shards) > 10
    assert await list_all(engine, bucket) == keys
    flat, rolled, _, _ = model_page(keys, delimiter="/", max_keys=10**6)
    assert sorted(await list_all(engine, bucket, delimiter="/")) == sorted(flat + rolled)
    assert sorted(await list_all(engine, bucket, page=3, delimiter="/")) == sorted(flat + rolled)
    # Start, prefix and page edges exactly at, just before and just after shard bounds.
    bounds = [v.upto for v in shards if v.upto is not None]
    for bound in bounds[::3]:
        for start in (bound, bound[:-1], bound + "0"):
            await assert_page(engine, bucket, keys, start_after=start, max_keys=5)
            await assert_page(engine, bucket, keys, start_after=start, max_keys=70)
            await assert_page(engine, bucket, keys, start_after=start, delimiter="/", max_keys=9)
        for cut in (1, 2, 3, 6):
            prefix = bound[:cut]
            await assert_page(engine, bucket, keys, prefix=prefix, max_keys=1000)
            await assert_page(engine, bucket, keys, prefix=prefix, delimiter="/")
            await assert_page(engine, bucket, keys, prefix=prefix, start_after=bound, max_keys=40)
    await assert_page(engine, bucket, keys, max_keys=0)
    await assert_page(engine, bucket, keys, prefix="d/", delimiter="/")
    await assert_page(engine, bucket, keys, prefix="a/", delimiter="/", start_after="a/0007/x")


async def test_listing_property_against_a_sorted_model(gateways):
    engine = await gateways.engine()
    bucket, bid = await new_bucket(engine)
    keys = tree_keys(800, seed=11)
    await load(engine, bid, keys)
    await check_layout(engine, bid)
    alphabet = st.sampled_from(["", "a", "a/", "a/00", "b", "c0", "d/", "d/1/", "x", "b/0039/"])
    loop = asyncio.get_running_loop()
    problems: list = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        prefix=alphabet,
        start=st.one_of(alphabet, st.sampled_from(keys)),
        delimiter=st.sampled_from(["", "/", "0"]),
        max_keys=st.integers(0, 120),
    )
    def query(prefix, start, delimiter, max_keys):
        # Hypothesis drives a synchronous function: run the engine call in our loop's thread.
        fut = asyncio.run_coroutine_threadsafe(
            engine.objects.list(bucket, prefix, delimiter, start, max_keys), loop
        )
        got = fut.result(timeout=60)
        want = model_page(keys, prefix, delimiter, start, max_keys)
        have = ([k for k, _ in got.entries], got.common_prefixes, got.is_truncated, got.next_marker)
        if have != want:
            problems.append((prefix, start, delimiter, max_keys))
        assert have == want

    await asyncio.to_thread(query)
    assert problems == []


# --- concurrency and gateways ---------------------------------------------------------------
async def test_concurrent_writers_during_splits_lose_nothing(gateways):
    one, two = await gateways.engine(), await gateways.engine()
    bucket, bid = await new_bucket(one)
    model: dict[str, bytes] = {}
    rnd = random.Random(5)
    plan = [(f"w{rnd.randrange(1500):05d}", f"{i}".encode()) for i in range(1800)]

    async def writer(engine, part):
        for key, body in part:
            await put_body(engine, bucket, key, body)

    # Each key is written by one writer only (so "last writer wins" has one answer).
    by_key: dict[str, list[tuple[str, bytes]]] = {}
    for key, body in plan:
        by_key.setdefault(key, []).append((key, body))
        model[key] = body
    groups = list(by_key.values())
    parts = [[kv for g in groups[i::12] for kv in g] for i in range(12)]
    await asyncio.gather(*(writer(one if i % 2 else two, p) for i, p in enumerate(parts)))
    await one.index.drain()
    await two.index.drain()
    assert len(await check_layout(one, bid)) > 5
    for engine in (one, two):
        assert await list_all(engine, bucket) == sorted(model)
    for key, body in model.items():
        reader = await two.objects.open(bucket, key, None)
        assert b"".join([c async for c in reader.body()]) == body


async def test_two_gateways_read_and_list_their_writes_during_splits(gateways):
    a, b = await gateways.engine(), await gateways.engine()
    bucket, bid = await new_bucket(a)
    written: list[str] = []
    for i in range(600):
        key = f"g{(i * 7919) % 1000:04d}"
        writer, reader = (a, b) if i % 3 else (b, a)
        await put_body(writer, bucket, key, key.encode())
        written.append(key)
        assert (await reader.objects.head(bucket, key)).size == len(key)  # read-after-write
        if i % 25 == 0:
            assert await list_all(reader, bucket) == sorted(set(written))  # list-after-write
            page = await reader.objects.list(bucket, prefix=key[:3], delimiter="/")
            assert key in [k for k, _ in page.entries]
        if i % 50 == 0:
            gone = written[i // 2]
            await reader.objects.delete(bucket, gone)
            written = [k for k in written if k != gone]
            assert await writer.index.get(bid, gone) is None  # delete-after-write
    for engine in (a, b):
        await engine.index.drain()
        assert await list_all(engine, bucket) == sorted(set(written))
    assert len(await check_layout(a, bid)) > 5


async def test_a_stale_route_is_corrected_by_the_shard_header(gateways):
    a, b = await gateways.engine(), await gateways.engine()
    bucket, bid = await new_bucket(a)
    await a.index.put(bid, "m", entry())
    assert await a.index.get(bid, "m") is not None  # a caches the root's whole range
    await b.index.put_many(bid, [(f"k{i:04d}", entry(i)) for i in range(400)])
    shards = await check_layout(b, bid)
    assert len(shards) > 3
    # a still believes the root covers everything: its write must still land where b looks.
    await a.index.put(bid, "k0399", entry(7))
    await a.index.put(bid, "zz", entry(8))
    assert (await b.index.get(bid, "k0399")).size == 7
    assert (await b.index.get(bid, "zz")).size == 8
    last = (await b.index.shards(bid))[-1]
    held = await b.meta.omap_get(layout.index_shard_object(bid, last.shard), ["ozz"])
    assert "ozz" in held
    assert await list_all(a, bucket) == sorted([f"k{i:04d}" for i in range(400)] + ["m", "zz"])


async def test_put_if_is_atomic_across_splits(gateways):
    one, two = await gateways.engine(), await gateways.engine()
    _, bid = await new_bucket(one)
    counters = ["c100", "c250", "c400"]

    class Moved(Exception):
        pass

    async def increment(engine, key):
        """Compare-and-swap +1: a lost update would leave the counter short."""
        while True:
            current = await engine.index.get(bid, key)
            seen = current.size if current else 0

            def check(now, seen=seen):
                if (now.size if now else 0) != seen:
                    raise Moved

            try:
                await engine.index.put_if(bid, key, entry(seen + 1), check)
                return
            except Moved:
                continue

    async def filler(engine, start):
        for i in range(start, 500, 2):
            await engine.index.put(bid, f"c{i:03d}x", entry())

    async def rounds():
        for n in range(60):  # two gateways increment at once, while fillers split the shards
            await asyncio.gather(
                increment(one, counters[n % 3]), increment(two, counters[(n + 1) % 3])
            )

    await asyncio.gather(filler(one, 0), filler(two, 1), rounds())
    for engine in (one, two):
        await engine.index.drain()
    assert len(await check_layout(one, bid)) > 5
    for key in counters:
        assert (await two.index.get(bid, key)).size == 40

    # A refusing check writes nothing, and a remove through put_if removes.
    def refuse(current):
        raise Moved

    with pytest.raises(Moved):
        await one.index.put_if(bid, "c250", entry(0), refuse)
    assert (await two.index.get(bid, "c250")).size == 40
    replaced = await one.index.put_if(bid, "c250", None, lambda current: None)
    assert replaced.size == 40 and await two.index.get(bid, "c250") is None


# --- crashes -------------------------------------------------------------------------------
class SimulatedCrash(Exception):
    pass


SPLIT_STEPS = ["marked", "created", "copying", "copied", "committed", "activated", "mapped"]


@pytest.mark.parametrize("step", SPLIT_STEPS)
async def test_a_split_that_crashes_at_any_step_is_repaired(gateways, step):
    crashing = await gateways.engine()
    bucket, bid = await new_bucket(crashing)
    keys = [f"k{i:04d}" for i in range(THRESHOLD)]
    await crashing.index.put_many(bid, [(k, entry(1)) for k in keys])
    assert len(await crashing.index.shards(bid)) == 1

    def crash(at):
        if at == step:
            raise SimulatedCrash(at)

    crashing.index.splitter.failpoint = crash
    await crashing.index.put(bid, "k9999", entry(1))  # one key too many: the split starts
    await crashing.index.drain()
    keys.append("k9999")
    shards = await crashing.index.shards(bid)
    if step in ("marked", "created", "copying", "copied"):
        assert len(shards) == 1 and shards[0].split is not None  # frozen mid-split
    else:
        assert len(shards) == 2

    # Another gateway (a restarted one: nothing in memory) reads, lists and writes at once.
    other = await gateways.engine()
    assert await list_all(other, bucket) == keys
    assert (await other.objects.head(bucket, "k0049")).size == 1
    await other.index.put(bid, "k0049", entry(2))  # waits out the lease, then repairs
    await other.index.put(bid, "k0001", entry(2))
    assert (await crashing.index.get(bid, "k0049")).size == 2
    assert await list_all(other, bucket) == keys
    await other.index.drain()
    shards = await check_layout(other, bid)
    assert len(shards) == 2

    # The crashed gateway itself also recovers (its own split task died).
    crashing.index.splitter.failpoint = None
    await crashing.index.put(bid, "k0002", entry(3))
    assert (await other.index.get(bid, "k0002")).size == 3


async def test_the_gateway_whose_split_died_resumes_it_without_waiting(gateways):
    engine = await gateways.engine(index_split_lease_s=3600.0)
    _, bid = await new_bucket(engine)
    await engine.index.put_many(bid, [(f"k{i:04d}", entry()) for i in range(THRESHOLD)])

    def crash(at):
        if at == "copied":
            raise SimulatedCrash(at)

    engine.index.splitter.failpoint = crash
    await engine.index.put(bid, "k9999", entry())
    await engine.index.drain()
    assert (await engine.index.shards(bid))[0].split is not None
    engine.index.splitter.failpoint = None
    await asyncio.wait_for(engine.index.put(bid, "k0010", entry(5)), timeout=30)
    await engine.index.drain()
    assert len(await check_layout(engine, bid)) == 2


async def test_writes_wait_for_a_split_and_are_not_lost(gateways):
    # The split runs inline in one gateway and is held after its copy; another
    # gateway (with a long lease, so it waits rather than taking over) writes to
    # the frozen shard meanwhile.
    slow = await gateways.engine(index_split_in_background=False)
    other = await gateways.engine(index_split_lease_s=3600.0)
    bucket, bid = await new_bucket(slow)
    copied, release = asyncio.Event(), asyncio.Event()
    copy = slow.index.splitter._copy

    async def held_copy(*args):
        result = await copy(*args)
        copied.set()
        await release.wait()
        return result

    slow.index.splitter._copy = held_copy
    await slow.index.put_many(bid, [(f"k{i:04d}", entry()) for i in range(THRESHOLD)])
    splitting = asyncio.create_task(slow.index.put(bid, "k9999", entry()))
    await copied.wait()
    assert (await other.index.shards(bid))[0].split is not None
    late = [
        asyncio.create_task(other.index.put(bid, f"k{i:04d}", entry(9))) for i in range(0, 50, 5)
    ]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in late)  # frozen: the writes wait ...
    assert (await other.objects.head(bucket, "k0005")).size == 0  # ... reads do not
    release.set()
    await asyncio.gather(splitting, *late)
    for i in range(0, 50, 5):
        assert (await slow.index.get(bid, f"k{i:04d}")).size == 9
    await slow.index.drain()
    await other.index.drain()
    assert len(await check_layout(other, bid)) == 2


async def test_a_root_shard_from_before_ranges_keeps_working_and_splits(gateways):
    engine = await gateways.engine()
    bucket, bid = await new_bucket(engine)
    # Rewrite the root as the one-shard layout wrote it: h.bucket, h.gen and entries only.
    root = layout.index_shard(bid)
    await engine.meta.remove(root)
    legacy = {layout.SHARD_HEADER: f"{bid}:active".encode(), layout.SHARD_GENERATION: b"g"}
    legacy.update({layout.index_key(f"k{i:04d}"): entry(i).encode() for i in range(30)})
    await engine.meta.omap_set(root, legacy)
    other = await gateways.engine()  # a gateway that never saw the bucket
    assert (await other.index.get(bid, "k0007")).size == 7
    assert await list_all(other, bucket) == [f"k{i:04d}" for i in range(30)]
    await other.index.put_if(bid, "k0007", entry(70), lambda current: None)
    for i in range(30, 200):
        await other.index.put(bid, f"k{i:04d}", entry(i))
    await other.index.drain()
    assert len(await check_layout(other, bid)) > 2
    assert (await engine.index.get(bid, "k0007")).size == 70
    assert await list_all(engine, bucket) == [f"k{i:04d}" for i in range(200)]


# --- deleting buckets ------------------------------------------------------------------------
async def test_delete_bucket_checks_emptiness_across_shards(gateways):
    one, two = await gateways.engine(), await gateways.engine()
    bucket, bid = await new_bucket(one)
    keys = [f"k{i:04d}" for i in range(300)]
    await one.index.put_many(bid, [(k, entry()) for k in keys])
    shards = await check_layout(one, bid)
    assert len(shards) > 3
    for key in keys[:-1]:
        await two.objects.delete(bucket, key)
    assert not await one.index.is_empty(bid)
    with pytest.raises(BucketNotEmpty):
        await one.buckets.delete(bucket)
    # Refused: every shard is active again and takes writes, from both gateways.
    await two.index.put(bid, "a", entry())
    await one.index.put(bid, "k0100", entry())
    for key in ("a", "k0100", keys[-1]):
        await two.objects.delete(bucket, key)
    assert await two.index.is_empty(bid)
    await two.buckets.delete(bucket)
    with pytest.raises(NoSuchBucket):
        await put_body(one, bucket, "k0001", b"")
    left = [oid async for oid in one.meta.list_objects(prefix=f"idx.{bid}.")]
    assert left == []


async def test_writes_racing_a_bucket_delete_never_land_in_a_deleted_bucket(gateways):
    deleter, writer = await gateways.engine(), await gateways.engine()
    bucket, bid = await new_bucket(deleter)
    await deleter.index.put_many(bid, [(f"k{i:04d}", entry()) for i in range(200)])
    acknowledged: list[str] = []
    removed: set[str] = set()

    async def write():
        for i in range(200):
            try:
                await put_body(writer, bucket, f"n{(i * 37) % 200:04d}", b"x")
            except NoSuchBucket:
                return
            acknowledged.append(f"n{(i * 37) % 200:04d}")

    async def delete():
        for _ in range(500):
            for key in await list_all(deleter, bucket):
                await deleter.objects.delete(bucket, key)
                removed.add(key)
            try:
                await deleter.buckets.delete(bucket)
                return True
            except BucketNotEmpty:
                await asyncio.sleep(0)
        return False

    done, _ = await asyncio.gather(delete(), write())
    assert done
    # Every acknowledged write was seen (and deleted) before the bucket went.
    assert set(acknowledged) <= removed
