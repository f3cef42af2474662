"""Split pools (``storage.split_pool``): data in one store, omap, xattrs and guards
in a catalog pool of each backend. Every test runs with both data stores: a
remote S3 bucket (moto_server standing in for AWS; cold tiers) and a second
pool of the same backend (erasure-coded warm tiers; the erasure-coded pool
itself is tested on a three-OSD cluster in ``tests/engine``)."""

from __future__ import annotations

import uuid

import pytest

from storage import BackendUnavailable, GuardFailed, ObjectExists, ObjectNotFound, WriteOp
from storage.errors import StorageError
from storage.pool_objects import PoolObjects
from storage.remote_s3 import RemoteObjects, RemoteSettings
from storage.split_pool import REMOTE_XATTR, ResolvingPool, SplitPool
from tests.support.moto import MOTO_KEY, MOTO_SECRET


def settings(endpoint: str, **kw) -> RemoteSettings:
    return RemoteSettings(endpoint, "cold-" + uuid.uuid4().hex[:8], prefix="t/",
                          access_key=MOTO_KEY, secret_key=MOTO_SECRET, **kw)


@pytest.fixture(params=["s3", "pool"])
async def place(request, backend):
    """A fresh data store; ``place.another()`` makes a second one of the same kind."""
    if request.param == "s3":
        moto = request.getfixturevalue("moto_server")

        async def another():
            remote = RemoteObjects(settings(moto.endpoint))
            await remote.check()
            made.append(remote)
            return remote
    else:
        async def another():
            name = "split-data-" + uuid.uuid4().hex[:12]
            await backend.create_pool(name)
            backend.test_created_pools.append(name)
            return PoolObjects(backend.pool(name))
    made: list = []
    first = await another()
    first.another = another
    yield first
    for remote in made:
        remote.close()


@pytest.fixture
async def cold(pool, place, backend):
    yield SplitPool(pool, place, backend.pool, block_bytes=4096, cache_bytes=1 << 20)


async def remote_names(cold: SplitPool) -> list[str]:
    return [name async for name, _ in cold.objects.listing()]


async def test_a_pack_is_one_remote_object_and_its_omap_stays_in_the_catalog(cold):
    data = bytes(range(256)) * 64  # 16 KiB
    op = WriteOp().create(exclusive=True).write_full(data).omap_set({"ref.a": b"1"})
    await cold.operate("k.01", op)
    names = await remote_names(cold)
    assert len(names) == 1 and names[0].startswith("k.01.")
    assert await cold.catalog.read("k.01") == b""  # no bytes in the catalog
    assert await cold.read("k.01", 1000, 300) == data[1000:1300]
    assert await cold.read("k.01") == data
    assert await cold.read("k.01", len(data) - 10, 100) == data[-10:]  # short at the end
    assert (await cold.stat("k.01")).size == len(data)
    assert await cold.omap_get("k.01", ["ref.a"]) == {"ref.a": b"1"}
    # The catalog's own objects (index shards, dictionaries) keep their bytes locally.
    await cold.write_full("i.shard", b"local")
    assert await cold.catalog.read("i.shard") == b"local"
    assert len(await remote_names(cold)) == 1


async def test_reads_of_neighbouring_ranges_share_block_fetches(cold):
    data = b"x" * 40000
    await cold.operate("k.02", WriteOp().create(exclusive=True).write_full(data))
    before = cold._blocks.fetches
    for offset in range(0, 40000, 1000):
        assert await cold.read("k.02", offset, 1000) == data[offset:offset + 1000]
    assert cold._blocks.fetches - before <= 10  # 40 reads, 10 blocks of 4 KiB


async def test_a_refused_create_leaves_no_remote_object(cold):
    await cold.operate("c.aa", WriteOp().create(exclusive=True).write_full(b"first"))
    with pytest.raises(ObjectExists):
        await cold.operate("c.aa", WriteOp().create(exclusive=True).write_full(b"second"))
    assert len(await remote_names(cold)) == 1
    assert await cold.read("c.aa") == b"first"


async def test_a_guarded_remove_deletes_remote_bytes_only_when_it_holds(cold):
    op = WriteOp().create(exclusive=True).write_full(b"data").omap_set({"gen": b"1"})
    await cold.operate("k.03", op)
    with pytest.raises(GuardFailed):
        await cold.operate("k.03", WriteOp().omap_cmp("gen", b"2").remove())
    assert await cold.read("k.03") == b"data"
    await cold.operate("k.03", WriteOp().omap_cmp("gen", b"1").remove())
    assert await remote_names(cold) == []
    with pytest.raises(ObjectNotFound):
        await cold.read("k.03")


