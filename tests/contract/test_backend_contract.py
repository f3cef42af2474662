"""One contract, every backend: the same tests run unchanged on local and rados."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage import (
    CmpOp,
    GuardFailed,
    NoSuchAttribute,
    ObjectExists,
    ObjectNotFound,
    PoolNotFound,
    WriteOp,
)
from tests.contract.conftest import make_backend


async def test_write_full_read_stat(pool):
    await pool.write_full("a", b"hello world")
    assert await pool.read("a") == b"hello world"
    st = await pool.stat("a")
    assert st.size == 11
    assert st.version > 0
    assert st.mtime > 0


async def test_ranged_read_write_append_truncate(pool):
    await pool.write_full("o", b"0123456789")
    assert await pool.read("o", 2, 3) == b"234"
    assert await pool.read("o", 8) == b"89"
    assert await pool.read("o", 20, 5) == b""
    await pool.write("o", b"ab", 4)
    assert await pool.read("o") == b"0123ab6789"
    await pool.write("o", b"Z", 12)  # past the end: zero-filled hole
    assert await pool.read("o") == b"0123ab6789\x00\x00Z"
    await pool.append("o", b"++")
    assert await pool.read("o") == b"0123ab6789\x00\x00Z++"
    await pool.truncate("o", 3)
    assert await pool.read("o") == b"012"
    assert (await pool.stat("o")).size == 3


async def test_write_creates_and_write_full_replaces(pool):
    await pool.write("new", b"abc", 0)
    await pool.append("new2", b"x")
    assert await pool.read("new2") == b"x"
    await pool.write_full("new", b"z")
    assert await pool.read("new") == b"z"


async def test_missing_object_errors(pool):
    with pytest.raises(ObjectNotFound):
        await pool.read("nope")
    with pytest.raises(ObjectNotFound):
        await pool.stat("nope")
    with pytest.raises(ObjectNotFound):
        await pool.remove("nope")
    with pytest.raises(ObjectNotFound):
        await pool.get_xattr("nope", "x")
    with pytest.raises(ObjectNotFound):
        await pool.omap_list("nope")


async def test_remove(pool):
    await pool.write_full("r", b"1")
    await pool.omap_set("r", {"k": b"v"})
    await pool.remove("r")
    with pytest.raises(ObjectNotFound):
        await pool.stat("r")
    await pool.write_full("r", b"2")  # recreated object starts with an empty omap
    assert await pool.omap_get("r", ["k"]) == {}


async def test_xattrs(pool):
    await pool.write_full("x", b"")
    await pool.set_xattr("x", "user.a", b"1")
    await pool.set_xattr("x", "user.b", b"\x00\xff")
    assert await pool.get_xattr("x", "user.b") == b"\x00\xff"
    assert await pool.get_xattrs("x") == {"user.a": b"1", "user.b": b"\x00\xff"}
    with pytest.raises(NoSuchAttribute):
        await pool.get_xattr("x", "user.c")
    await pool.operate("x", WriteOp().rm_xattr("user.a"))
    assert await pool.get_xattrs("x") == {"user.b": b"\x00\xff"}


async def test_omap_ordered_scans(pool):
    keys = [f"k{i:04d}" for i in range(250)] + ["a/1", "a/2", "b", "é", "\u00ff"]
    await pool.omap_set("idx", {k: k.encode() for k in keys})
    assert (await pool.stat("idx")).size == 0  # omap-only object exists, empty data
    expected = sorted(keys, key=lambda k: k.encode())
    got = await pool.omap_list("idx", max_items=1000)
    assert [k for k, _ in got] == expected
    page = await pool.omap_list("idx", start_after="k0099", max_items=3)
    assert [k for k, _ in page] == ["k0100", "k0101", "k0102"]
    pre = await pool.omap_list("idx", prefix="a/")
    assert pre == [("a/1", b"a/1"), ("a/2", b"a/2")]
    pre2 = await pool.omap_list("idx", start_after="a/1", prefix="a/")
    assert pre2 == [("a/2", b"a/2")]
    assert await pool.omap_get("idx", ["b", "missing", "é"]) == {"b": b"b", "é": "é".encode()}
    await pool.omap_rm("idx", ["b", "missing"])
    assert await pool.omap_get("idx", ["b"]) == {}


async def test_omap_binary_values(pool):
    blob = bytes(range(256)) * 40
    await pool.omap_set("bin", {"blob": blob, "empty": b""})
    assert await pool.omap_get("bin", ["blob", "empty"]) == {"blob": blob, "empty": b""}


async def test_exclusive_create(pool):
    await pool.operate("c", WriteOp().create(exclusive=True).write_full(b"first"))
    with pytest.raises(ObjectExists):
        await pool.operate("c", WriteOp().create(exclusive=True).write_full(b"second"))
    assert await pool.read("c") == b"first"
    await pool.operate("c", WriteOp().create(exclusive=False).append(b"!"))
    assert await pool.read("c") == b"first!"


async def test_compound_op_is_all_or_nothing(pool):
    await pool.operate("g", WriteOp().write_full(b"v1").omap_set({"gen": b"1"}))
    bad = WriteOp().omap_cmp("gen", b"2").write_full(b"v2").omap_set({"gen": b"3"})
    with pytest.raises(GuardFailed):
        await pool.operate("g", bad)
    assert await pool.read("g") == b"v1"
    assert await pool.omap_get("g", ["gen"]) == {"gen": b"1"}
    good = (
        WriteOp()
        .omap_cmp("gen", b"1")
        .write_full(b"v2")
        .set_xattr("a", b"b")
        .omap_set({"gen": b"2"})
        .omap_rm(["nothing"])
    )
    await pool.operate("g", good)
    assert await pool.read("g") == b"v2"
    assert await pool.omap_get("g", ["gen"]) == {"gen": b"2"}
    assert await pool.get_xattr("g", "a") == b"b"


async def test_omap_cmp_operators_and_missing_key(pool):
    await pool.omap_set("m", {"n": b"5"})
    await pool.operate("m", WriteOp().omap_cmp("n", b"4", CmpOp.GT).omap_set({"ok": b"1"}))
    await pool.operate("m", WriteOp().omap_cmp("n", b"6", CmpOp.LT).omap_set({"ok": b"2"}))
    await pool.operate("m", WriteOp().omap_cmp("n", b"0", CmpOp.NE).omap_set({"ok": b"3"}))
    with pytest.raises(GuardFailed):
        await pool.operate("m", WriteOp().omap_cmp("n", b"6", CmpOp.GT).omap_set({"ok": b"x"}))
    with pytest.raises(GuardFailed):
        await pool.operate("m", WriteOp().omap_cmp("absent", b"", CmpOp.EQ).omap_set({"ok": b"x"}))
    assert await pool.omap_get("m", ["ok"]) == {"ok": b"3"}


async def test_assert_version(pool):
    await pool.write_full("v", b"a")
    v = (await pool.stat("v")).version
    await pool.operate("v", WriteOp().assert_version(v).write_full(b"b"))
    v2 = (await pool.stat("v")).version
    assert v2 > v
    with pytest.raises(GuardFailed):
        await pool.operate("v", WriteOp().assert_version(v).write_full(b"c"))
    assert await pool.read("v") == b"b"
    with pytest.raises(ObjectNotFound):
        await pool.operate("missing", WriteOp().assert_version(1).write_full(b"c"))


async def test_assert_exists_and_remove_in_op(pool):
    with pytest.raises(ObjectNotFound):
        await pool.operate("e", WriteOp().assert_exists().omap_set({"a": b"1"}))
    with pytest.raises(ObjectNotFound):
        await pool.stat("e")
    await pool.write_full("e", b"1")
    await pool.operate("e", WriteOp().assert_exists().remove())
    with pytest.raises(ObjectNotFound):
        await pool.stat("e")


async def test_racing_exclusive_creates_exactly_one_wins(pool):
    async def attempt(i: int) -> int | None:
        try:
            await pool.operate("race", WriteOp().create(exclusive=True).write_full(b"%d" % i))
            return i
        except ObjectExists:
            return None

    results = await asyncio.gather(*(attempt(i) for i in range(32)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await pool.read("race") == b"%d" % winners[0]


async def test_racing_guarded_counter_loses_no_update(pool):
    """Compare-and-swap increments from many tasks: no lost update."""
    await pool.omap_set("ctr", {"n": b"%08d" % 0})

    async def incr() -> None:
        while True:
            cur = (await pool.omap_get("ctr", ["n"]))["n"]
            nxt = b"%08d" % (int(cur) + 1)
            try:
                await pool.operate("ctr", WriteOp().omap_cmp("n", cur).omap_set({"n": nxt}))
                return
            except GuardFailed:
                await asyncio.sleep(0)

    await asyncio.gather(*(incr() for _ in range(20)))
    assert (await pool.omap_get("ctr", ["n"]))["n"] == b"%08d" % 20


async def test_list_objects(pool):
    names = {"p/1", "p/2", "q/1", "odd name with spaces", "ü"}
    for n in names:
        await pool.write_full(n, b"")
    assert {o async for o in pool.list_objects()} == names
    assert {o async for o in pool.list_objects(prefix="p/")} == {"p/1", "p/2"}


async def test_large_object(pool):
    data = bytes(range(256)) * (16 * 1024)  # 4 MiB
    await pool.write_full("big", data)
    assert await pool.read("big") == data
    assert await pool.read("big", 1_000_000, 10) == data[1_000_000:1_000_010]


async def test_pools(backend):
    name = "contract-" + uuid.uuid4().hex[:12]
    assert not await backend.pool_exists(name)
    await backend.create_pool(name)
    backend.test_created_pools.append(name)
    await backend.create_pool(name)  # idempotent
    assert await backend.pool_exists(name)
    with pytest.raises(PoolNotFound):
        await backend.pool("no-such-pool-" + uuid.uuid4().hex[:8]).read("x")
    await backend.ping()


async def test_restart_persistence(backend_kind, tmp_path):
    name = "contract-" + uuid.uuid4().hex[:12]
    first = make_backend(backend_kind, tmp_path)
    await first.connect()
    await first.create_pool(name)
    p = first.pool(name)
    op = WriteOp().write_full(b"data").omap_set({"k": b"v"}).set_xattr("x", b"y")
    await p.operate("keep", op)
    await first.close()

    second = make_backend(backend_kind, tmp_path)
    await second.connect()
    try:
        p2 = second.pool(name)
        assert await p2.read("keep") == b"data"
        assert await p2.omap_get("keep", ["k"]) == {"k": b"v"}
        assert await p2.get_xattr("keep", "x") == b"y"
    finally:
        await second.delete_pool(name)
        await second.close()


async def test_concurrent_independent_ops(pool):
    await asyncio.gather(*(pool.write_full(f"c{i}", b"%d" % i) for i in range(200)))
    got = await asyncio.gather(*(pool.read(f"c{i}") for i in range(200)))
    assert got == [b"%d" % i for i in range(200)]
