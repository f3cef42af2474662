"""The tiering service over the engine, on both backends, with a manual clock: version
walks across page boundaries and versions written before versioning (``null``)."""

from __future__ import annotations

import os

import pytest

from engine import (
    ENABLED,
    LIFECYCLE_ITEM,
    SUSPENDED,
    Engine,
    LifecycleRule,
    ManualClock,
    Operation,
    PutRequest,
    encode_rules,
)
from tests.engine.conftest import OWNER, SERVICE
from tiering.policy import default_policy
from tiering.service import TieringService

MiB = 1024 * 1024
DAY = 86400.0


async def _body(data: bytes):
    yield data


async def _put(bucket, key: str, data: bytes):
    return await bucket.put(key, PutRequest(body=_body(data), size=len(data)))


def service(engine: Engine, page_size: int = 1000) -> TieringService:
    s = TieringService(engine, SERVICE, default_policy(), {"hot", "warm"})
    s.page_size = page_size
    return s


async def _versioned_bucket(engine: Engine, name: str):
    await engine.create_bucket(OWNER, name, "us-east-1")
    bucket = await engine.bucket(OWNER, name, Operation.PUT_OBJECT)
    return bucket


async def _lifecycle(engine: Engine, name: str, *rules: LifecycleRule) -> None:
    await engine.write_bucket_config(
        OWNER, name, LIFECYCLE_ITEM, encode_rules(rules), Operation.PUT_BUCKET_LIFECYCLE
    )


@pytest.mark.parametrize("page_size", [1, 2, 1000])
async def test_the_walk_sees_every_version_whatever_the_page_size(engine: Engine, page_size):
    bucket = await _versioned_bucket(engine, "walk")
    await bucket.set_versioning(ENABLED)
    for key in ("a", "b", "c"):
        for n in range(3):
            await _put(bucket, key, f"{key}{n}".encode())
    seen = [(v.key, v.noncurrent_rank, v.noncurrent_since is None)
            async for v in service(engine, page_size).versions("walk")]
    assert seen == [(k, r, cur) for k in "abc" for r, cur in ((0, True), (0, False), (1, False))]


async def test_a_version_from_before_versioning_is_expired_itself(
    engine: Engine, clock: ManualClock
):
    bucket = await _versioned_bucket(engine, "nulls")
    await _put(bucket, "k", os.urandom(MiB))  # the "null" version
    await bucket.set_versioning(ENABLED)
    current = os.urandom(MiB)
    await _put(bucket, "k", current)
    await _lifecycle(engine, "nulls", LifecycleRule(
        "old", noncurrent_transitions=((30, "STANDARD_IA"),), noncurrent_expiration_days=60,
    ))
    clock.advance(40 * DAY)
    report = await service(engine).apply(["nulls"])
    assert (report.moved_objects, report.failed) == (1, [])
    assert await bucket.placement("k", "null") == {"warm": MiB}
    assert await bucket.placement("k") == {"hot": MiB}  # the current version stays
    clock.advance(30 * DAY)
    report = await service(engine).apply(["nulls"])
    assert (report.expired, report.failed) == (1, [])
    page = await bucket.list_versions()
    assert [(e.version_id, e.delete_marker) for _, e, _ in page.versions] == [
        (page.versions[0][1].version_id, False)
    ]  # the null version is gone, no delete marker was added
    entry = await bucket.head("k")
    assert b"".join([p async for p in bucket.read(entry).body()]) == current
    await engine.collect_garbage(SERVICE, grace_seconds=0)
    fsck = await engine.fsck(SERVICE)
    assert fsck.clean and not fsck.orphan_manifests


async def test_expired_object_delete_markers_are_removed_as_s3_does(
    engine: Engine, clock: ManualClock
):
    bucket = await _versioned_bucket(engine, "markers")
    await bucket.set_versioning(ENABLED)
    for key in ("logs/a", "logs/b", "keep/c"):
        await _put(bucket, key, b"x")
        await bucket.delete(key)  # a delete marker over one noncurrent version
    await _put(bucket, "logs/d", b"live")  # a live object: nothing to remove
    await _lifecycle(engine, "markers", LifecycleRule(
        "tidy", prefix="logs/", noncurrent_expiration_days=1, expired_object_delete_marker=True,
    ))
    clock.advance(2 * DAY)
    first = await service(engine).apply(["markers"])
    assert (first.expired, first.delete_markers_removed, first.failed) == (2, 0, [])
    # The noncurrent versions are gone: the markers of logs/ are now alone, and go.
    second = await service(engine).apply(["markers"])
    assert (second.delete_markers_removed, second.failed) == (2, [])
    keys = {v.key async for v in service(engine).versions("markers")}
    assert keys == {"keep/c", "logs/d"}
    assert [k async for k, _ in service(engine, page_size=1).lone_delete_markers("markers")] == []


async def test_expiration_days_also_removes_markers_old_enough(engine: Engine, clock: ManualClock):
    bucket = await _versioned_bucket(engine, "aged")
    await bucket.set_versioning(ENABLED)
    await _put(bucket, "k", b"x")
    await bucket.delete("k")
    await bucket.delete("k", version_id=(await _only_version(engine, "aged", "k")))
    await _lifecycle(engine, "aged", LifecycleRule("age", expiration_days=30))
    clock.advance(10 * DAY)
    assert (await service(engine).apply(["aged"])).delete_markers_removed == 0  # too young
    clock.advance(25 * DAY)
    assert (await service(engine).apply(["aged"])).delete_markers_removed == 1


async def _only_version(engine: Engine, name: str, key: str) -> str:
    """The id of ``key``'s one version that is not a delete marker."""
    async for v in service(engine).versions(name):
        if v.key == key:
            return v.entry.version_id
    raise AssertionError("no version")


async def test_a_null_marker_written_over_meanwhile_is_not_removed(
    engine: Engine, clock: ManualClock
):
    bucket = await _versioned_bucket(engine, "suspended")
    await bucket.set_versioning(ENABLED)
    await bucket.set_versioning(SUSPENDED)
    await _put(bucket, "k", b"x")
    await bucket.delete("k")  # a null delete marker, alone
    await _lifecycle(engine, "suspended", LifecycleRule("tidy", expired_object_delete_marker=True))
    tiering = service(engine)
    listed = tiering.lone_delete_markers

    async def then_a_write(name: str):
        async for key, marker in listed(name):
            await _put(bucket, key, b"written after the listing")  # replaces the null marker
            yield key, marker

    tiering.lone_delete_markers = then_a_write
    report = await tiering.apply(["suspended"])
    assert report.delete_markers_removed == 0 and len(report.failed) == 1
    reader = await engine.bucket(OWNER, "suspended", Operation.GET_OBJECT, key="k")
    entry = await reader.head("k")
    assert b"".join([p async for p in reader.read(entry).body()]) == b"written after the listing"
