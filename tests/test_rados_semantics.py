"""RADOS-specific behaviour behind the storage protocol (needs the dev cluster).

These pin the places where ``storage.rados`` has to work around librados: omap
guards (missing keys, NE, signed-char ordering), version guards on missing objects,
the OSD's cap on omap entries per reply, chunked large reads and cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from storage import CmpOp, GuardFailed, ObjectNotFound, PoolNotFound, WriteOp
from storage.factory import open_backend
from tests.conftest import ceph_conf, require_backend


@pytest.fixture
async def backend():
    require_backend("rados")
    b = open_backend("rados", ceph_conf=ceph_conf())
    await b.connect()
    yield b
    await b.close()


@pytest.fixture
async def pool(backend):
    name = "rados-sem-" + uuid.uuid4().hex[:10]
    await backend.create_pool(name)
    yield backend.pool(name)
    await backend.delete_pool(name)


async def test_ordered_guards_compare_bytes_unsigned(pool):
    # the OSD compares chars as signed (b"\x80" < b"\x01"); the protocol is bytewise
    await pool.omap_set("o", {"k": b"\x80"})
    await pool.operate("o", WriteOp().omap_cmp("k", b"\x01", CmpOp.GT).omap_set({"a": b"1"}))
    with pytest.raises(GuardFailed):
        await pool.operate("o", WriteOp().omap_cmp("k", b"\x01", CmpOp.LT).omap_set({"a": b"2"}))
    await pool.operate("o", WriteOp().omap_cmp("k", b"\xff", CmpOp.LT).omap_set({"a": b"3"}))
    assert await pool.omap_get("o", ["a"]) == {"a": b"3"}


async def test_missing_key_fails_every_operator(pool):
    await pool.omap_set("o", {"empty": b""})
    for op in CmpOp:
        with pytest.raises(GuardFailed):
            await pool.operate("o", WriteOp().omap_cmp("absent", b"", op).omap_set({"x": b"1"}))
    # a present empty value is not a missing key
    await pool.operate("o", WriteOp().omap_cmp("empty", b"").omap_set({"x": b"2"}))
    await pool.operate("o", WriteOp().omap_cmp("empty", b"z", CmpOp.NE).omap_set({"x": b"3"}))
    assert await pool.omap_get("o", ["x"]) == {"x": b"3"}


async def test_omap_guard_on_missing_object_fails_without_creating_it(pool):
    # same as the local backend: ObjectNotFound, even after create(exclusive=False)
    for op in (CmpOp.EQ, CmpOp.GT):
        with pytest.raises(ObjectNotFound):
            await pool.operate("nobody", WriteOp().omap_cmp("k", b"", op).write_full(b"x"))
        with pytest.raises(ObjectNotFound):
            await pool.operate("nobody", WriteOp().omap_cmp("k", b"", op))
        with pytest.raises(ObjectNotFound):
            await pool.operate("nobody", WriteOp().create(False).omap_cmp("k", b"", op))
    with pytest.raises(ObjectNotFound):
        await pool.stat("nobody")


async def test_guards_without_mutation_do_not_bump_the_version(pool):
    await pool.omap_set("o", {"k": b"v"})
    v = (await pool.stat("o")).version
    await pool.operate("o", WriteOp().assert_exists().assert_version(v).omap_cmp("k", b"v"))
    assert (await pool.stat("o")).version == v
    with pytest.raises(ObjectNotFound):
        await pool.operate("gone", WriteOp().assert_exists())
    with pytest.raises(ObjectNotFound):
        await pool.operate("gone", WriteOp().assert_version(v))
    with pytest.raises(GuardFailed):
        await pool.operate("o", WriteOp().assert_version(0).write_full(b"x"))


async def test_racing_max_register_with_ordered_guards(pool):
    """Each task stores its value only if it is greater: the maximum must win."""
    await pool.omap_set("max", {"v": b"000"})

    async def offer(n: int) -> None:
        value = b"%03d" % n
        op = WriteOp().omap_cmp("v", value, CmpOp.LT).omap_set({"v": value})
        with contextlib.suppress(GuardFailed):  # someone already stored a greater value
            await pool.operate("max", op)

    await asyncio.gather(*(offer(n) for n in [5, 170, 42, 99, 170, 3, 128, 64, 200, 1] * 3))
    assert await pool.omap_get("max", ["v"]) == {"v": b"200"}


async def test_omap_list_pages_past_the_osd_reply_cap(pool):
    keys = [f"k{i:05d}" for i in range(2600)]  # the OSD caps replies at 1024 entries
    for i in range(0, len(keys), 500):
        await pool.omap_set("big", {k: b"" for k in keys[i : i + 500]})
    got = await pool.omap_list("big", max_items=5000)
    assert [k for k, _ in got] == keys
    page = await pool.omap_list("big", start_after="k00100", max_items=2000)
    assert [k for k, _ in page] == keys[101:2101]


async def test_large_and_zero_length_reads(pool):
    data = bytes(range(256)) * (80 * 1024 + 3)  # ~20 MiB: several aio_read calls
    await pool.write_full("big", data)
    assert await pool.read("big") == data
    assert await pool.read("big", 1, len(data)) == data[1:]
    assert await pool.read("big", 5, 0) == b""
    with pytest.raises(ObjectNotFound):
        await pool.read("missing", 0, 0)


async def test_truncate_of_a_missing_object_is_a_no_op(pool):
    await pool.truncate("missing", 0)  # RADOS and local: no error, nothing created
    with pytest.raises(ObjectNotFound):
        await pool.stat("missing")


async def test_cancelled_calls_leave_the_backend_usable(backend, pool):
    await pool.write_full("c", b"x" * 65536)
    tasks = [asyncio.create_task(pool.read("c")) for _ in range(300)]
    tasks += [asyncio.create_task(pool.omap_get("c", ["k"])) for _ in range(100)]
    await asyncio.sleep(0.001)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await backend._bridge.drain(60)  # bounded wait: ~400 calls on a possibly loaded OSD
    assert backend._bridge.in_flight == 0
    assert await pool.read("c") == b"x" * 65536


async def test_missing_pool(backend):
    p = backend.pool("no-such-pool-" + uuid.uuid4().hex[:8])
    with pytest.raises(PoolNotFound):
        await p.stat("x")
    with pytest.raises(PoolNotFound):
        [o async for o in p.list_objects()]
    with pytest.raises(PoolNotFound):
        await backend.delete_pool(p.name)


async def test_a_change_feed_whose_channels_vanish_still_keeps_its_promise(backend, pool):
    """Channel objects removed under live watches: the publisher re-creates them and
    retries; the listener distrusts until it has watched again; no stale generation."""
    from storage.rados_changes import CHANNELS, channel_oid

    other = open_backend("rados", ceph_conf=ceph_conf())
    await other.connect()
    writer, listener = backend.changes(pool.name), other.changes(pool.name)
    try:
        await writer.start(listen=False)
        await listener.start(listen=True)
        tags = list(range(1, 3 * CHANNELS))
        before = {tag: listener.generation(tag) for tag in tags}
        assert None not in before.values()
        for n in range(CHANNELS):
            await pool.remove(channel_oid(n))
        await asyncio.wait_for(writer.publish(tags), 60)
        after = {tag: listener.generation(tag) for tag in tags}
        assert all(after[t] is None or after[t] != before[t] for t in tags), after
        for _ in range(300):  # the listener watches again, and hears the next publish
            if listener.generation(tags[0]) is not None:
                break
            await asyncio.sleep(0.1)
        again = listener.generation(tags[0])
        assert again is not None
        await writer.publish(tags[:1])
        assert listener.generation(tags[0]) != again
    finally:
        await listener.close()
        await other.close()
