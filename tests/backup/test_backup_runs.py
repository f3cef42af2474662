"""Backup runs to a bucket of the same deployment, on both backends.

Runs are incremental (only changed keys are copied, and clones send no
chunk), verified, recorded, restorable to the run's exact state, and with
--lock-days their copies cannot be removed by anyone before the lock ends.
"""

from __future__ import annotations

import random

import pytest

from backup.catalog import FAILED, SUCCEEDED
from backup.history import BackupHistory, NoSuchRun
from backup.restore import BackupRestorer
from backup.runner import BackupRunner
from backup.targets import BucketTarget
from engine import (
    ENABLED,
    LOCK_CONFIG,
    Engine,
    LockConfig,
    ManualClock,
    NoSuchBucket,
    ObjectLocked,
    Operation,
    PutRequest,
)
from tests.engine.conftest import OWNER, SERVICE, engine_over


@pytest.fixture
async def engine(backend_kind, tmp_path):
    async with engine_over(backend_kind, tmp_path, ManualClock(), inline_limit=1024,
                           release_inline_bytes=1 << 40) as eng:
        yield eng


async def _body(data: bytes):
    yield data


async def _put(engine: Engine, bucket: str, key: str, data: bytes, **kw) -> None:
    handle = await engine.bucket(OWNER, bucket, Operation.PUT_OBJECT)
    await handle.put(key, PutRequest(body=_body(data), size=len(data), **kw))


async def _state(engine: Engine, bucket: str) -> dict[str, tuple[bytes, str, dict]]:
    handle = await engine.bucket(OWNER, bucket, Operation.GET_OBJECT)
    out = {}
    after = ""
    while True:
        page = await handle.list(start_after=after)
        for key, entry in page.entries:
            data = b"".join([p async for p in handle.read(entry).body()])
            out[key] = (data, entry.content_type, entry.user_meta)
        if not page.is_truncated:
            return out
        after = page.entries[-1][0]


def _data(n: int, size: int) -> bytes:
    return random.Random(n).randbytes(size)


async def test_incremental_verified_runs_restore_exact_states(engine: Engine):
    await engine.create_bucket(OWNER, "src", "us-east-1")
    await engine.create_bucket(OWNER, "vault", "us-east-1")
    for i in range(12):
        await _put(engine, "src", f"k{i:02d}", _data(i, [0, 100, 5000, 60_000][i % 4]),
                   content_type="text/x", user_meta={"i": str(i)})
    runner = BackupRunner(engine, SERVICE)
    target = BucketTarget(engine, SERVICE, "vault")
    chunks_before = await engine.chunk_pool_bytes(SERVICE)
    first = await runner.run("src", target)
    assert (first.status, first.objects, first.copied, first.verified) == (SUCCEEDED, 12, 12, 12)
    assert await engine.chunk_pool_bytes(SERVICE) == chunks_before, "clones send no chunk"
    state1 = await _state(engine, "src")

    engine.clock.advance(60)
    await _put(engine, "src", "k03", b"changed" * 1000)
    await (await engine.bucket(OWNER, "src", Operation.DELETE_OBJECT)).delete("k05")
    await _put(engine, "src", "new", b"brand new")
    second = await runner.run("src", target)
    assert (second.objects, second.copied, second.base_run) == (12, 2, first.run_id)
    state2 = await _state(engine, "src")

    history = BackupHistory(engine, SERVICE)
    assert [r.run_id for r in await history.runs("src")] == [first.run_id, second.run_id]
    assert len(await history.catalog(first.run_id)) == 12

    restorer = BackupRestorer(engine, SERVICE)
    into_copy = await restorer.restore(first.run_id, target, to="src-at-first")
    assert into_copy.restored == 12
    assert await _state(engine, "src-at-first") == state1

    await _put(engine, "src", "k00", b"damage")
    await (await engine.bucket(OWNER, "src", Operation.DELETE_OBJECT)).delete("k01")
    await _put(engine, "src", "stray", b"not in any run")
    back = await restorer.restore(second.run_id, target)
    assert (back.restored, back.deleted, back.unchanged) == (2, 1, 10)
    assert await _state(engine, "src") == state2
    again = await restorer.restore(second.run_id, target)
    assert (again.restored, again.deleted) == (0, 0)

    fsck = await engine.fsck(SERVICE, stale_seconds=0)
    assert fsck.clean and not fsck.orphan_manifests


