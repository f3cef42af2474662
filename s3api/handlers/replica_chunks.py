"""Not S3: the receiving half of a dedupe-aware transfer from another region's shipper
(engine.chunk_transfer).

``POST /bucket/key?x-atonix-chunks`` carries fingerprints (32 bytes each) and is
answered with one byte per fingerprint, ``1`` where this copy's newest versions
of the key hold the chunk. A replica PUT with ``x-atonix-replica-encoding:
chunks`` then carries the version as frames, held chunks named rather than sent;
its bytes are rebuilt here and written as those of any replica PUT, checked
against the source's ETag (a single-part source's is the MD5 of its bytes).
Both are the owner's requests, with signed replica headers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from engine import Operation, ReplicaOf
from s3api import headers as h
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket

FINGERPRINT = 32
MAX_ASKED = 1 << 17  # fingerprints per question (4 MiB): 8 GiB of 64 KiB chunks
CHUNKS = "chunks"


async def replica_chunks(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    assert ctx.endpoint.key is not None
    if h.shipped_by(ctx.request.headers, ctx.auth) is None:
        raise S3Error(S3ErrorCode.AccessDenied, "Only another region's shipper asks this")
    asked = await read_small_body(ctx, MAX_ASKED * FINGERPRINT)
    if len(asked) % FINGERPRINT:
        raise S3Error(S3ErrorCode.InvalidArgument, "Fingerprints are 32 bytes each")
    held = await bucket.held_chunks(ctx.endpoint.key)
    answer = bytes(b"01"[held.holds(asked[i:i + FINGERPRINT])]
                   for i in range(0, len(asked), FINGERPRINT))
    return web.Response(body=answer, content_type="application/octet-stream")


def chunk_encoded(headers: Mapping[str, str], replica: ReplicaOf | None) -> bool:
    """Whether a replica PUT carries chunk frames instead of the bytes themselves."""
    encoding = headers.get(h.REPLICA_ENCODING_HEADER)
    if encoding is None:
        return False
    if replica is None or encoding != CHUNKS:
        raise S3Error(S3ErrorCode.InvalidArgument, "Unknown replica encoding")
    return True


async def rebuilt_body(bucket, key: str, replica: ReplicaOf, headers: Mapping[str, str],
                       frames: AsyncIterator[bytes]) -> tuple[AsyncIterator[bytes], int,
                                                              bytes | None]:
    """(bytes, size, MD5 to check or None) of a chunk-encoded replica PUT."""
    try:
        size = int(headers.get(h.REPLICA_SIZE_HEADER, ""))
    except ValueError:
        size = -1
    if size < 0:
        raise S3Error(S3ErrorCode.InvalidArgument, "A chunk-encoded replica needs its size")
    held = await bucket.held_chunks(key)
    md5_hex = headers.get(h.REPLICA_MD5_HEADER, "")
    try:
        md5 = bytes.fromhex(md5_hex) if md5_hex else None
    except ValueError:
        md5 = None
    if md5_hex and (md5 is None or len(md5) != 16):
        raise S3Error(S3ErrorCode.InvalidArgument, "Malformed replica MD5")
    return held.rebuild(frames), size, md5


HANDLERS = {Operation.POST_OBJECT_REPLICA_CHUNKS: replica_chunks}
