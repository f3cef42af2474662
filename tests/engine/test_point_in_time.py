"""Point-in-time restore against a model, on both backends.

Random puts, overwrites and deletes run under a fake clock while a model
records what the bucket holds after each step. Restores to several instants
(in place, and into new buckets) must then make the bucket hold exactly what
the model held then: keys, bytes, content type, user metadata and tags. A
dry run must predict the very changes the real run makes, a restore must
share chunks instead of copying them, and fsck must find nothing afterwards.
"""

from __future__ import annotations

import random

import pytest

from dedupe import failpoints
from dedupe.errors import FailpointHit
from engine import (
    ENABLED,
    SUSPENDED,
    BucketDedupe,
    Engine,
    InvalidRestore,
    ManualClock,
    NewUpload,
    NoSuchBucket,
    Operation,
    PartBody,
    PutRequest,
)
from tests.engine.conftest import OTHER, OWNER, SERVICE, engine_over

# (bytes, content type, user metadata, tags) of one key
Content = tuple[bytes, str, dict[str, str], dict[str, str]]
State = dict[str, Content]


@pytest.fixture
async def small(backend_kind, tmp_path):
    """Bodies past 1 KiB are chunked; the index splits at 64 keys."""
    clock = ManualClock()
    async with engine_over(
        backend_kind, tmp_path, clock, inline_limit=1024, index_split_threshold=64,
        index_split_in_background=False, release_inline_bytes=1 << 40,
    ) as eng:
        yield eng, clock


async def _body(data: bytes):
    yield data