async def test_lock_days_make_copies_immutable(engine: Engine):
    await engine.create_bucket(OWNER, "src", "us-east-1")
    await engine.create_bucket(OWNER, "plain-vault", "us-east-1")
    await engine.create_bucket(
        OWNER, "locked-vault", "us-east-1",
        {LOCK_CONFIG: LockConfig().encode(), "versioning": ENABLED.encode()},
    )
    await _put(engine, "src", "a", _data(1, 20_000))
    runner = BackupRunner(engine, SERVICE)
    with pytest.raises(ValueError, match="object lock"):
        await runner.run("src", BucketTarget(engine, SERVICE, "plain-vault"), lock_days=7)
    failed = (await BackupHistory(engine, SERVICE).runs("src"))[-1]
    assert failed.status == FAILED and "object lock" in failed.error

    vault = BucketTarget(engine, SERVICE, "locked-vault")
    run = await runner.run("src", vault, lock_days=7)
    assert run.lock_until == pytest.approx(engine.clock.time() + 7 * 86400)
    item = (await BackupHistory(engine, SERVICE).catalog(run.run_id))[0]
    service = await engine.bucket(SERVICE, "locked-vault", Operation.DELETE_OBJECT)
    with pytest.raises(ObjectLocked):
        await service.delete(item.target_key, version_id=item.target_version,
                             bypass_governance=True)
    retention = await service.retention(item.target_key, item.target_version)
    assert retention is not None and retention.mode == "COMPLIANCE"

    # A later run keeps the unchanged copy and extends its lock to its own.
    engine.clock.advance(3 * 86400)
    later = await runner.run("src", vault, lock_days=7)
    assert later.copied == 0
    extended = await service.retention(item.target_key, item.target_version)
    assert extended is not None and extended.until == pytest.approx(later.lock_until)


async def test_unknown_runs_and_buckets_are_clear_errors(engine: Engine):
    history = BackupHistory(engine, SERVICE)
    with pytest.raises(NoSuchRun):
        await history.run("20260101T000000Z-abcdef")
    with pytest.raises(NoSuchBucket):
        await BackupRunner(engine, SERVICE).run("nope", BucketTarget(engine, SERVICE, "x-y-z"))
    await engine.create_bucket(OWNER, "src", "us-east-1")
    with pytest.raises(NoSuchBucket):
        await BackupRunner(engine, SERVICE).run("src", BucketTarget(engine, SERVICE, "x-y-z"))
    assert (await history.runs("src"))[-1].status == FAILED


async def test_a_bucket_is_never_its_own_backup_nor_restored_over_it(engine: Engine):
    await engine.create_bucket(OWNER, "src", "us-east-1")
    await engine.create_bucket(OWNER, "vault", "us-east-1")
    await _put(engine, "src", "a", b"1")
    runner = BackupRunner(engine, SERVICE)
    with pytest.raises(ValueError, match="into itself"):
        await runner.run("src", BucketTarget(engine, SERVICE, "src"))
    target = BucketTarget(engine, SERVICE, "vault")
    run = await runner.run("src", target)
    with pytest.raises(ValueError, match="holds the backup"):
        await BackupRestorer(engine, SERVICE).restore(run.run_id, target, to="vault")
    assert len(await BackupHistory(engine, SERVICE).catalog(run.run_id)) == 1


async def test_a_rerun_reuses_copies_a_dead_run_left(engine: Engine):
    """A run that died after copying leaves copies no catalogue names; the next run finds
    them by name and ETag instead of copying (and, with a lock, locking) them again."""
    await engine.create_bucket(OWNER, "src", "us-east-1")
    await engine.create_bucket(OWNER, "vault", "us-east-1")
    for i in range(3):
        await _put(engine, "src", f"k{i}", _data(i, 5000))
    target = BucketTarget(engine, SERVICE, "vault")
    await BackupRunner(engine, SERVICE).run("src", target)
    history = BackupHistory(engine, SERVICE)
    # Forget that run, as if it had died before recording itself.
    for run in await history.runs("src"):
        await history.records.delete(f"run/{run.run_id}")
    await history.records.delete(f"last/{target.address}/src")
    vault = await engine.bucket(OWNER, "vault", Operation.LIST_OBJECTS_V2)
    before = [k for k, _ in (await vault.list()).entries]
    again = await BackupRunner(engine, SERVICE).run("src", target)
    assert again.copied == 3 and again.verified == 3
    assert [k for k, _ in (await vault.list()).entries] == before
    versions = await vault.list_versions()
    assert len(versions.versions) == 3, "no second copy of any object"
