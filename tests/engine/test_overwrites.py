"""Racing overwrites leave no unreferenced payload, and stripes a crash left are collected.

Before the overwrite commit was guarded, two writers of one key could both
read the same old entry, both write, and both release that one entry: the
payload of whichever was overwritten first stayed behind, named by nothing.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from engine import Engine, ManualClock, Operation, PutRequest
from engine.layout import stripe_oid
from tests.engine.conftest import OWNER, SERVICE, engine_over

KiB = 1024
WRITERS = 12


def _settings(dedupe: bool) -> dict:
    return dict(
        inline_limit=4 * KiB,  # every body below goes to stripes or chunks
        stripe_size=64 * KiB,
        dedupe=dedupe,
        release_inline_bytes=1 << 40,  # released at once, not through the queue
    )


@pytest.fixture(params=[False, True], ids=["stripes", "chunks"])
async def engine_of(request, backend_kind, tmp_path):
    clock = ManualClock()
    async with engine_over(backend_kind, tmp_path, clock, **_settings(request.param)) as eng:
        yield eng, clock


async def _body(data: bytes):
    yield data


async def _data_objects(engine: Engine) -> set[str]:
    return {oid async for oid in engine._services.data.list_objects()}


async def _live_stripes(engine: Engine, bucket) -> set[str]:
    live: set[str] = set()
    async for _, entry in bucket.entries():
        for seg in entry.segments:
            if not seg.is_chunked:
                live |= {stripe_oid(seg.data_prefix, n) for n in range(seg.stripes)}
    return live


async def test_racing_overwrites_leave_nothing_unreferenced(engine_of):
    engine, _ = engine_of
    await engine.create_bucket(OWNER, "race", "us-east-1")
    bucket = await engine.bucket(OWNER, "race", Operation.PUT_OBJECT)
    bodies = [random.Random(i).randbytes(150 * KiB + i) for i in range(WRITERS)]
    for _round in range(3):
        await asyncio.gather(
            *(bucket.put("k", PutRequest(body=_body(b), size=len(b))) for b in bodies)
        )
    current = await (await engine.bucket(OWNER, "race", Operation.GET_OBJECT)).head("k")
    assert current.size in {len(b) for b in bodies}
    # Nothing but the surviving entry's payload is left: stripes ...
    assert await _data_objects(engine) == await _live_stripes(engine, bucket)
    # ... and manifests (a lost overwrite's manifest would be an orphan here).
    report = await engine.fsck(SERVICE)
    assert report.orphan_manifests == [] and report.orphan_stripes == []
    assert report.clean


async def test_stripes_a_crash_left_are_collected_once_stale(engine_of):
    engine, clock = engine_of
    await engine.create_bucket(OWNER, "crash", "us-east-1")
    bucket = await engine.bucket(OWNER, "crash", Operation.PUT_OBJECT)
    body = random.Random(1).randbytes(100 * KiB)
    await bucket.put("kept", PutRequest(body=_body(body), size=len(body)))
    kept = await _data_objects(engine)
    # What a crash between the stripes and the commit leaves: stripes nothing names.
    data = engine._services.data
    lost = {stripe_oid(f"{uuid.uuid4().hex}.{uuid.uuid4().hex}", n) for n in range(3)}
    for oid in lost:
        await data.write_full(oid, b"x" * KiB)
    report = await engine.fsck(SERVICE)
    assert set(report.orphan_stripes) == lost and report.removed_stripes == 0
    await engine.collect_garbage(SERVICE, 0)  # young: an upload may still be writing them
    assert await _data_objects(engine) == kept | lost
    # Past the stale threshold (dedupe's stale_ref_seconds, a day). The stripes' mtimes
    # come from the backend's clock, which ran on while the test did: an hour of margin.
    clock.advance(25 * 3600)
    result = await engine.collect_garbage(SERVICE, 0)
    assert result.report["stripes_removed"] == len(lost)
    assert await _data_objects(engine) == kept
    reader = await engine.bucket(OWNER, "crash", Operation.GET_OBJECT)
    entry = await reader.head("kept")
    assert b"".join([p async for p in reader.read(entry).body()]) == body
    assert (await engine.fsck(SERVICE)).orphan_stripes == []
