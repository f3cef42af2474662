"""Object operations: PutObject, GetObject, HeadObject, DeleteObject.

PutObject verifies Content-MD5 and any announced ``x-amz-checksum-*`` (in a
header or the aws-chunked trailer) before committing, stores the checksum
(CRC64NVME when none was sent, as S3 does) and the ``x-amz-tagging`` tags,
and honours ``If-None-Match: *`` / ``If-Match`` atomically in the engine.
GET/HEAD evaluate conditional headers (``s3api.handlers.conditions``),
apply ``response-*`` overrides and report checksums on
``x-amz-checksum-mode: ENABLED``. DeleteObject honours ``If-Match``.
"""

from __future__ import annotations

import logging

from aiohttp import web

from engine import ObjectEntry, ObjectReader, Operation, PutRequest, with_object_acl
from s3api import checksums
from s3api import headers as h
from s3api.body import content_md5, open_body
from s3api.context import RequestContext
from s3api.handlers.access import authorized_bucket
from s3api.handlers.acl import check_request_acl
from s3api.handlers.conditions import (
    Outcome,
    ReadConditions,
    delete_condition,
    precondition_failed,
    write_condition,
)
from s3api.handlers.object_lock import bypass_asked, lock_request_headers, lock_response_headers
from s3api.handlers.object_parts import open_part, part_headers
from s3api.handlers.replica_chunks import chunk_encoded, rebuilt_body
from s3api.handlers.tagging import parse_tagging_header
from s3api.responses import empty

log = logging.getLogger("atonix.s3")


