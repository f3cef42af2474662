"""Server-side copy: stream a source object's bytes into a new object.

The copy is an ordinary put whose body is the source's payload: new stripes
under a fresh data prefix are written first, then the destination entry is
committed, then whatever it replaced is removed (the write order of every
put). Memory stays bounded by the payload reader's read-ahead and the
writer's stripe window, whatever the size.

If the source is overwritten or deleted while it is read, its stripes may
vanish under the reader; the copy then starts again from the source's
current entry (a deleted source ends as NoSuchKey).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from engine.buckets import BucketRef
from engine.errors import CopySourceTooLarge, NoSuchKey
from engine.object_io import ObjectReader, PutRequest
from engine.objects import ObjectService
from engine.records import ObjectEntry
from storage import ObjectNotFound

MAX_COPY_SOURCE = 5 * 1024**3  # S3: larger objects are copied with UploadPartCopy
COPY_ATTEMPTS = 3

# Given the source entry and a stream of its bytes, the put that makes the copy
# (it may raise to refuse the copy, e.g. a copy-source condition that fails).
CopyPlan = Callable[[ObjectEntry, AsyncIterator[bytes]], PutRequest]


class _SourceVanished(Exception):
    """The source's payload disappeared while it was being read."""


async def _source_bytes(reader: ObjectReader) -> AsyncIterator[bytes]:
    try:
        async for chunk in reader.body():
            yield chunk
    except ObjectNotFound:
        raise _SourceVanished from None


async def copy_object(
    objects: ObjectService,
    source: tuple[BucketRef, str],
    destination: tuple[BucketRef, str],
    plan: CopyPlan,
    source_version: str | None = None,
) -> tuple[ObjectEntry, ObjectEntry]:
    """Copy (bucket, key) ``source`` to ``destination``; (source entry, new entry)."""
    src_bucket, src_key = source
    dst_bucket, dst_key = destination
    for _ in range(COPY_ATTEMPTS):
        reader = await objects.open(src_bucket, src_key, None, source_version)
        entry = reader.entry
        if entry.size > MAX_COPY_SOURCE:
            raise CopySourceTooLarge(
                "The specified copy source is larger than the maximum allowable size for a "
                f"copy source: {MAX_COPY_SOURCE}"
            )
        request = plan(entry, _source_bytes(reader))
        try:
            return entry, await objects.put(dst_bucket, dst_key, request)
        except _SourceVanished:
            continue
    raise NoSuchKey(Key=src_key)
