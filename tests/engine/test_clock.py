"""One injected clock drives every time-dependent path of the engine.

The engine fixture runs on a ``ManualClock``: stored timestamps come from it,
and moving it by hours or days ages data at once (GC grace, release-queue
adoption, lease expiry), with no waiting.
"""

from __future__ import annotations

import os
import random

from engine import (
    BUCKET_ACL_ITEM,
    Engine,
    ManualClock,
    NewUpload,
    Operation,
    PartBody,
    PutRequest,
)
from engine.release_queue import encode_segments, queue_object
from tests.engine.conftest import OWNER, SERVICE

HOUR = 3600.0
DAY = 24 * HOUR


async def _body(data: bytes):
    yield data


def _random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def test_stored_timestamps_come_from_the_clock(engine: Engine, clock: ManualClock):
    record = await engine.create_bucket(OWNER, "stamps", "us-east-1")
    assert record.created == clock.time()
    clock.advance(DAY)
    bucket = await engine.bucket(OWNER, "stamps", Operation.PUT_OBJECT)
    entry = await bucket.put("k", PutRequest(body=_body(b"x"), size=1))
    assert entry.mtime == clock.time()
    clock.advance(DAY)
    info = await bucket.create_upload("big", NewUpload(owner="alice"))
    assert info.initiated == clock.time()
    clock.advance(HOUR)
    part = await bucket.upload_part(
        "big", info.upload_id, 1, lambda _info: PartBody(_body(b"p" * 10), 10)
    )
    assert part.mtime == clock.time()
    user, _ = await engine.identities(SERVICE).create_user("carol", "Carol")
    assert user.created == clock.time()
    # What SigV4 and POST policies check (datetimes hold microseconds).
    assert abs(engine.now().timestamp() - clock.time()) < 1e-5


async def test_gc_grace_is_measured_on_the_clock(engine: Engine, clock: ManualClock):
    await engine.create_bucket(OWNER, "gc-grace", "us-east-1")
    bucket = await engine.bucket(OWNER, "gc-grace", Operation.PUT_OBJECT)
    data = _random(512 * 1024, seed=7)  # past the inline limit: stored as chunks
    await bucket.put("k", PutRequest(body=_body(data), size=len(data)))
    chunks, _ = await engine.chunk_pool_bytes(SERVICE)
    assert chunks > 0
    await bucket.delete("k")
    first = await engine.collect_garbage(SERVICE)
    assert first.report["marked"] == chunks and first.reclaimed_bytes == 0
    clock.advance(HOUR - 1)  # the grace (EngineSettings.gc_grace_seconds) not yet over
    assert (await engine.collect_garbage(SERVICE)).report["waiting"] == chunks
    assert (await engine.chunk_pool_bytes(SERVICE))[0] == chunks
    clock.advance(2)
    last = await engine.collect_garbage(SERVICE)
    assert last.report["removed"] == chunks and last.reclaimed_bytes > 0
    assert await engine.chunk_pool_bytes(SERVICE) == (0, 0)


async def test_release_adoption_age_is_measured_on_the_clock(engine: Engine, clock: ManualClock):
    """Another process's queued release is left to it until the record is old enough."""
    releases = engine._services.releases  # the queue is internal; its age rule is not
    key = f"{clock.time():017.6f}.{os.urandom(8).hex()}"  # queued just now, elsewhere
    await engine._services.meta.omap_set(queue_object(0), {key: encode_segments([])})
    assert await releases.drain() == 0
    clock.advance(releases.adopt_after + 1)
    assert await releases.drain() == 1
    assert await releases.pending() == []


async def test_leases_lapse_on_the_clock(engine: Engine, clock: ManualClock):
    first = engine.lease(SERVICE, "mover", ttl=60.0)
    second = engine.lease(SERVICE, "mover", ttl=60.0)
    assert await first.try_acquire()
    clock.advance(59)
    assert not await second.try_acquire()
    clock.advance(2)
    assert await second.try_acquire()


async def test_config_documents_do_not_depend_on_time(engine: Engine, clock: ManualClock):
    """A control: aging by a year changes nothing that is not about time."""
    await engine.create_bucket(OWNER, "cfg", "us-east-1")
    await engine.write_bucket_config(
        OWNER, "cfg", BUCKET_ACL_ITEM, b"public-read", Operation.PUT_BUCKET_ACL
    )
    clock.advance(365 * DAY)
    _, acl = await engine.read_bucket_config(
        OWNER, "cfg", BUCKET_ACL_ITEM, Operation.GET_BUCKET_ACL
    )
    assert acl == b"public-read"
