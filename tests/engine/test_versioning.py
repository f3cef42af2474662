"""S3 versioning in the engine, on both backends: versions, delete markers, the null
version, listing order and paging, payload release, and versions across shard splits."""

from __future__ import annotations

import pytest

from engine import (
    COMPLIANCE,
    ENABLED,
    LOCK_CONFIG,
    NULL,
    SUSPENDED,
    DeleteMarkerCurrent,
    DeleteMarkerVersion,
    Engine,
    LockConfig,
    ManualClock,
    NoSuchKey,
    NoSuchVersion,
    ObjectLocked,
    Operation,
    PutRequest,
    ReplicaOf,
    Retention,
)
from tests.engine.conftest import OWNER, SERVICE, engine_over


@pytest.fixture
async def small(backend_kind, tmp_path):
    """An engine whose bodies past 1 KiB are chunked and whose index splits at 256 keys."""
    async with engine_over(
        backend_kind, tmp_path, ManualClock(), inline_limit=1024, index_split_threshold=256,
        index_split_in_background=False, release_inline_bytes=1 << 40,
    ) as eng:
        yield eng


async def _body(data: bytes):
    yield data


async def _put(bucket, key: str, data: bytes):
    return await bucket.put(key, PutRequest(body=_body(data), size=len(data)))


async def _read(bucket, key: str, vid: str | None = None) -> bytes:
    entry = await bucket.head(key, vid)
    return b"".join([piece async for piece in bucket.read(entry).body()])


async def _versioned(engine: Engine, name: str, state: str | None = ENABLED):
    await engine.create_bucket(OWNER, name, "us-east-1")
    bucket = await engine.bucket(OWNER, name, Operation.PUT_OBJECT)
    if state is not None:
        await bucket.set_versioning(state)
    return bucket