async def test_a_replaced_object_reads_new_bytes_even_through_a_cached_location(cold):
    await cold.write_full("c.bb", b"old bytes")
    assert await cold.read("c.bb") == b"old bytes"  # its blocks cached
    other = SplitPool(cold.catalog, cold.objects)  # another process replaces it
    await other.write_full("c.bb", b"new bytes!")
    assert await cold.read("c.bb") == b"new bytes!"
    assert len(await remote_names(cold)) == 1  # the old upload was deleted


async def test_split_data_is_write_once(cold):
    await cold.write_full("c.cc", b"abc")
    for call in (cold.write("c.cc", b"x", 1), cold.append("c.cc", b"x"),
                 cold.truncate("c.cc", 1)):
        with pytest.raises(StorageError):
            await call
    assert await cold.read("c.cc") == b"abc"


async def test_the_sweep_drops_uploads_nothing_names_after_the_grace(cold):
    await cold.write_full("k.04", b"named")
    await cold.objects.put("k.05.00000000deadbeef", b"crashed before the catalog write")
    await cold.objects.put("k.04.0000000000000000", b"an older upload of k.04")
    await cold.objects.put("not-ours", b"another program's object under the prefix")
    assert await cold.sweep(grace_seconds=3600) == 0  # too young to judge
    assert await cold.sweep(grace_seconds=0, now=2**40) == 2
    names = await remote_names(cold)
    assert len(names) == 2 and "not-ours" in names
    named = (await cold.catalog.get_xattrs("k.04"))[REMOTE_XATTR].decode()
    assert set(names) == {named, "not-ours"}


async def test_an_unreachable_endpoint_fails_clearly_and_creates_nothing(pool):
    remote = RemoteObjects(settings("http://127.0.0.1:9", attempts=1, timeout_seconds=2))
    cold = SplitPool(pool, remote)
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await cold.operate("k.06", WriteOp().create(exclusive=True).write_full(b"x"))
    with pytest.raises(ObjectNotFound):
        await pool.stat("k.06")  # data first: no catalog object without its bytes
    remote.close()


async def test_the_catalog_records_its_place_and_that_place_wins(cold, place, backend):
    await cold.write_full("k.07", b"written at the first place")
    # A policy edit names another place for the same tier: reads still find the data,
    # writes are refused with a clear reason instead of scattering it over two places.
    elsewhere = await place.another()
    repointed = SplitPool(cold.catalog, elsewhere, backend.pool)
    assert await repointed.read("k.07") == b"written at the first place"
    with pytest.raises(StorageError, match="a new place needs a new tier name"):
        await repointed.write_full("k.08", b"x")
    # A tier dropped from the policy: its catalog alone says where its bytes are.
    dropped = ResolvingPool(cold.catalog, backend.pool)
    assert await dropped.read("k.07", 0, 7) == b"written"
    assert (await dropped.stat("k.07")).size == len(b"written at the first place")


async def test_objects_written_before_the_tier_was_split_stay_readable(pool, place, backend):
    """A replicated warm tier turned erasure-coded under the same name: packs it wrote
    keep their bytes in the catalog, and a split pool reads them there."""
    await pool.operate("k.0a", WriteOp().create(exclusive=True).write_full(b"plain bytes"))
    split = SplitPool(pool, place, backend.pool)
    assert await split.read("k.0a", 6) == b"bytes"
    assert (await split.stat("k.0a")).size == len(b"plain bytes")
    await split.write_full("k.0b", b"split bytes")
    assert await split.read("k.0b") == b"split bytes"
    assert await pool.read("k.0b") == b""  # the catalog names it, the store holds it


async def test_a_plain_pool_dropped_from_the_policy_reads_as_itself(pool):
    await pool.write_full("k.09", b"warm bytes")
    assert await ResolvingPool(pool).read("k.09") == b"warm bytes"


async def test_a_stale_plain_view_looks_again_when_a_pack_reads_empty(pool, place, backend):
    """One process resolved the tier as plain; another then split it (a newer policy made
    it erasure-coded): the first must not read the new packs as empty."""
    stale = ResolvingPool(pool, backend.pool)
    await stale.write_full("i.shard", b"catalog bytes")  # resolved now: plain
    split = SplitPool(pool, place, backend.pool)
    await split.operate("k.0c", WriteOp().create(exclusive=True).write_full(b"split pack"))
    assert await stale.read("k.0c") == b"split pack"
