"""Cold tiers in the engine, on both backends, with moto_server as the remote S3
endpoint: packs travel as remote objects, an instant tier reads directly, an
archive tier only after RestoreObject, and nothing is left behind."""

from __future__ import annotations

import os
import uuid

import pytest

from engine import (
    DEFAULT_TIERS,
    ENABLED,
    Engine,
    InvalidObjectState,
    InvalidStorageClass,
    Operation,
    RemoteSettings,
    TierSettings,
)
from storage import BackendUnavailable, StorageError
from tests.engine.conftest import OWNER, SERVICE, engine_over
from tests.engine.tier_helpers import DAY, MiB
from tests.engine.tier_helpers import collect as _collect
from tests.engine.tier_helpers import put as _put
from tests.engine.tier_helpers import read as _read
from tests.support.flaky_proxy import FlakyProxy
from tests.support.moto import MOTO_KEY, MOTO_SECRET


def cold_tiers(endpoint: str, bucket: str, **remote) -> tuple[TierSettings, ...]:
    def settings(prefix: str) -> RemoteSettings:
        return RemoteSettings(endpoint, bucket, prefix=prefix, access_key=MOTO_KEY,
                              secret_key=MOTO_SECRET, **remote)

    return (
        *DEFAULT_TIERS,
        TierSettings("cold", storage_classes=("GLACIER_IR",), reported_class="GLACIER_IR",
                     remote=settings("instant/"), pack_bytes=4 * MiB),
        TierSettings("glacier", storage_classes=("GLACIER", "DEEP_ARCHIVE"),
                     reported_class="GLACIER", remote=settings("archive/"), archive=True),
    )


@pytest.fixture
async def cold_engine(backend_kind, tmp_path, clock, moto_server):
    remote_bucket = "cold-" + uuid.uuid4().hex[:8]
    tiers = cold_tiers(moto_server.endpoint, remote_bucket)
    async with engine_over(backend_kind, tmp_path, clock, tiers=tiers,
                           gc_grace_seconds=3600.0, release_inline_bytes=1 << 40) as eng:
        eng.test_remote = moto_server.client()  # type: ignore[attr-defined]
        eng.test_remote_bucket = remote_bucket  # type: ignore[attr-defined]
        yield eng


def remote_keys(engine, tier: str, kind: str = "") -> list[str]:
    """Remote keys of a tier (``kind``: ``k.`` packs, ``c.`` chunks alone), which live
    under ``<key prefix><deployment>/<tier>/``."""
    listed = engine.test_remote.list_objects_v2(Bucket=engine.test_remote_bucket)
    keys = [o["Key"] for o in listed.get("Contents", [])]
    return [k for k in keys if f"/{tier}/{kind}" in k]


async def _bucket(engine: Engine, name: str):
    await engine.create_bucket(OWNER, name, "us-east-1")
    return await engine.bucket(OWNER, name, Operation.PUT_OBJECT)


async def test_an_instant_cold_write_travels_in_packs_and_reads_back(cold_engine):
    bucket = await _bucket(cold_engine, "instant")
    data = os.urandom(6 * MiB)  # about 190 chunks
    entry = await _put(bucket, "big", data, "GLACIER_IR")
    assert entry.headers["x-amz-storage-class"] == "GLACIER_IR"
    assert await bucket.placement("big") == {"cold": len(data)}
    packs = remote_keys(cold_engine, "cold", "k.")
    assert 1 <= len(packs) <= 3  # 4 MiB packs, never one request per chunk
    assert remote_keys(cold_engine, "cold", "c.") == []  # no chunk stored alone
    assert await _read(cold_engine, "instant", "big") == data


async def test_moves_to_cold_and_back_leave_nothing_behind(cold_engine, clock):
    bucket = await _bucket(cold_engine, "moves")
    data = os.urandom(3 * MiB)
    await _put(bucket, "k", data)
    moved = await bucket.transition("k", "cold")
    assert moved.moved_bytes == len(data)
    assert await bucket.placement("k") == {"cold": len(data)}
    assert await _read(cold_engine, "moves", "k") == data
    await bucket.transition("k", "hot")
    assert await bucket.placement("k") == {"hot": len(data)}
    await _collect(cold_engine, clock)
    assert remote_keys(cold_engine, "cold") == []  # the packs went with the collector
    assert await _read(cold_engine, "moves", "k") == data