async def _listing(bucket, **kw) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is delete marker) of every version, page by page."""
    out: list[tuple[str, str, bool, bool]] = []
    key_marker = version_marker = ""
    while True:
        page = await bucket.list_versions(
            key_marker=key_marker, version_marker=version_marker, **kw
        )
        out += [
            (k, e.version_id or NULL, latest, e.delete_marker) for k, e, latest in page.versions
        ]
        if not page.is_truncated:
            return out
        key_marker = page.next_key
        tail = page.versions[-1] if page.versions else None
        version_marker = (tail[1].version_id or NULL) if tail and tail[0] == key_marker else ""


async def test_versions_markers_and_deletes(small: Engine):
    bucket = await _versioned(small, "vers")
    ids = [(await _put(bucket, "k", f"v{i}".encode() * 600)).version_id for i in range(3)]
    assert all(ids) and len(set(ids)) == 3 and ids == sorted(ids, reverse=True)  # newest first
    assert await _read(bucket, "k") == b"v2" * 600
    assert await _read(bucket, "k", ids[0]) == b"v0" * 600
    assert await _listing(bucket) == [
        ("k", ids[2], True, False), ("k", ids[1], False, False), ("k", ids[0], False, False)
    ]
    marker = await bucket.delete("k")
    assert marker is not None and marker.delete_marker and marker.version_id
    with pytest.raises(DeleteMarkerCurrent) as current:
        await bucket.head("k")
    assert isinstance(current.value, NoSuchKey) and current.value.version_id == marker.version_id
    with pytest.raises(DeleteMarkerVersion):
        await bucket.head("k", marker.version_id)
    assert (await bucket.list()).entries == []  # a deleted key is not listed ...
    assert [v[1] for v in await _listing(bucket)] == [marker.version_id, *reversed(ids)]
    await bucket.delete("k", version_id=marker.version_id)  # ... until its marker goes
    assert await _read(bucket, "k") == b"v2" * 600
    await bucket.delete("k", version_id=ids[2])  # the current one: the next becomes current
    assert await _read(bucket, "k") == b"v1" * 600
    await bucket.delete("k", version_id=ids[0])  # a noncurrent one
    assert await _listing(bucket) == [("k", ids[1], True, False)]
    with pytest.raises(NoSuchVersion):
        await bucket.head("k", ids[0])
    assert await bucket.delete("k", version_id=ids[0]) is None  # gone: deleting again is a no-op
    await bucket.delete("k", version_id=ids[1])
    assert await _listing(bucket) == []
    assert await small.chunk_pool_bytes(SERVICE) != (0, 0)  # released, not yet collected
    report = await small.fsck(SERVICE)
    assert report.clean and report.orphan_manifests == [] and report.orphan_stripes == []


async def test_the_null_version(small: Engine):
    bucket = await _versioned(small, "nulls", state=None)
    await _put(bucket, "old", b"written before versioning")
    await bucket.set_versioning(ENABLED)
    new = await _put(bucket, "old", b"first version")
    assert await _listing(bucket) == [
        ("old", new.version_id, True, False), ("old", NULL, False, False)
    ]
    assert await _read(bucket, "old", NULL) == b"written before versioning"
    await bucket.set_versioning(SUSPENDED)
    suspended = await _put(bucket, "old", b"null again")
    assert suspended.version_id is None
    # The null version was replaced wherever it was: only one null, now current.
    assert await _listing(bucket) == [
        ("old", NULL, True, False), ("old", new.version_id, False, False)
    ]
    assert await _read(bucket, "old", NULL) == b"null again"
    marker = await bucket.delete("old")  # suspended: a null delete marker
    assert marker is not None and marker.delete_marker and marker.version_id is None
    assert await _listing(bucket) == [
        ("old", NULL, True, True), ("old", new.version_id, False, False)
    ]
    await bucket.delete("old", version_id=NULL)
    assert await _read(bucket, "old") == b"first version"


async def test_listing_order_paging_and_delimiters(small: Engine):
    bucket = await _versioned(small, "pages")
    made: dict[str, list[str]] = {}
    for key in ("a", "b/1", "b/2", "c"):
        for i in range(3):
            made.setdefault(key, []).insert(0, (await _put(bucket, key, b"%d" % i)).version_id)
    await bucket.delete("c")
    everything = await _listing(bucket)
    assert [(k, v) for k, v, _, _ in everything if k != "c"] == [
        (k, v) for k in ("a", "b/1", "b/2") for v in made[k]
    ]
    for size in (1, 2, 3, 5):
        assert await _listing(bucket, max_keys=size) == everything
    page = await bucket.list_versions(delimiter="/")
    assert page.common_prefixes == ["b/"] and {k for k, _, _ in page.versions} == {"a", "c"}
    assert [k for k, _ in (await bucket.list()).entries] == ["a", "b/1", "b/2"]


async def test_versions_survive_shard_splits(small: Engine):
    """Noncurrent versions move with their key when the index splits."""
    bucket = await _versioned(small, "split")
    keys = [f"key-{i:04d}" for i in range(600)]
    for round_ in range(2):
        for key in keys:
            await _put(bucket, key, b"%s-%d" % (key.encode(), round_))
    assert len(await small._services.index.shards(bucket.record.bucket_id)) > 1
    listed = await _listing(bucket, max_keys=250)
    assert len(listed) == 2 * len(keys)
    assert [k for k, _, _, _ in listed] == [k for k in keys for _ in range(2)]
    assert all(latest == (i % 2 == 0) for i, (_, _, latest, _) in enumerate(listed))
    for key in keys[::97]:
        noncurrent = next(v for k, v, latest, _ in listed if k == key and not latest)
        assert await _read(bucket, key, noncurrent) == b"%s-0" % key.encode()


async def test_fsck_and_the_collector_keep_noncurrent_versions(small: Engine):
    """Noncurrent versions are live payload: nothing may reclaim them, however old."""
    bucket = await _versioned(small, "upkeep")
    old = await _put(bucket, "k", b"old " * 1000)
    await _put(bucket, "k", b"new " * 1000)
    await bucket.delete("k")
    small.clock.advance(30 * 24 * 3600)  # far past every grace and stale threshold
    report = await small.fsck(SERVICE, repair=True, stale_seconds=0)
    assert report.clean and report.orphan_manifests == [] and report.orphan_stripes == []
    await small.collect_garbage(SERVICE, 0)
    await small.collect_garbage(SERVICE, 0)
    assert await _read(bucket, "k", old.version_id) == b"old " * 1000
    with pytest.raises(NoSuchKey):
        await bucket.head("k")


async def test_no_path_removes_a_compliance_locked_version(small: Engine):
    """Services (the admin CLI, runners) are refused like everyone; upkeep keeps it."""
    await small.create_bucket(
        OWNER, "locked", "us-east-1",
        {LOCK_CONFIG: LockConfig().encode(), "versioning": ENABLED.encode()},
    )
    owner = await small.bucket(OWNER, "locked", Operation.PUT_OBJECT)
    kept = await _put(owner, "k", b"evidence " * 200)
    until = small.clock.time() + 3600
    await owner.set_retention("k", Retention(COMPLIANCE, until), kept.version_id)
    service = await small.bucket(SERVICE, "locked", Operation.DELETE_OBJECT)
    for who in (owner, service):
        with pytest.raises(ObjectLocked):
            await who.delete("k", version_id=kept.version_id, bypass_governance=True)
        with pytest.raises(ObjectLocked):
            await who.set_retention("k", None, kept.version_id, bypass_governance=True)
    forged = ReplicaOf(kept.version_id, kept.stamp, kept.mtime)  # a "replica" of other bytes
    for who in (owner, await small.bucket(SERVICE, "locked", Operation.PUT_OBJECT)):
        with pytest.raises(ObjectLocked):
            await who.put("k", PutRequest(body=_one(b"tampered"), size=8, replica=forged))
    await small.fsck(SERVICE, repair=True, stale_seconds=0)
    await small.collect_garbage(SERVICE, 0)
    assert await _read(owner, "k", kept.version_id) == b"evidence " * 200
    small.clock.advance(3601)  # expired: now it may go
    await owner.delete("k", version_id=kept.version_id)
    assert await _listing(owner) == []


async def _one(data: bytes):
    yield data
