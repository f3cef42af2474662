"""Tiers in the engine, on both backends: writes that ask for a storage class land on
its tier, and ``AuthorizedBucket.transition`` moves an object's data between tiers
without a byte lost, guarded against concurrent writers, with nothing left behind."""

from __future__ import annotations

import os

import pytest

from dedupe import failpoints
from dedupe.errors import FailpointHit
from engine import (
    ENABLED,
    ConcurrentUpdate,
    Engine,
    InvalidStorageClass,
    ManualClock,
    Operation,
    UnknownTier,
)
from tests.engine.conftest import OWNER
from tests.engine.tier_helpers import MiB
from tests.engine.tier_helpers import collect as _collect
from tests.engine.tier_helpers import put as _put
from tests.engine.tier_helpers import read as _read


async def _bucket(engine: Engine, name: str, op=Operation.PUT_OBJECT):
    return await engine.bucket(OWNER, name, op)


async def _holders(engine: Engine, tier: str) -> list[bytes]:
    store = engine._services.chunks.store
    return [h async for h in store.list_holders(tier)]


@pytest.fixture
async def tiered(engine: Engine):
    await engine.create_bucket(OWNER, "tiered", "us-east-1")
    return await _bucket(engine, "tiered")


async def test_a_storage_class_picks_the_tier_written_to(engine: Engine, tiered):
    data = {"hot": os.urandom(MiB), "warm": os.urandom(MiB)}
    await _put(tiered, "hot", data["hot"])
    entry = await _put(tiered, "warm", data["warm"], "STANDARD_IA")
    assert entry.headers["x-amz-storage-class"] == "STANDARD_IA"
    assert await tiered.placement("hot") == {"hot": MiB}
    assert await tiered.placement("warm") == {"warm": MiB}
    for key, body in data.items():
        assert await _read(engine, "tiered", key) == body
    assert await _holders(engine, "warm")  # the warm tier's own pool holds them


@pytest.mark.parametrize("storage_class", ["GLACIER", "GLACIER_IR", "DEEP_ARCHIVE", "FAST"])
async def test_classes_no_tier_serves_are_refused(engine: Engine, tiered, storage_class):
    with pytest.raises(InvalidStorageClass):
        await _put(tiered, "k", b"x" * 100_000, storage_class)
    page = await tiered.list()
    assert page.entries == []


async def test_transition_round_trip_keeps_bytes_and_leaves_nothing(
    engine: Engine, clock: ManualClock, tiered
):
    body = os.urandom(3 * MiB)
    before = await _put(tiered, "obj", body)
    moved = await tiered.transition("obj", "warm")
    assert (moved.source, moved.moved_bytes) == ("hot", 3 * MiB)
    assert moved.entry.headers["x-amz-storage-class"] == "STANDARD_IA"
    assert (moved.entry.etag, moved.entry.mtime) == (before.etag, before.mtime)
    assert await tiered.placement("obj") == {"warm": 3 * MiB}
    assert await _read(engine, "tiered", "obj") == body
    again = await tiered.transition("obj", "warm")
    assert again.moved_bytes == 0  # already there
    back = await tiered.transition("obj", "hot")
    assert back.source == "warm" and "x-amz-storage-class" not in back.entry.headers
    assert await tiered.placement("obj") == {"hot": 3 * MiB}
    assert await _read(engine, "tiered", "obj") == body
    await _collect(engine, clock)
    assert await _holders(engine, "warm") == []  # the warm copy was reclaimed


async def test_an_inline_object_only_changes_class(engine: Engine, tiered):
    await _put(tiered, "small", b"tiny")
    moved = await tiered.transition("small", "warm")
    assert moved.moved_bytes == 0 and moved.source == "hot"
    assert moved.entry.headers["x-amz-storage-class"] == "STANDARD_IA"
    assert await tiered.placement("small") == {"inline": 4}
    assert await _read(engine, "tiered", "small") == b"tiny"


