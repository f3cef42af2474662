"""Multipart at engine level (reclaimed data, registry order) and its pure rules."""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.assembly import EngineSettings, ObjectEngine
from engine.multipart import NewUpload, PartBody
from engine.upload_records import (
    registry_after_key,
    registry_after_prefix,
    registry_key,
    split_registry_key,
)
from engine.uploads_registry import UploadsQuery
from s3api.errors import S3Error
from s3api.handlers.multipart_copy import CopySource, parse_copy_source
from tests.contract.conftest import make_backend

MiB = 1024 * 1024
PART = 5 * MiB



# -- engine level: data is reclaimed ------------------------------------------------------------


async def _body(data: bytes):
    yield data


def _opener(data: bytes):
    return lambda info: PartBody(_body(data), len(data))


@pytest.fixture
async def engine(backend_kind, tmp_path):
    backend = make_backend(backend_kind, tmp_path)
    await backend.connect()
    eng = ObjectEngine(
        backend,
        # The stripe payload path (dedupe off); tests/test_dedupe_engine.py covers chunks.
        EngineSettings(pool_prefix="t" + uuid.uuid4().hex[:10], stripe_size=MiB, dedupe=False),
    )
    await eng.prepare()
    yield eng
    for pool in (eng.meta.name, eng.data.name, eng.chunk_pool.name):
        with contextlib.suppress(Exception):
            await backend.delete_pool(pool)
    await backend.close()
    eng.close()


async def _data_objects(eng: ObjectEngine) -> set[str]:
    return {oid async for oid in eng.data.list_objects()}


async def test_engine_abort_and_replace_reclaim_data(engine):
    await engine.buckets.create("reclaim", "owner")
    uploads = engine.uploads
    info = await uploads.create("reclaim", "k", NewUpload(owner="owner"))
    part = os.urandom(5 * MiB + 10)  # 6 stripes of 1 MiB
    await uploads.upload_part("reclaim", "k", info.upload_id, 1, _opener(part))
    assert len(await _data_objects(engine)) == 6
    await uploads.upload_part("reclaim", "k", info.upload_id, 1, _opener(b"x" * 10))
    assert len(await _data_objects(engine)) == 1  # the replaced part's stripes are gone
    await uploads.upload_part("reclaim", "k", info.upload_id, 2, _opener(part))
    assert len(await _data_objects(engine)) == 7
    await uploads.abort("reclaim", "k", info.upload_id)
    assert await _data_objects(engine) == set()
    page = await uploads.list_uploads("reclaim", UploadsQuery())
    assert page.uploads == []


async def test_engine_complete_reclaims_unused_parts(engine):
    await engine.buckets.create("complete", "owner")
    uploads = engine.uploads
    info = await uploads.create("complete", "k", NewUpload(owner="owner"))
    part = os.urandom(5 * MiB)
    one = await uploads.upload_part("complete", "k", info.upload_id, 1, _opener(part))
    await uploads.upload_part("complete", "k", info.upload_id, 2, _opener(part))
    three = await uploads.upload_part("complete", "k", info.upload_id, 3, _opener(b"end"))
    entry = await uploads.complete("complete", "k", info.upload_id,
                                   [(1, one.etag), (3, three.etag)])
    assert entry.parts == 2 and entry.size == 5 * MiB + 3
    assert len(await _data_objects(engine)) == 6  # part 2's five stripes were reclaimed
    await engine.objects.delete("complete", "k")
    assert await _data_objects(engine) == set()


async def test_engine_delete_bucket_purges_uploads(engine):
    await engine.buckets.create("purge", "owner")
    info = await engine.uploads.create("purge", "k", NewUpload(owner="owner"))
    await engine.uploads.upload_part("purge", "k", info.upload_id, 1, _opener(b"x" * (2 * MiB)))
    assert len(await _data_objects(engine)) == 2
    await engine.buckets.delete("purge")
    assert await _data_objects(engine) == set()
    leftovers = [oid async for oid in engine.meta.list_objects("upload.")]
    assert leftovers == []


async def test_engine_registry_orders_by_key_then_upload(engine):
    """Keys may hold any character but NUL; \x01 and \x02 must not break (key, id) order."""
    await engine.buckets.create("order", "owner")
    keys = ["d", "d\x01", "d\x01x", "d\x02", "d\x01\x01", "d ", "c", "d"]
    made = [
        (key, (await engine.uploads.create("order", key, NewUpload(owner="owner"))).upload_id)
        for key in keys
    ]
    page = await engine.uploads.list_uploads("order", UploadsQuery())
    assert [(u.key, u.upload_id) for u in page.uploads] == sorted(made)
    page = await engine.uploads.list_uploads("order", UploadsQuery(key_marker="d\x01"))
    assert [u.key for u in page.uploads] == ["d\x01\x01", "d\x01x", "d\x02", "d "]
    page = await engine.uploads.list_uploads("order", UploadsQuery(prefix="d\x01"))
    assert [u.key for u in page.uploads] == ["d\x01", "d\x01\x01", "d\x01x"]


# -- pure rules -------------------------------------------------------------------------------

_keys = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                min_size=1, max_size=12)


# No deadline or speed check: a loaded CI machine can stall any example past 200 ms.
_PURE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PURE
@given(st.lists(st.tuples(_keys, st.sampled_from(["0a", "0b", "1f"])), min_size=2, max_size=20))
def test_registry_keys_sort_by_key_then_upload_id(pairs):
    encoded = sorted(pairs, key=lambda p: registry_key(*p).encode())
    assert encoded == sorted(pairs, key=lambda p: (p[0].encode(), p[1]))
    assert all(split_registry_key(registry_key(k, u)) == (k, u) for k, u in pairs)


@_PURE
@given(_keys, _keys)
def test_registry_seek_points(key, other):
    if other.startswith(key):
        assert registry_key(other, "ff") <= registry_after_prefix(key)
    if other != key:
        after = registry_after_key(key).encode()
        assert (registry_key(other, "00").encode() > after) == (other.encode() > key.encode())


def test_copy_source_parsing():
    assert parse_copy_source("/b/dir/k%20x") == CopySource("b", "dir/k x")
    assert parse_copy_source("b/k?versionId=null") == CopySource("b", "k", "null")
    for bad in ("b", "/b/", "b/k?versionId=abc"):
        with pytest.raises(S3Error):
            parse_copy_source(bad)
