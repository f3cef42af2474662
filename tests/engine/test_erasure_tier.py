"""Erasure-coded warm tiers: the packs' bytes in an erasure-coded pool (no omap
there), their references in a replicated catalog beside it. On RADOS the tests
start a three-OSD cluster of their own (k=2, m=1, failure domain osd); on the
embedded backend the data pool is a plain one, used the same way."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid

import pytest

from engine import DEFAULT_TIERS, Engine, ErasureCode, Operation, TierSettings
from storage import PoolNotFound, StorageError
from storage.factory import open_backend
from tests.engine.conftest import OWNER, engine_over
from tests.engine.tier_helpers import MiB, collect, put, read

ERASURE = ErasureCode(k=2, m=1, failure_domain="osd")
TIERS = (DEFAULT_TIERS[0], TierSettings(
    "warm", zstd_level=9, storage_classes=("STANDARD_IA",), reported_class="STANDARD_IA",
    erasure=ERASURE,
))


@pytest.fixture(params=["local", "rados-ec"])
async def ec_engine(request, tmp_path, clock):
    conf = None
    if request.param == "rados-ec":
        conf = request.getfixturevalue("three_osd_ceph")
        backend = open_backend("rados", ceph_conf=conf)
    else:
        backend = open_backend("local", data_dir=tmp_path / "store")
    prefix = "t" + uuid.uuid4().hex[:10]
    async with engine_over("local", tmp_path, clock, backend=backend, tiers=TIERS,
                           pool_prefix=prefix, gc_grace_seconds=3600.0,
                           release_inline_bytes=1 << 40) as eng:
        eng.test_ceph_conf = conf  # type: ignore[attr-defined]
        eng.test_backend = backend  # type: ignore[attr-defined]
        eng.test_prefix = prefix  # type: ignore[attr-defined]
        yield eng


def data_pool(engine: Engine) -> str:
    return f"{engine.test_prefix}.chunks.warm.ec"


async def data_objects(engine: Engine) -> list[str]:
    try:
        return [n async for n in engine.test_backend.pool(data_pool(engine)).list_objects()]
    except PoolNotFound:  # made on the tier's first write
        return []


async def _bucket(engine: Engine, name: str):
    await engine.create_bucket(OWNER, name, "us-east-1")
    return await engine.bucket(OWNER, name, Operation.PUT_OBJECT)


async def test_a_warm_write_puts_its_packs_bytes_in_the_erasure_coded_pool(ec_engine):
    bucket = await _bucket(ec_engine, "erasure")
    data = os.urandom(6 * MiB)
    entry = await put(bucket, "big", data, "STANDARD_IA")
    assert entry.headers["x-amz-storage-class"] == "STANDARD_IA"
    assert await bucket.placement("big") == {"warm": len(data)}
    stored = await data_objects(ec_engine)
    assert stored and all(n.startswith("k.") for n in stored)  # whole packs, no lone chunks
    assert 1 <= len(stored) <= 3
    catalog = ec_engine.test_backend.pool(f"{ec_engine.test_prefix}.chunks.warm")
    for name in stored:  # the catalog names each one and holds none of its bytes
        oid = name.rsplit(".", 1)[0]
        assert (await catalog.get_xattrs(oid))["remote"].decode() == name
        assert await catalog.read(oid) == b""
    assert await read(ec_engine, "erasure", "big") == data
    conf = ec_engine.test_ceph_conf
    if conf is not None:  # RADOS made it erasure-coded, k=2 m=1 across OSDs
        profile = subprocess.run(
            ["ceph", "-c", conf, "osd", "pool", "get", data_pool(ec_engine),
             "erasure_code_profile"], capture_output=True, text=True, timeout=30,
        ).stdout
        assert ERASURE.profile_name in profile


async def test_moves_to_the_erasure_coded_tier_and_back_leave_nothing_behind(ec_engine, clock):
    bucket = await _bucket(ec_engine, "moves")
    data = os.urandom(5 * MiB)
    await put(bucket, "k", data)
    moved = await bucket.transition("k", "warm")
    assert moved.moved_bytes == len(data)
    assert await bucket.placement("k") == {"warm": len(data)}
    assert await data_objects(ec_engine)
    assert await read(ec_engine, "moves", "k") == data
    await bucket.transition("k", "hot")
    assert await bucket.placement("k") == {"hot": len(data)}
    await collect(ec_engine, clock)  # fsck clean after
    assert await data_objects(ec_engine) == []  # packs went with the collector
    assert await read(ec_engine, "moves", "k") == data


async def test_a_crashed_pack_write_is_swept_after_the_grace(ec_engine, clock):
    bucket = await _bucket(ec_engine, "sweep")
    await put(bucket, "k", os.urandom(2 * MiB), "STANDARD_IA")
    pool = ec_engine.test_backend.pool(data_pool(ec_engine))
    # What a crash between the data write and the catalog write leaves behind.
    await pool.write_full("k.0123456789abcdef.00000000deadbeef", b"unnamed")
    before = await data_objects(ec_engine)
    await collect(ec_engine, clock)
    after = await data_objects(ec_engine)
    assert "k.0123456789abcdef.00000000deadbeef" not in after
    assert len(after) == len(before) - 1
    assert len(await read(ec_engine, "sweep", "k")) == 2 * MiB


async def test_a_replicated_pool_in_the_erasure_pools_place_is_refused(three_osd_ceph):
    backend = open_backend("rados", ceph_conf=three_osd_ceph)
    await backend.connect()
    name = "t" + uuid.uuid4().hex[:10] + ".chunks.warm.ec"
    try:
        await backend.create_pool(name)  # replicated, by mistake
        with pytest.raises(StorageError, match="not erasure-coded"):
            await backend.create_pool(name, ERASURE)
        await backend.create_pool(name + "2", ERASURE)
        await backend.create_pool(name + "2", ERASURE)  # again: nothing to do
    finally:
        for made in (name, name + "2"):
            with contextlib.suppress(Exception):
                await backend.delete_pool(made)
        await backend.close()