async def put_object(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    assert ctx.endpoint.key is not None
    headers = ctx.request.headers
    condition = write_condition(headers)
    tags = parse_tagging_header(headers.get("x-amz-tagging"))
    canned = check_request_acl(headers, "object", writer=ctx.user, bucket_owner=bucket.owner)
    md5 = content_md5(ctx)
    body = open_body(ctx, default_checksum=checksums.DEFAULT_ALGORITHM)
    replica = h.replica_of(headers, ctx.auth)
    stream, size, sums = body.stream, body.size, lambda: body.checksums
    if chunk_encoded(headers, replica):  # another region's dedupe-aware transfer
        assert replica is not None
        stream, size, md5 = await rebuilt_body(bucket, ctx.endpoint.key, replica, headers,
                                               body.stream)
        sums = dict  # the frames' checksums say nothing of the bytes
    entry = await bucket.put(
        ctx.endpoint.key,
        PutRequest(
            body=stream,
            size=size,
            content_type=headers.get("Content-Type"),
            user_meta=h.user_metadata(headers),
            headers=with_object_acl(
                h.stored_headers({k.lower(): v for k, v in headers.items()}), canned
            )
            | lock_request_headers(headers),
            content_md5=md5,
            tags=tags,
            checksums=sums,
            condition=condition,
            storage_class=headers.get("x-amz-storage-class"),
            replica=replica,
        ),
    )
    return empty(
        headers={
            "ETag": entry.etag,
            **h.checksum_headers(entry.checksums),
            **h.version_headers(entry),
        }
    )


def _not_modified(ctx: RequestContext, entry: ObjectEntry) -> web.Response | None:
    """A 304 answer if the conditional headers say so; raises 412 when one fails."""
    conditions = ReadConditions.from_headers(ctx.request.headers)
    outcome, condition = conditions.evaluate(entry, ctx.engine.clock.time())
    if outcome is Outcome.PRECONDITION_FAILED:
        raise precondition_failed(condition)
    if outcome is Outcome.NOT_MODIFIED:
        return web.Response(status=304, headers=h.not_modified_headers(h.object_headers(entry)))
    return None


async def _open(ctx: RequestContext) -> tuple[ObjectReader, tuple | None] | web.Response:
    """(reader, the byte range served or None), or the 304 answer."""
    bucket = await authorized_bucket(ctx)
    assert ctx.endpoint.key is not None
    version = h.version_id(ctx.endpoint.query)
    if "partNumber" in ctx.endpoint.query:  # one part of the object, as a range
        reader, part_range = await open_part(ctx, bucket, version)
        return _not_modified(ctx, reader.entry) or (reader, part_range)
    # The engine checks the ACL of the very entry served.
    entry = await bucket.head(ctx.endpoint.key, version)
    answer = _not_modified(ctx, entry)
    if answer is not None:
        return answer
    byte_range = h.parse_range(ctx.request.headers.get("Range"))
    return bucket.read(entry, byte_range), byte_range


def _response_headers(ctx: RequestContext, reader: ObjectReader, ranged: bool) -> dict[str, str]:
    entry = reader.entry
    headers = h.object_headers(entry) | part_headers(ctx, reader) | h.version_headers(entry)
    headers |= lock_response_headers(entry)
    if ranged:
        headers["Content-Range"] = f"bytes {reader.start}-{reader.end - 1}/{entry.size}"
    elif h.checksum_mode_enabled(ctx.request.headers):
        # A checksum describes the whole object; a range or part answer carries none.
        headers |= h.checksum_headers(entry.checksums)
    headers |= h.response_overrides(ctx.endpoint.query, anonymous=ctx.user is None)
    return headers


async def get_object(ctx: RequestContext) -> web.StreamResponse:
    opened = await _open(ctx)
    if isinstance(opened, web.Response):
        return opened
    reader, byte_range = opened
    headers = _response_headers(ctx, reader, ranged=byte_range is not None)
    status = 206 if byte_range else 200
    if reader.entry.is_inline and not reader.archived:
        # Already in memory: one Response sends headers and body in a single write.
        body = reader.entry.inline[reader.start : reader.end]
        ctx.bytes_out += len(body)
        return web.Response(status=status, headers=headers, body=body)
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = reader.length
    body = await reader.start_body()  # a corrupt first chunk fails before the headers
    await resp.prepare(ctx.request)
    try:
        async for chunk in body:
            await resp.write(chunk)
            ctx.bytes_out += len(chunk)
    except Exception:
        # The headers are sent: cutting the connection is the only way left to
        # tell the client the body is bad (S3 clients then retry).
        log.exception("GET %s failed after its headers were sent", ctx.endpoint.key)
        if ctx.request.transport is not None:
            ctx.request.transport.abort()
        return resp
    await resp.write_eof()
    return resp


async def head_object(ctx: RequestContext) -> web.StreamResponse:
    opened = await _open(ctx)
    if isinstance(opened, web.Response):
        return opened
    reader, byte_range = opened
    headers = _response_headers(ctx, reader, ranged=byte_range is not None)
    headers["Content-Length"] = str(reader.length)
    return web.Response(status=206 if byte_range else 200, headers=headers)


async def delete_object(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    assert ctx.endpoint.key is not None
    version = h.version_id(ctx.endpoint.query)
    headers = ctx.request.headers
    condition = delete_condition(
        headers.get("If-Match"),
        headers.get("x-amz-if-match-last-modified-time"),
        headers.get("x-amz-if-match-size"),
    )
    replica = h.replica_of(headers, ctx.auth)
    if replica is not None:  # a delete marker made in another region
        done = await bucket.put_marker_replica(ctx.endpoint.key, replica)
        return empty(204, headers=_deleted_headers(done, None))
    done = await bucket.delete(
        ctx.endpoint.key, condition, version, bypass_asked(headers), headers.get("x-amz-mfa"),
        shipped_by=h.shipped_by(headers, ctx.auth),
    )
    return empty(204, headers=_deleted_headers(done, version))


def _deleted_headers(done: ObjectEntry | None, version: str | None) -> dict[str, str]:
    """What a DELETE tells of versions: the marker it made, or the version it removed."""
    if done is None or not done.stamp:
        return {}  # unversioned (written before versioning), or no such version
    out = {"x-amz-version-id": done.version_id or h.NULL_VERSION}
    if done.delete_marker:
        out["x-amz-delete-marker"] = "true"
    return out


HANDLERS = {
    Operation.PUT_OBJECT: put_object,
    Operation.GET_OBJECT: get_object,
    Operation.HEAD_OBJECT: head_object,
    Operation.DELETE_OBJECT: delete_object,
}
