"""Local-backend specifics: crash safety (kill -9), multi-process races, orphan GC.

The behaviour shared with rados lives in tests/contract; these tests poke at
what only the embedded store has: files, SQLite, flocks and several processes
sharing one data directory.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from storage import (
    BackendUnavailable,
    CmpOp,
    GuardFailed,
    ObjectNotFound,
    PoolNotFound,
    WriteOp,
)
from storage.local import LocalBackend
from storage.protocol import Backend, Pool

REPO = Path(__file__).resolve().parents[1]
POOL = "crash.pool-1"


def data_files(root: Path) -> set[str]:
    return {p.name for p in root.glob("pools/*/data/*/*") if p.is_file()}


def referenced_files(root: Path) -> set[str]:
    out: set[str] = set()
    for db in root.glob("pools/*/meta.db"):
        conn = sqlite3.connect(db)
        try:
            out |= {r[0] for r in conn.execute("SELECT file FROM objects WHERE file IS NOT NULL")}
        finally:
            conn.close()
    return out


def run_child(code: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        **kw,
    )


@pytest.fixture
async def backend(tmp_path):
    b = LocalBackend(tmp_path / "d", inline_max=1024)
    await b.connect()
    yield b
    await b.close()


async def test_satisfies_protocol(backend):
    assert isinstance(backend, Backend)
    await backend.create_pool("p")
    assert isinstance(backend.pool("p"), Pool)
    assert backend.kind == "local"


# --- (1) crash safety ----------------------------------------------------------------

CRASH_CHILD = """
import asyncio, sys
from pathlib import Path
from storage import WriteOp
from storage.local import LocalBackend

SIZES = [0, 100, 5000, 70_000, 300_000]

