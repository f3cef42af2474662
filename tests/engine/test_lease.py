"""The lease contract, on every backend: one holder at a time, handed over when the holder dies.

The kill -9 test runs the holder in a child process of its own (the way a
gateway holds the collector's lease) and kills it: the lease must pass to
the next contender once its time-to-live lapses, never before.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import Lease, LeaseLost, ManualClock
from storage import WriteOp
from tests.conftest import ceph_conf
from tests.contract.conftest import backend, pool  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
CHILD_TTL = 6.0

_CHILD = """
import asyncio, sys
from engine.lease import Lease
from storage.factory import open_backend

async def main(kind, where, pool_name, ttl):
    if kind == "local":
        backend = open_backend("local", data_dir=where)
    else:
        backend = open_backend("rados", ceph_conf=where)
    await backend.connect()
    lease = Lease(backend.pool(pool_name), "job", "child", ttl=ttl)
    while not await lease.try_acquire():
        await asyncio.sleep(0.05)
    print("held", lease.generation, flush=True)
    await lease.hold(lambda: asyncio.sleep(3600))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
"""


def _two(pool, clock, ttl=30.0):  # noqa: F811
    return (
        Lease(pool, "job", "a", ttl=ttl, clock=clock),
        Lease(pool, "job", "b", ttl=ttl, clock=clock),
    )


async def test_one_holder_at_a_time_and_release_hands_over(pool):  # noqa: F811
    a, b = _two(pool, ManualClock())
    assert await a.try_acquire() and a.generation == 1
    assert not await b.try_acquire() and not b.held
    assert await a.try_acquire()  # its own: a renewal, same generation
    assert a.generation == 1
    state = await b.state()
    assert state is not None and state.holder == a.holder
    await a.release()
    assert await b.try_acquire() and b.generation == 2
    with pytest.raises(LeaseLost):
        await a.renew()


async def test_a_lapsed_lease_is_taken_over_and_the_old_holder_is_fenced(pool):  # noqa: F811
    clock = ManualClock()
    a, b = _two(pool, clock, ttl=30.0)
    assert await a.try_acquire()
    clock.advance(29.0)
    assert not await b.try_acquire()  # not lapsed yet
    await a.renew()
    clock.advance(29.0)
    assert not await b.try_acquire()  # the renewal pushed it out
    clock.advance(2.0)
    assert await b.try_acquire() and b.generation == 2
    with pytest.raises(LeaseLost):
        await a.renew()  # its generation is gone: it can never write as holder again
    assert not a.held


async def test_hold_renews_and_cancels_the_work_when_the_lease_is_lost(pool):  # noqa: F811
    clock = ManualClock()
    a, b = _two(pool, clock, ttl=30.0)
    assert await a.try_acquire()
    started = clock.monotonic()

    async def work() -> str:
        # Runs until hold's heartbeats (each moving the clock a third of the TTL) have
        # carried the lease past three of its lifetimes.
        while clock.monotonic() - started <= 3 * a.ttl:
            await asyncio.sleep(0.005)
        return "done"

    assert await asyncio.wait_for(a.hold(work), 120) == "done"
    state = await b.state()
    assert state is not None and state.expires > clock.time()  # renewed along the way
    assert not await b.try_acquire()  # still a's

    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    a_generation = a.generation
    task = asyncio.ensure_future(a.hold(forever))
    await asyncio.sleep(0)
    # b takes over as another gateway would after a's lease lapsed (a's renewals lost).
    state = await b.state()
    assert state is not None
    clock.advance(a.ttl + 1)
    await b.pool.operate(
        "lease.job",
        WriteOp()
        .omap_cmp("gen", f"{state.generation:016x}".encode())
        .omap_set({"gen": f"{state.generation + 1:016x}".encode(), "holder": b"b.x"}),
    )
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(task, 60)
    assert cancelled.is_set()  # the work stopped with the lease
    assert a_generation is not None and not a.held


async def test_run_when_held_waits_for_the_holder(pool):  # noqa: F811
    clock = ManualClock()
    a, b = _two(pool, clock, ttl=30.0)
    assert await a.try_acquire()
    ran: list[str] = []

    async def job() -> str:
        ran.append("b")
        return "ok"

    # a never renews: b polls until a's lease lapses (the clock moves as b sleeps).
    assert await b.run_when_held(job, poll=5.0) == "ok"
    assert ran == ["b"] and not b.held
    assert await a.try_acquire() is True  # b released it when done


async def test_a_holder_killed_with_kill_9_hands_over_after_its_ttl(backend_kind, backend, pool, tmp_path):  # noqa: F811, E501
    where = str(tmp_path / "store") if backend_kind == "local" else ceph_conf()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, backend_kind, str(where), pool.name, str(CHILD_TTL)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        assert line.split() == ["held", "1"]
        contender = Lease(pool, "job", "parent", ttl=CHILD_TTL)
        state = await contender.state()
        assert state is not None and state.holder.startswith("child.")
        # Alive, the child renews (every third of a TTL): past a TTL and a half the
        # lease is still its own.
        deadline = time.monotonic() + 1.5 * CHILD_TTL
        while time.monotonic() < deadline:
            assert not await contender.try_acquire()
            await asyncio.sleep(0.25)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        deadline = time.monotonic() + 10 * CHILD_TTL
        while not await contender.try_acquire():
            assert time.monotonic() < deadline, "the dead holder's lease never lapsed"
            await asyncio.sleep(0.1)
        assert contender.generation == 2
        state = await contender.state()
        assert state is not None and state.holder == contender.holder
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)
