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
from dataclasses import replace

import pytest

from dedupe import ChunkCollector, FailpointHit, failpoints, fsck
from dedupe.compaction import PackCompactor
from tests.dedupe.conftest import SMALL_CONFIG, SMALL_PACKED, Objects

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


# The same crashes with packs: between a pack's write and its index entries, a
# pack written and the next not, a shared pack's reference taken, the collector
# between removing a pack and its index entries.
PACK_PUT_STEPS = [
    ("pack.before_write", 0),
    ("pack.before_write", 1),
    ("pack.after_write", 0),
    ("pack.after_write", 1),
    ("store.after_add_ref", 0),
    ("writer.before_finish", 0),
    ("test.before_manifest", 0),
    ("test.before_index", 0),
    ("test.before_release", 0),
    ("store.after_drop_ref", 1),
]


OVERWRITES = [("chunks", s, n) for s, n in PUT_STEPS] + [
    ("packs", s, n) for s, n in PACK_PUT_STEPS
]


@pytest.mark.parametrize(
    ("layout", "step", "skip"), OVERWRITES, ids=[f"{lay}-{s}+{n}" for lay, s, n in OVERWRITES]
)
async def test_crash_during_overwrite(store, meta_pool, cpu, layout, step, skip):
    objects = Objects(store, meta_pool, cpu, SMALL_CONFIG if layout == "chunks" else SMALL_PACKED)
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
    assert (await fsck(store, await objects.live(), cpu=cpu)).stale_index == 0


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


@pytest.mark.parametrize("step", ["gc.before_remove", "gc.before_index_forget"])
async def test_crash_while_collecting_packs_loses_nothing(store, packed_objects, cpu, step):
    objects = packed_objects
    await put_acknowledged(objects)
    await objects.delete("b")
    gc = ChunkCollector(store, grace_seconds=0)
    await gc.collect()
    with failpoints.armed(step, times=1), pytest.raises(FailpointHit):
        await gc.collect()
    await recover(store, objects, cpu)
    assert await objects.get("a") == A
    assert (await fsck(store, await objects.live(), cpu=cpu)).stale_index == 0
    await objects.put("b", B)  # B's chunks again: stored anew, not referenced from the index
    assert await objects.get("b") == B


@pytest.mark.parametrize(
    "step", ["compact.after_write", "compact.after_index", "compact.after_manifest"]
)
async def test_crash_while_compacting_a_pack_loses_nothing(store, meta_pool, cpu, step):
    # Deltas off: a pack holding a delta's base is never compacted.
    objects = Objects(store, meta_pool, cpu, replace(SMALL_PACKED, delta_chunks=False))
    await put_acknowledged(objects)
    await objects.delete("a")  # A's last pack: a little of SHARED (B's), mostly dead
    with failpoints.armed(step, times=1), pytest.raises(FailpointHit):
        await PackCompactor(store, objects).compact()
    await recover(store, objects, cpu)
    assert await objects.get("b") == B
    await PackCompactor(store, objects).compact()  # finishes the job
    await recover(store, objects, cpu)
    assert await objects.get("b") == B