def payload(i):
    size = SIZES[i % len(SIZES)]
    return (b"%d;" % i * (size // 2 + 1))[:size]

def record(w, i):  # 8 KiB: the log outgrows the inline limit and is appended in place
    return (b"%d:%d;" % (w, i)).ljust(8192, b".")

async def worker(pool, w, start):
    i = start
    while True:
        data = payload(i)
        op = (WriteOp().create(exclusive=True).write_full(data)
              .omap_set({"i": b"%d" % i}).set_xattr("user.len", b"%d" % len(data)))
        await pool.operate(f"obj{w}.{i}", op)
        await pool.operate(f"hot{w}", WriteOp().write_full(data).omap_set({"i": b"%d" % i}))
        await pool.append(f"log{w}", record(w, i))
        print(w, i, flush=True)
        i += 1

async def main():
    b = LocalBackend(Path(sys.argv[1]))
    await b.connect()
    await b.create_pool(sys.argv[2])
    pool = b.pool(sys.argv[2])
    start = int(sys.argv[3])
    print("ready", flush=True)
    await asyncio.gather(*(worker(pool, w, start) for w in range(4)))

asyncio.run(main())
"""


def _payload(i: int) -> bytes:
    sizes = [0, 100, 5000, 70_000, 300_000]
    size = sizes[i % len(sizes)]
    return (b"%d;" % i * (size // 2 + 1))[:size]


async def test_kill9_keeps_every_acknowledged_write(tmp_path):
    root = tmp_path / "d"
    acked: dict[int, list[int]] = {w: [] for w in range(4)}
    for rnd in range(3):
        start = rnd * 100_000
        child = run_child(CRASH_CHILD, str(root), POOL, str(start))
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        target = 30 + random.randrange(40)
        seen = 0
        while seen < target:
            line = child.stdout.readline()
            assert line, child.stderr.read()
            w, i = map(int, line.split())
            acked[w].append(i)
            seen += 1
        time.sleep(random.random() * 0.02)
        child.send_signal(signal.SIGKILL)
        # Whatever the child printed before dying was acknowledged too. Read it through
        # the same buffered file that readline used: communicate() reads the raw pipe and
        # would skip what readline had already buffered, starting mid-line.
        child.wait(timeout=30)
        rest = child.stdout.read()
        child.stdout.close()
        child.stderr.close()
        # Only whole lines: the kill can cut the last one mid-print.
        for line in rest.split("\n")[:-1]:
            w, i = map(int, line.split())
            acked[w].append(i)
        assert child.returncode == -signal.SIGKILL

        b = LocalBackend(root)
        await b.connect()
        try:
            pool = b.pool(POOL)
            for w, ids in acked.items():
                for i in ids:
                    oid = f"obj{w}.{i}"
                    assert await pool.read(oid) == _payload(i), oid
                    assert await pool.omap_get(oid, ["i"]) == {"i": b"%d" % i}
                    assert await pool.get_xattr(oid, "user.len") == b"%d" % len(_payload(i))
                # the one write that may have been in flight is all there or absent
                nxt = f"obj{w}.{max(ids) + 1}"
                try:
                    got = await pool.read(nxt)
                except ObjectNotFound:
                    pass
                else:
                    assert got == _payload(max(ids) + 1)
                    assert await pool.omap_get(nxt, ["i"]) == {"i": b"%d" % (max(ids) + 1)}
                # the rewritten object: data and omap from the same write, never older
                hot_i = int((await pool.omap_get(f"hot{w}", ["i"]))["i"])
                assert hot_i >= max(ids)
                assert await pool.read(f"hot{w}") == _payload(hot_i)
                # the append-only log: whole records, in order, every acked one there
                log = await pool.read(f"log{w}")
                assert len(log) % 8192 == 0
                recs = [log[k : k + 8192] for k in range(0, len(log), 8192)]
                want = sorted(acked[w])
                got_ids = [int(r.split(b":")[1].split(b";")[0]) for r in recs]
                # every acked record, in order; beyond them at most the one in flight
                # and one whose ack line the kill cut off
                assert [g for g in got_ids if g in set(want)] == want
                assert len(got_ids) - len(want) <= 2
                assert all(r.startswith(b"%d:" % w) and r.endswith(b"...") for r in recs)
            # the collector ran at connect: every data file is referenced, none missing
            assert data_files(root) == referenced_files(root)
        finally:
            await b.close()
        # the next round's child continues after the possibly torn-off in-flight appends
        for w in acked:
            acked[w] = sorted(acked[w])
        if rnd < 2:
            # drop the in-flight log record (if any) from the model by rewriting the log
            b = LocalBackend(root)
            await b.connect()
            try:
                pool = b.pool(POOL)
                for w, ids in acked.items():
                    recs = b"".join(_record(w, i) for i in ids)
                    await pool.write_full(f"log{w}", recs)
            finally:
                await b.close()


def _record(w: int, i: int) -> bytes:
    return (b"%d:%d;" % (w, i)).ljust(8192, b".")


# --- (2) several processes on one data directory --------------------------------------

RACE_CHILD = """
import asyncio, random, sys
from pathlib import Path
from storage import GuardFailed, ObjectExists, WriteOp
from storage.local import LocalBackend

async def main():
    root, pool_name, me = sys.argv[1], sys.argv[2], sys.argv[3]
    b = LocalBackend(Path(root))
    await b.connect()
    pool = b.pool(pool_name)
    print("ready", flush=True)
    sys.stdin.readline()  # the parent's "go": every child is connected by then

    order = list(range(200))
    random.Random(me).shuffle(order)  # each process claims in its own order

    async def claim(first):
        for j in order[first::2]:
            op = WriteOp().create(exclusive=True).write_full(me.encode())
            try:
                await pool.operate(f"race{j}", op)
                print("win", j, flush=True)
            except ObjectExists:
                pass

    async def incr(n):
        for _ in range(n):
            while True:
                cur = (await pool.omap_get("ctr", ["n"]))["n"]
                nxt = b"%08d" % (int(cur) + 1)
                try:
                    await pool.operate("ctr", WriteOp().omap_cmp("n", cur).omap_set({"n": nxt}))
                    break
                except GuardFailed:
                    await asyncio.sleep(0)

    await asyncio.gather(claim(0), claim(1), *(incr(8) for _ in range(4)))
    await b.close()
    print("done", flush=True)

asyncio.run(main())
"""


async def test_processes_race_exclusive_creates_and_guarded_counter(tmp_path):
    root = tmp_path / "d"
    b = LocalBackend(root)
    await b.connect()
    await b.create_pool("race")
    await b.pool("race").omap_set("ctr", {"n": b"%08d" % 0})
    await b.close()

    # All children start hammering at once: released together once each is connected
    # (a start time on the clock could pass before a slow child had even started).
    children = [
        run_child(RACE_CHILD, str(root), "race", f"p{k}", stdin=subprocess.PIPE) for k in range(3)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    wins: dict[int, list[str]] = {}
    for k, child in enumerate(children):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.splitlines()[-1] == "done"
        for line in out.splitlines()[:-1]:
            wins.setdefault(int(line.split()[1]), []).append(f"p{k}")

    assert sorted(wins) == list(range(200))
    assert all(len(w) == 1 for w in wins.values()), wins
    # the race was real: every process won some of the contested ids
    assert len({w[0] for w in wins.values()}) == 3, wins
    b = LocalBackend(root)
    await b.connect()
    try:
        pool = b.pool("race")
        for j, (winner,) in wins.items():
            assert await pool.read(f"race{j}") == winner.encode()
        assert (await pool.omap_get("ctr", ["n"]))["n"] == b"%08d" % (3 * 4 * 8)
        # 96 increments on top of the omap_set that created the object at version 1
        assert (await pool.stat("ctr")).version == 1 + 96
    finally:
        await b.close()


async def test_pool_deleted_and_recreated_by_another_process(tmp_path):
    a, b = LocalBackend(tmp_path / "d"), LocalBackend(tmp_path / "d")
    await a.connect()
    await b.connect()
    try:
        await a.create_pool("shared")
        await b.pool("shared").write_full("x", b"1")
        assert await a.pool("shared").read("x") == b"1"
        await a.delete_pool("shared")
        with pytest.raises(PoolNotFound):
            await b.pool("shared").read("x")
        await a.create_pool("shared")
        with pytest.raises(ObjectNotFound):
            await b.pool("shared").read("x")
        await b.pool("shared").write_full("x", b"2")
        assert await a.pool("shared").read("x") == b"2"
    finally:
        await a.close()
        await b.close()


# --- (3) orphan data files -------------------------------------------------------------


async def test_orphans_collected_at_connect_but_not_in_flight_files(tmp_path):
    root = tmp_path / "d"
    b = LocalBackend(root, inline_max=1024)
    await b.connect()
    await b.create_pool("p")
    pool = b.pool("p")
    await pool.write_full("big", b"x" * 5000)
    await pool.write_full("small", b"y" * 10)
    await b.close()
    (kept,) = data_files(root)

    data = next(root.glob("pools/*/data"))
    orphans = ["0" * 32, "ab" + "1" * 30, "ff" + "2" * 30]
    for name in orphans:  # what a crash between file write and commit leaves behind
        (data / name[:2]).mkdir(exist_ok=True)
        (data / name[:2] / name).write_bytes(b"torn")
    in_flight = "cd" + "3" * 30  # a writer of another process holds its flock
    (data / "cd").mkdir(exist_ok=True)
    (data / "cd" / in_flight).write_bytes(b"uncommitted")
    fd = os.open(data / "cd" / in_flight, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (data / "notes.txt").write_text("not ours")  # foreign names are left alone
    try:
        b = LocalBackend(root, inline_max=1024)
        await b.connect()
        try:
            assert b.orphans_collected == 3
            assert data_files(root) == {kept, in_flight}
            assert await b.pool("p").read("big") == b"x" * 5000
            assert await b.pool("p").read("small") == b"y" * 10
        finally:
            await b.close()
    finally:
        os.close(fd)
    assert (data / "notes.txt").exists()


async def test_replaced_and_removed_files_are_unlinked(backend):
    await backend.create_pool("p")
    pool = backend.pool("p")
    root = backend.data_dir
    await pool.write_full("o", b"a" * 4000)
    first = data_files(root)
    await pool.write_full("o", b"b" * 4000)
    assert len(data_files(root)) == 1 and data_files(root) != first
    await pool.write_full("o", b"small")  # back to inline
    assert data_files(root) == set()
    await pool.append("o", b"c" * 4000)  # inline grows into a file
    assert len(data_files(root)) == 1
    assert await pool.read("o") == b"small" + b"c" * 4000
    await pool.remove("o")
    assert data_files(root) == set()


# --- data-path details -------------------------------------------------------------------


async def test_small_write_with_omap_is_one_inline_row(tmp_path):
    b = LocalBackend(tmp_path / "d")
    await b.connect()
    try:
        await b.create_pool("p")
        await b.pool("p").operate("k", WriteOp().write_full(b"z" * 4096).omap_set({"m": b"1"}))
        assert data_files(b.data_dir) == set()
        assert await b.pool("p").read("k", 4000, 200) == b"z" * 96
    finally:
        await b.close()


async def test_stale_bytes_past_the_size_never_show(backend):
    """A crash mid-append leaves bytes past the committed size; they must stay invisible."""
    await backend.create_pool("p")
    pool = backend.pool("p")
    await pool.write_full("f", b"A" * 2000)
    (name,) = data_files(backend.data_dir)
    path = next(backend.data_dir.glob(f"pools/*/data/*/{name}"))
    with open(path, "ab") as fh:
        fh.write(b"GARBAGE" * 100)
    assert await pool.read("f") == b"A" * 2000
    await pool.write("f", b"B", 2010)  # hole must be zeros, not garbage
    assert await pool.read("f") == b"A" * 2000 + bytes(10) + b"B"
    await pool.truncate("f", 1500)
    with open(path, "ab") as fh:
        fh.write(b"MORE" * 100)
    await pool.truncate("f", 1600)
    assert await pool.read("f") == b"A" * 1500 + bytes(100)
    await pool.operate("f", WriteOp().truncate(10).append(b"C").truncate(20))
    assert await pool.read("f") == b"A" * 10 + b"C" + bytes(9)


async def test_random_ops_match_a_model(backend):
    """Random single and compound data ops across the inline/file threshold."""
    await backend.create_pool("p")
    pool = backend.pool("p")
    rng = random.Random(1234)
    model: dict[str, bytes] = {}

    def step(op: WriteOp, cur: bytearray | None) -> bytearray | None:
        kind = rng.choice(["write_full", "write", "append", "truncate", "remove"])
        size = rng.choice([0, 1, 7, 300, 1000, 1025, 3000])
        data = bytes(rng.randrange(256) for _ in range(size))
        if kind == "write_full":
            op.write_full(data)
            return bytearray(data)
        if kind == "remove":
            if cur is None:
                return None
            op.remove()
            return None
        if kind == "truncate":
            n = rng.randrange(0, 3000)
            op.truncate(n)
            if cur is None:
                return None
            cur = cur[:n] + bytes(max(0, n - len(cur)))
            return cur
        cur = bytearray() if cur is None else cur
        off = len(cur) if kind == "append" else rng.randrange(0, 3500)
        (op.append(data) if kind == "append" else op.write(data, off))
        if data:
            if off > len(cur):
                cur.extend(bytes(off - len(cur)))
            cur[off : off + len(data)] = data
        return cur

    for _ in range(400):
        oid = f"o{rng.randrange(4)}"
        cur = bytearray(model[oid]) if oid in model else None
        op = WriteOp()
        for _ in range(rng.choice([1, 1, 2, 3])):
            cur = step(op, cur)
        await pool.operate(oid, op)
        if cur is None:
            model.pop(oid, None)
        else:
            model[oid] = bytes(cur)
        for k, want in model.items():
            assert await pool.read(k) == want
            assert (await pool.stat(k)).size == len(want)
            off = rng.randrange(0, len(want) + 5)
            assert await pool.read(k, off, 100) == want[off : off + 100]
    assert {o async for o in pool.list_objects()} == set(model)
    assert data_files(backend.data_dir) == referenced_files(backend.data_dir)
    again = LocalBackend(backend.data_dir, inline_max=1024)
    await again.connect()
    try:
        for k, want in model.items():
            assert await again.pool("p").read(k) == want
    finally:
        await again.close()


async def test_versions_increase_across_remove_and_recreate(backend):
    await backend.create_pool("p")
    pool = backend.pool("p")
    await pool.write_full("v", b"1")
    assert (await pool.stat("v")).version == 1
    await pool.omap_set("v", {"a": b"1"})
    await pool.set_xattr("v", "x", b"1")
    assert (await pool.stat("v")).version == 3
    await pool.remove("v")
    await pool.write_full("v", b"2")
    st = await pool.stat("v")
    assert st.version > 3
    assert await pool.get_xattrs("v") == {}
    with pytest.raises(GuardFailed):
        await pool.operate("v", WriteOp().assert_version(1).write_full(b"x"))
    await pool.operate("v", WriteOp().assert_version(st.version).write_full(b"y"))
    # guards only: nothing to apply, no version bump
    await pool.operate("v", WriteOp().assert_exists())
    assert (await pool.stat("v")).version == st.version + 1


async def test_rados_semantics_for_missing_objects(backend):
    await backend.create_pool("p")
    pool = backend.pool("p")
    with pytest.raises(ObjectNotFound):
        await pool.operate("m", WriteOp().omap_cmp("k", b"v", CmpOp.EQ).omap_set({"k": b"w"}))
    with pytest.raises(ObjectNotFound):
        await pool.omap_get("m", ["k"])
    with pytest.raises(ObjectNotFound):
        await pool.omap_rm("m", ["k"])
    with pytest.raises(ObjectNotFound):
        await pool.get_xattrs("m")
    await pool.truncate("m", 10)  # no-op on a missing object
    with pytest.raises(ObjectNotFound):
        await pool.stat("m")
    with pytest.raises(PoolNotFound):
        await backend.delete_pool("never-created")
    # remove + re-create in one op, and a create that ends removed
    await pool.operate("m", WriteOp().omap_set({"a": b"1"}).remove().omap_set({"b": b"2"}))
    assert await pool.omap_list("m") == [("b", b"2")]
    await pool.operate("gone", WriteOp().write_full(b"x" * 5000).remove())
    with pytest.raises(ObjectNotFound):
        await pool.stat("gone")


async def test_pool_names_are_escaped(backend):
    names = ["gw.meta", "a-b_c.d", ".", "..", "a/b", "../escape", "ü", "%41"]
    for n in names:
        await backend.create_pool(n)
        await backend.create_pool(n)
        assert await backend.pool_exists(n)
        await backend.pool(n).write_full("o", n.encode())
    for n in names:
        assert await backend.pool(n).read("o") == n.encode()
    entries = sorted(p.name for p in (backend.data_dir / "pools").iterdir())
    assert len(entries) == len(names)
    assert "gw.meta" in entries and "a-b_c.d" in entries
    assert not any(e.startswith(".") or "/" in e for e in entries)
    assert sorted(os.listdir(backend.data_dir)) == ["pools", "tmp", "trash"]
    for n in names:
        await backend.delete_pool(n)
        assert not await backend.pool_exists(n)
    with pytest.raises(ValueError):
        await backend.create_pool("")


async def test_concurrent_create_pool_across_backends(tmp_path):
    backends = [LocalBackend(tmp_path / "d") for _ in range(3)]
    for b in backends:
        await b.connect()
    try:
        await asyncio.gather(*(b.create_pool("same") for b in backends for _ in range(5)))
        for b in backends:
            assert await b.pool_exists("same")
        assert os.listdir(tmp_path / "d" / "tmp") == []
    finally:
        for b in backends:
            await b.close()


async def test_not_durable_mode_and_closed_backend(tmp_path):
    b = LocalBackend(tmp_path / "d", durable=False)
    await b.connect()
    await b.create_pool("p")
    await b.pool("p").write_full("o", b"x" * 100_000)
    await b.ping()
    await b.close()
    with pytest.raises(BackendUnavailable):
        await b.pool("p").read("o")
    with pytest.raises(BackendUnavailable):
        await b.ping()
    b2 = LocalBackend(tmp_path / "d")
    await b2.connect()
    try:
        assert await b2.pool("p").read("o") == b"x" * 100_000
    finally:
        await b2.close()


async def test_unusable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    b = LocalBackend(blocker / "d")
    with pytest.raises(BackendUnavailable):
        await b.connect()