async def test_an_archived_version_reads_only_while_restored(cold_engine, clock):
    bucket = await _bucket(cold_engine, "arch")
    await bucket.set_versioning(ENABLED)
    data, small = os.urandom(2 * MiB), b"inline bytes"
    first = await _put(bucket, "k", data, "GLACIER")
    await _put(bucket, "tiny", small, "DEEP_ARCHIVE")
    assert await bucket.placement("k") == {"glacier": len(data)}
    for key in ("k", "tiny"):
        with pytest.raises(InvalidObjectState):
            await _read(cold_engine, "arch", key)
    entry, fresh = await bucket.restore("k", 2)
    assert fresh and 'ongoing-request="false"' in entry.headers["x-amz-restore"]
    assert await _read(cold_engine, "arch", "k") == data
    assert await _read(cold_engine, "arch", "k", first.version_id) == data
    _, again = await bucket.restore("k", 1)
    assert not again  # already restored: extended, no second copy
    await bucket.restore("tiny", 1)
    assert await _read(cold_engine, "arch", "tiny") == small
    clock.advance(4 * DAY)
    with pytest.raises(InvalidObjectState):
        await _read(cold_engine, "arch", "k")
    # The tiering pass ends expired restores from their records, walking no bucket.
    assert await cold_engine.end_due_restores(SERVICE) == 2  # "k" and "tiny"
    assert await cold_engine.end_due_restores(SERVICE) == 0
    assert "x-amz-restore" not in (await bucket.head("k")).headers
    await _collect(cold_engine, clock)  # the restored copy's chunks are released whole
    _, fresh = await bucket.restore("k", 1)
    assert fresh and await _read(cold_engine, "arch", "k") == data


async def test_restore_of_an_object_not_archived_is_refused(cold_engine):
    bucket = await _bucket(cold_engine, "notarch")
    await _put(bucket, "hot", os.urandom(MiB))
    await _put(bucket, "ir", os.urandom(MiB), "GLACIER_IR")
    for key in ("hot", "ir"):
        with pytest.raises(InvalidObjectState):
            await bucket.restore(key, 1)


async def test_deleting_a_restored_object_releases_both_copies(cold_engine, clock):
    bucket = await _bucket(cold_engine, "gone")
    await _put(bucket, "k", os.urandom(2 * MiB), "GLACIER")
    await bucket.restore("k", 1)
    deleter = await cold_engine.bucket(OWNER, "gone", Operation.DELETE_OBJECT, key="k")
    await deleter.delete("k")
    await _collect(cold_engine, clock)
    assert remote_keys(cold_engine, "glacier", "k.") == []
    store = cold_engine._services.chunks.store
    assert [h async for h in store.list_holders("default")] == []


async def test_an_unreachable_cold_endpoint_fails_clearly_and_moves_nothing(
    backend_kind, tmp_path, clock
):
    tiers = cold_tiers("http://127.0.0.1:9", "nowhere", attempts=1, timeout_seconds=2)
    async with engine_over(backend_kind, tmp_path, clock, tiers=tiers) as eng:
        bucket = await _bucket(eng, "stuck")
        data = os.urandom(MiB)
        with pytest.raises(BackendUnavailable):
            await _put(bucket, "new", data, "GLACIER_IR")
        await _put(bucket, "k", data)
        with pytest.raises(BackendUnavailable):
            await bucket.transition("k", "cold")
        assert await bucket.placement("k") == {"hot": len(data)}
        assert await _read(eng, "stuck", "k") == data


async def test_tiers_replaced_at_run_time_serve_at_once(
    backend_kind, tmp_path, clock, moto_server
):
    async with engine_over(backend_kind, tmp_path, clock) as eng:  # hot and warm
        bucket = await _bucket(eng, "reload")
        warm = os.urandom(MiB)
        await _put(bucket, "warm", warm, "STANDARD_IA")
        eng.replace_tiers(SERVICE, cold_tiers(moto_server.endpoint, "cold-" + uuid.uuid4().hex[:8]))
        data = os.urandom(2 * MiB)
        await _put(bucket, "ir", data, "GLACIER_IR")
        assert await bucket.placement("ir") == {"cold": len(data)}
        # The same tier pointed at another bucket: its data stays readable where it is,
        # and new writes are refused rather than scattered over two places.
        elsewhere = cold_tiers(moto_server.endpoint, "other-" + uuid.uuid4().hex[:8])
        eng.replace_tiers(SERVICE, elsewhere)
        assert await _read(eng, "reload", "ir") == data
        with pytest.raises(StorageError, match="a new place needs a new tier name"):
            await _put(bucket, "ir2", data, "GLACIER_IR")
        eng.replace_tiers(SERVICE, DEFAULT_TIERS[:1])  # a policy that drops every tier but hot
        assert await _read(eng, "reload", "ir") == data  # still readable where it is
        assert await _read(eng, "reload", "warm") == warm
        with pytest.raises(InvalidStorageClass):
            await _put(bucket, "new", data, "STANDARD_IA")


async def test_a_cold_endpoint_answering_500_mid_move_is_retried(
    backend_kind, tmp_path, clock, moto_server
):
    puts = iter(range(10**6))
    # Every other PUT fails once: botocore's retries (with backoff) carry the move.
    with FlakyProxy(moto_server.endpoint, lambda m, p: m == "PUT" and next(puts) % 2 == 0) as px:
        tiers = cold_tiers(px.endpoint, "cold-" + uuid.uuid4().hex[:8])
        async with engine_over(backend_kind, tmp_path, clock, tiers=tiers) as eng:
            bucket = await _bucket(eng, "flaky")
            data = os.urandom(3 * MiB)
            await _put(bucket, "k", data)
            await bucket.transition("k", "cold")
            assert px.failed >= 1
            assert await bucket.placement("k") == {"cold": len(data)}
            assert await _read(eng, "flaky", "k") == data