def _random_content(rng: random.Random) -> Content:
    size = rng.choice([0, 10, 700, 3000, 40_000])
    seed = rng.randrange(6)  # few distinct seeds: versions share chunks
    data = (b"%d-%d|" % (seed, size) * (size // 4 + 1))[:size]
    ctype = rng.choice(["text/plain", "application/octet-stream", "image/png"])
    meta = {"n": str(rng.randrange(3))} if rng.random() < 0.5 else {}
    tags = {"t": str(rng.randrange(3))} if rng.random() < 0.3 else {}
    return data, ctype, meta, tags


async def _put(bucket, key: str, content: Content) -> None:
    data, ctype, meta, tags = content
    await bucket.put(
        key,
        PutRequest(body=_body(data), size=len(data), content_type=ctype, user_meta=meta, tags=tags),
    )


async def _state(engine: Engine, name: str) -> State:
    bucket = await engine.bucket(OWNER, name, Operation.GET_OBJECT)
    out: State = {}
    async for entry_key, entry in _entries(bucket):
        data = b"".join([p async for p in bucket.read(entry).body()])
        out[entry_key] = (data, entry.content_type, entry.user_meta, entry.tags)
    return out


async def _entries(bucket):
    after = ""
    while True:
        page = await bucket.list(start_after=after, max_keys=37)
        for key, entry in page.entries:
            yield key, entry
        if not page.is_truncated:
            return
        after = page.entries[-1][0]


async def _history(engine: Engine, clock: ManualClock, name: str, seed: int, steps: int):
    """Random writes to ``name``; the model's state after each step, with its time."""
    rng = random.Random(seed)
    await engine.create_bucket(OWNER, name, "us-east-1")
    bucket = await engine.bucket(OWNER, name, Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    keys = [f"k/{i:03d}" for i in range(40)] + ["top", "k/a b"]
    model: State = {}
    snapshots: list[tuple[float, State]] = [(clock.time(), {})]
    for _ in range(steps):
        clock.advance(rng.choice([1.0, 2.5, 7.0]))
        for _ in range(rng.randrange(1, 4)):  # several writes at one instant
            key = rng.choice(keys)
            if rng.random() < 0.25 and key in model:
                await bucket.delete(key)
                del model[key]
            else:
                model[key] = _random_content(rng)
                await _put(bucket, key, model[key])
        snapshots.append((clock.time(), dict(model)))
    return snapshots


def _expected_changes(now: State, then: State) -> tuple[int, int, int]:
    created = sum(1 for k in then if k not in now)
    overwritten = sum(1 for k in then if k in now and now[k] != then[k])
    deleted = sum(1 for k in now if k not in then)
    return created, overwritten, deleted


@pytest.mark.parametrize("seed", [1, 2])
async def test_restore_matches_the_model_at_every_instant(small, seed):
    engine, clock = small
    snapshots = await _history(engine, clock, "src", seed, steps=60)
    rng = random.Random(seed * 7)
    chosen = [snapshots[0], snapshots[-1], *rng.sample(snapshots[1:-1], 5)]
    clock.advance(5)
    for n, (at, expected) in enumerate(chosen):
        # Into a new bucket; a moment between two steps restores the earlier one.
        target = f"copy-{n}"
        when = at + 0.5 if n % 2 else at
        report = await engine.restore(SERVICE, "src", when, to=target)
        assert await _state(engine, target) == expected, f"restore to {when}"
        assert (report.created, report.overwritten, report.deleted) == (len(expected), 0, 0)
        assert report.skipped == 0

    # In place, back and forth: each restore is itself a new step of the history.
    for at, expected in [chosen[3], chosen[1], chosen[4], chosen[0], chosen[2]]:
        now = await _state(engine, "src")
        dry = await engine.restore(SERVICE, "src", at, dry_run=True)
        assert (dry.created, dry.overwritten, dry.deleted) == _expected_changes(now, expected)
        assert await _state(engine, "src") == now, "a dry run changes nothing"
        clock.advance(3)
        report = await engine.restore(SERVICE, "src", at)
        assert [c.key for c in report.changes] == []  # only a dry run lists them
        assert (report.created, report.overwritten, report.deleted) == (
            dry.created, dry.overwritten, dry.deleted
        )
        assert await _state(engine, "src") == expected
        again = await engine.restore(SERVICE, "src", at)
        assert (again.created, again.overwritten, again.deleted) == (0, 0, 0), "idempotent"
        clock.advance(3)

    fsck = await engine.fsck(SERVICE, stale_seconds=0)
    assert fsck.clean, fsck
    assert not fsck.orphan_manifests and not fsck.orphan_stripes


async def test_restore_shares_chunks_instead_of_copying_them(small):
    engine, clock = small
    await engine.create_bucket(OWNER, "bkt", "us-east-1")
    bucket = await engine.bucket(OWNER, "bkt", Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    big = bytes(random.Random(3).randbytes(300_000))
    await _put(bucket, "big", (big, "x/y", {}, {}))
    clock.advance(10)
    at = clock.time()
    clock.advance(10)
    await bucket.delete("big")
    before = await engine.chunk_pool_bytes(SERVICE)
    report = await engine.restore(SERVICE, "bkt", at)
    assert report.created == 1 and report.bytes == len(big)
    assert await engine.chunk_pool_bytes(SERVICE) == before, "no chunk was written"
    assert (await _state(engine, "bkt"))["big"][0] == big
    # The restored version and the old one share chunks: deleting the old one keeps it whole.
    old = [v for v in await _versions(bucket, "big") if not v.delete_marker][-1]
    await bucket.delete("big", version_id=old.version_id)
    assert (await _state(engine, "bkt"))["big"][0] == big
    assert (await engine.fsck(SERVICE, stale_seconds=0)).clean


async def test_restore_copies_payloads_stored_without_dedupe(small):
    engine, clock = small
    await engine.create_bucket(OWNER, "raw", "us-east-1")
    await engine.set_dedupe_policy(SERVICE, "raw", BucketDedupe(enabled=False))
    bucket = await engine.bucket(OWNER, "raw", Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    data = bytes(random.Random(4).randbytes(50_000))
    await _put(bucket, "s", (data, "a/b", {"m": "1"}, {}))
    clock.advance(5)
    at = clock.time()
    clock.advance(5)
    await _put(bucket, "s", (b"x" * 5000, "a/b", {}, {}))
    await engine.restore(SERVICE, "raw", at, to="raw-copy")
    assert await _state(engine, "raw-copy") == {"s": (data, "a/b", {"m": "1"}, {})}
    fsck = await engine.fsck(SERVICE, stale_seconds=0)
    assert fsck.clean and not fsck.orphan_stripes


async def _versions(bucket, key: str):
    page = await bucket.list_versions(prefix=key)
    return [entry for k, entry, _ in page.versions if k == key]


async def test_restore_refuses_what_it_cannot_do(small):
    engine, clock = small
    await engine.create_bucket(OWNER, "plain", "us-east-1")
    with pytest.raises(InvalidRestore, match="never versioned"):
        await engine.restore(SERVICE, "plain", clock.time())
    bucket = await engine.bucket(OWNER, "plain", Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    with pytest.raises(InvalidRestore, match="future"):
        await engine.restore(SERVICE, "plain", clock.time() + 60)
    with pytest.raises(InvalidRestore, match="did not exist"):
        await engine.restore(SERVICE, "plain", clock.time() - 3600)
    with pytest.raises(NoSuchBucket):
        await engine.restore(SERVICE, "nope", clock.time())
    with pytest.raises(Exception, match="administration"):
        await engine.restore(OWNER, "plain", clock.time())
    # A dry run into a bucket that does not exist creates nothing.
    await _put(bucket, "a", (b"1", "t/p", {}, {}))
    clock.advance(1)
    dry = await engine.restore(SERVICE, "plain", clock.time(), to="new-one", dry_run=True)
    assert (dry.created, dry.overwritten, dry.deleted) == (1, 0, 0)
    with pytest.raises(NoSuchBucket):
        await engine.bucket(OWNER, "new-one", Operation.GET_OBJECT)


async def test_a_multipart_object_exists_from_its_completion(small):
    """Its Last-Modified is when the upload began; a restore goes by when it was committed."""
    engine, clock = small
    await engine.create_bucket(OWNER, "mpu", "us-east-1")
    bucket = await engine.bucket(OWNER, "mpu", Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    info = await bucket.create_upload("k", NewUpload(owner=OWNER.uid or ""))
    part = await bucket.upload_part(
        "k", info.upload_id, 1, lambda _info: PartBody(_body(b"m" * 2000), 2000)
    )
    clock.advance(10)
    await _put(bucket, "k", (b"plain", "t/p", {}, {}))
    clock.advance(10)
    between = clock.time()
    clock.advance(10)
    await bucket.complete_upload("k", info.upload_id, [(1, part.etag)])
    clock.advance(10)
    await engine.restore(SERVICE, "mpu", between, to="mpu-then")
    assert (await _state(engine, "mpu-then"))["k"][0] == b"plain"


async def test_a_failing_key_fails_the_restore(small):
    engine, clock = small
    await engine.create_bucket(OWNER, "fails", "us-east-1")
    bucket = await engine.bucket(OWNER, "fails", Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    await _put(bucket, "big", (random.Random(5).randbytes(30_000), "a/b", {}, {}))
    clock.advance(5)
    at = clock.time()
    clock.advance(5)
    await bucket.delete("big")
    with failpoints.armed("clone.after_manifest"), pytest.raises(FailpointHit):
        await engine.restore(SERVICE, "fails", at)
    report = await engine.restore(SERVICE, "fails", at)  # again: it resumes
    assert report.created == 1


async def test_restores_that_would_lose_data_are_refused(small):
    engine, clock = small
    await engine.create_bucket(OWNER, "src2", "us-east-1")
    bucket = await engine.bucket(OWNER, "src2", Operation.PUT_OBJECT)
    await bucket.set_versioning(ENABLED)
    await _put(bucket, "a", (b"1", "t/p", {}, {}))
    clock.advance(5)
    at = clock.time()
    # Another owner's bucket, and an unversioned bucket holding objects: never written.
    await engine.create_bucket(OTHER, "bobs", "us-east-1")
    with pytest.raises(InvalidRestore, match="another owner"):
        await engine.restore(SERVICE, "src2", at, to="bobs")
    await engine.create_bucket(OWNER, "full", "us-east-1")
    await _put(await engine.bucket(OWNER, "full", Operation.PUT_OBJECT), "x", (b"x", "t/p", {}, {}))
    with pytest.raises(InvalidRestore, match="not versioned"):
        await engine.restore(SERVICE, "src2", at, to="full")
    # Suspended: a restore in place would replace null versions for good.
    await bucket.set_versioning(SUSPENDED)
    with pytest.raises(InvalidRestore, match="Suspended"):
        await engine.restore(SERVICE, "src2", at)
    assert (await engine.restore(SERVICE, "src2", at, dry_run=True)).created == 0
