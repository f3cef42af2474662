"""What the engine's tier tests share: writing with a storage class, reading back,
and a collector pass that must leave fsck clean."""

from __future__ import annotations

from engine import Engine, ManualClock, Operation, PutRequest
from tests.engine.conftest import OWNER, SERVICE

MiB = 1024 * 1024
DAY = 86400.0


async def body_of(data: bytes):
    for i in range(0, len(data), 256 * 1024):
        yield data[i : i + 256 * 1024]


async def put(bucket, key: str, data: bytes, storage_class: str | None = None):
    return await bucket.put(
        key, PutRequest(body=body_of(data), size=len(data), storage_class=storage_class)
    )


async def read(engine: Engine, name: str, key: str, vid: str | None = None) -> bytes:
    bucket = await engine.bucket(OWNER, name, Operation.GET_OBJECT, key=key)
    entry = await bucket.head(key, vid)
    return b"".join([p async for p in bucket.read(entry).body()])


async def collect(engine: Engine, clock: ManualClock) -> None:
    """Two collector passes two days on (marked, then removed); fsck clean after."""
    clock.advance(2 * DAY)
    await engine.collect_garbage(SERVICE, grace_seconds=0)
    await engine.collect_garbage(SERVICE, grace_seconds=0)
    fsck = await engine.fsck(SERVICE)
    assert fsck.clean and not fsck.orphan_manifests, fsck