async def test_a_cold_endpoint_that_keeps_failing_moves_nothing(
    backend_kind, tmp_path, clock, moto_server
):
    with FlakyProxy(moto_server.endpoint, lambda m, p: m == "PUT" and "/k." in p) as px:
        tiers = cold_tiers(px.endpoint, "cold-" + uuid.uuid4().hex[:8], attempts=2)
        async with engine_over(backend_kind, tmp_path, clock, tiers=tiers) as eng:
            bucket = await _bucket(eng, "broken")
            data = os.urandom(MiB)
            await _put(bucket, "k", data)
            with pytest.raises(BackendUnavailable, match=r"500|InternalError"):
                await bucket.transition("k", "cold")
            assert px.failed >= 2
            assert await bucket.placement("k") == {"hot": len(data)}
            assert await _read(eng, "broken", "k") == data
            await _collect(eng, clock)  # nothing half-moved is left behind


async def test_two_cold_tiers_on_one_bucket_and_prefix_keep_apart(
    backend_kind, tmp_path, clock, moto_server
):
    shared = RemoteSettings(moto_server.endpoint, "cold-" + uuid.uuid4().hex[:8],
                            access_key=MOTO_KEY, secret_key=MOTO_SECRET)
    tiers = (
        *DEFAULT_TIERS,
        TierSettings("cold", storage_classes=("GLACIER_IR",), remote=shared),
        TierSettings("glacier", storage_classes=("GLACIER",), remote=shared, archive=True),
    )
    async with engine_over(backend_kind, tmp_path, clock, tiers=tiers) as eng:
        bucket = await _bucket(eng, "apart")
        ir, archived = os.urandom(MiB), os.urandom(MiB)
        await _put(bucket, "ir", ir, "GLACIER_IR")
        await _put(bucket, "gl", archived, "GLACIER")
        await _collect(eng, clock)  # each tier's sweep sees only its own keys
        assert await _read(eng, "apart", "ir") == ir
        await bucket.restore("gl", 1)
        assert await _read(eng, "apart", "gl") == archived


async def test_restored_copies_are_never_shared_by_clones_or_copies(cold_engine, clock):
    bucket = await _bucket(cold_engine, "clones")
    data = os.urandom(2 * MiB)
    await _put(bucket, "k", data, "GLACIER")
    await bucket.restore("k", 1)
    await cold_engine.create_bucket(OWNER, "clones-b", "us-east-1")
    source = await cold_engine.bucket(OWNER, "clones", Operation.GET_OBJECT, key="k")
    target = await cold_engine.bucket(OWNER, "clones-b", Operation.PUT_OBJECT)
    _, clone = await cold_engine.clone_object(source, "k", target, "k")
    assert not clone.restored and "x-amz-restore" not in clone.headers
    deleter = await cold_engine.bucket(OWNER, "clones", Operation.DELETE_OBJECT, key="k")
    await deleter.delete("k")
    await _collect(cold_engine, clock)  # fsck clean: nothing names a released copy
    with pytest.raises(InvalidObjectState):  # the clone is archived, not restored
        await _read(cold_engine, "clones-b", "k")
    await target.restore("k", 1)
    assert await _read(cold_engine, "clones-b", "k") == data


async def test_a_restore_of_a_version_later_superseded_still_ends(cold_engine, clock):
    bucket = await _bucket(cold_engine, "nulls")
    await _put(bucket, "k", os.urandom(MiB), "GLACIER")  # the null version
    await bucket.restore("k", 1)
    await bucket.set_versioning(ENABLED)
    await _put(bucket, "k", os.urandom(MiB))
    clock.advance(3 * DAY)
    assert await cold_engine.end_due_restores(SERVICE) == 1
    null = await bucket.head("k", "null")
    assert not null.restored and "x-amz-restore" not in null.headers
    await _collect(cold_engine, clock)


async def test_a_dropped_cold_tier_stays_readable_after_a_restart(
    backend_kind, tmp_path, clock, moto_server
):
    prefix = "t" + uuid.uuid4().hex[:10]
    tiers = cold_tiers(moto_server.endpoint, "cold-" + uuid.uuid4().hex[:8])
    data = os.urandom(2 * MiB)
    async with engine_over(backend_kind, tmp_path, clock, tiers=tiers, pool_prefix=prefix,
                           keep_pools=True) as eng:
        bucket = await _bucket(eng, "dropped")
        await _put(bucket, "k", data, "GLACIER_IR")
    async with engine_over(backend_kind, tmp_path, clock, pool_prefix=prefix) as eng:
        assert await _read(eng, "dropped", "k") == data  # the catalog knows the place