async def test_unknown_tiers_are_refused(engine: Engine, tiered):
    await _put(tiered, "obj", os.urandom(MiB))
    with pytest.raises(UnknownTier):
        await tiered.transition("obj", "lukewarm")


async def test_a_write_during_the_move_wins_and_the_copy_is_dropped(
    engine: Engine, clock: ManualClock, tiered
):
    await _put(tiered, "obj", os.urandom(2 * MiB))
    newer = os.urandom(2 * MiB)

    async def overwrite() -> None:
        await _put(await _bucket(engine, "tiered"), "obj", newer)

    hook = failpoints.armed("transition.before_switch", "hook", hook=overwrite, times=1)
    with hook, pytest.raises(ConcurrentUpdate):
        await tiered.transition("obj", "warm")
    assert await _read(engine, "tiered", "obj") == newer
    assert await tiered.placement("obj") == {"hot": 2 * MiB}
    await _collect(engine, clock)
    assert await _holders(engine, "warm") == []


@pytest.mark.parametrize("point", ["transition.after_copy", "transition.before_switch"])
async def test_a_crash_before_the_switch_leaves_the_object_whole(
    engine: Engine, clock: ManualClock, tiered, point
):
    body = os.urandom(2 * MiB)
    await _put(tiered, "obj", body)
    with failpoints.armed(point), pytest.raises(FailpointHit):
        await tiered.transition("obj", "warm")
    assert await _read(engine, "tiered", "obj") == body
    assert await tiered.placement("obj") == {"hot": 2 * MiB}
    await _collect(engine, clock)
    assert await _read(engine, "tiered", "obj") == body


async def test_versions_move_one_by_one(engine: Engine, clock: ManualClock):
    await engine.create_bucket(OWNER, "versioned", "us-east-1")
    config = await _bucket(engine, "versioned", Operation.PUT_BUCKET_VERSIONING)
    await config.set_versioning(ENABLED)
    bucket = await _bucket(engine, "versioned")
    old, new = os.urandom(MiB), os.urandom(MiB)
    first = await _put(bucket, "k", old)
    await _put(bucket, "k", new)
    moved = await bucket.transition("k", "warm", first.version_id)
    assert moved.moved_bytes == MiB
    assert await bucket.placement("k", first.version_id) == {"warm": MiB}
    assert await bucket.placement("k") == {"hot": MiB}
    assert await _read(engine, "versioned", "k", first.version_id) == old
    assert await _read(engine, "versioned", "k") == new
    await _collect(engine, clock)
    assert await _read(engine, "versioned", "k", first.version_id) == old


async def test_a_chunk_shared_with_a_hot_object_stays_hot(
    engine: Engine, clock: ManualClock, tiered
):
    shared, own = os.urandom(2 * MiB), os.urandom(2 * MiB)
    await _put(tiered, "a", shared)  # stays hot
    await _put(tiered, "b", shared + own)  # its first half is a's chunks
    moved = await tiered.transition("b", "warm")
    where = await tiered.placement("b")
    # The chunks "a" needs stay where "a" is; only b's own go to warm (a boundary
    # chunk or two straddle the halves).
    assert where["hot"] >= 2 * MiB - 256 * 1024 and where["warm"] >= 2 * MiB, where
    assert moved.moved_bytes == 4 * MiB
    assert await _read(engine, "tiered", "b") == shared + own
    # A write of the same content to warm references the hot copy too.
    await _put(tiered, "c", shared, "STANDARD_IA")
    assert (await tiered.placement("c")).get("hot", 0) >= 2 * MiB - 256 * 1024
    # Alone in a tier, an object's chunks move with it, whoever shared them before.
    deleter = await _bucket(engine, "tiered", Operation.DELETE_OBJECT)
    await deleter.delete("a")
    await deleter.delete("c")
    await _collect(engine, clock)
    await tiered.transition("b", "hot")
    await tiered.transition("b", "warm")
    assert await tiered.placement("b") == {"warm": 4 * MiB}
    await _collect(engine, clock)
    assert await _read(engine, "tiered", "b") == shared + own
    assert await _holders(engine, "default") == []
