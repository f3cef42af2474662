"""Crash at every write step, then fsck + GC: no acknowledged data is lost (both backends).

A failpoint raises at one step (a simulated crash: nothing after it runs, no
cleanup). Recovery is what an operator's tooling does: fsck with repair over
the live manifests (stale references dropped), then two collector passes.
Afterwards every acknowledged object reads back byte for byte, the interrupted
operation is either wholly visible or not at all, and fsck is clean with no
leftovers.
"""

from __future__ import annotations

import random

import pytest

from dedupe import ChunkCollector, FailpointHit, failpoints, fsck

rng = random.Random(99)
SHARED = rng.randbytes(60_000)
A = SHARED + rng.randbytes(20_000)  # acknowledged, never touched again
B = rng.randbytes(30_000) + SHARED  # acknowledged, then overwritten or deleted
B2 = rng.randbytes(10_000) + SHARED[:40_000] + rng.randbytes(25_000)

PUT_STEPS = [
    ("store.before_create", 0),
    ("store.before_create", 5),
    ("store.after_create", 0),
    ("store.after_create", 3),
    ("store.exists", 0),
    ("store.after_add_ref", 1),
    ("writer.chunk_stored", 4),
    ("writer.before_finish", 0),
    ("test.before_manifest", 0),
    ("test.before_index", 0),
    ("test.before_release", 0),  # committed; the replaced manifest's refs remain
    ("store.after_drop_ref", 2),  # committed; crash halfway through the release
]
DELETE_STEPS = [("test.before_release", 0), ("store.after_drop_ref", 1)]


async def recover(store, objects, cpu):
    report = await fsck(store, await objects.live(), cpu=cpu, stale_ref_seconds=0, repair=True)
    assert not report.missing and not report.corrupt
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()
    await gc.collect()
    final = await fsck(store, await objects.live(), cpu=cpu, stale_ref_seconds=0)
    assert final.clean and not final.orphans, final
    return report


async def put_acknowledged(objects):
    await objects.put("a", A)
    await objects.put("b", B)


@pytest.mark.parametrize(("step", "skip"), PUT_STEPS, ids=[f"{s}+{n}" for s, n in PUT_STEPS])
async def test_crash_during_overwrite(store, objects, cpu, step, skip):
    await put_acknowledged(objects)
    with failpoints.armed(step, skip=skip, times=1), pytest.raises(FailpointHit):
        await objects.put("b", B2)
    await recover(store, objects, cpu)
    assert await objects.get("a") == A
    committed = step in ("test.before_release", "store.after_drop_ref")
    assert await objects.get("b") == (B2 if committed else B)
    # The store keeps working: overwrite again and read back.
    await objects.put("b", B)
    assert await objects.get("b") == B


@pytest.mark.parametrize(("step", "skip"), DELETE_STEPS, ids=[s for s, _ in DELETE_STEPS])
async def test_crash_during_delete(store, objects, cpu, step, skip):
    await put_acknowledged(objects)
    with failpoints.armed(step, skip=skip, times=1), pytest.raises(FailpointHit):
        await objects.delete("b")
    await recover(store, objects, cpu)
    assert await objects.get("a") == A
    assert len(await objects.live()) == 1  # the delete was committed before the crash


async def test_crash_during_gc_removal_loses_nothing(store, objects, cpu):
    await put_acknowledged(objects)
    await objects.delete("b")
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()
    with failpoints.armed("gc.before_remove", skip=1, times=1), pytest.raises(FailpointHit):
        await gc.collect()
    await recover(store, objects, cpu)
    assert await objects.get("a") == A


async def test_failpoint_hits_are_counted_and_disarmed():
    with failpoints.armed("x.y", skip=1, times=1):
        await failpoints.hit("x.y")
        with pytest.raises(FailpointHit):
            await failpoints.hit("x.y")
        await failpoints.hit("x.y")  # fired its one time already
        assert failpoints.fired("x.y") == 1
    await failpoints.hit("x.y")
    failpoints.arm_from_env("p.q=raise, r.s")
    with pytest.raises(FailpointHit):
        await failpoints.hit("r.s")
    failpoints.disarm()
    await failpoints.hit("p.q")
