"""Object operations: PutObject, GetObject, HeadObject, DeleteObject."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from gateway.engine.objects import PutRequest
from s3api import headers as h
from s3api.body import request_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import owned_bucket
from s3api.responses import empty


def _content_md5(ctx: RequestContext) -> bytes | None:
    value = ctx.request.headers.get("Content-MD5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error(S3ErrorCode.InvalidDigest)
    return digest


async def put_object(ctx: RequestContext) -> web.StreamResponse:
    record = await owned_bucket(ctx)
    assert ctx.endpoint.key is not None
    md5 = _content_md5(ctx)
    body, size = request_body(ctx)
    headers = ctx.request.headers
    entry = await ctx.engine.objects.put(
        record.name,
        ctx.endpoint.key,
        PutRequest(
            body=body,
            size=size,
            content_type=headers.get("Content-Type"),
            user_meta=h.user_metadata(headers),
            headers=h.stored_headers({k.lower(): v for k, v in headers.items()}),
            content_md5=md5,
        ),
    )
    return empty(headers={"ETag": entry.etag})


async def _open(ctx: RequestContext, with_range: bool):
    record = await owned_bucket(ctx)
    assert ctx.endpoint.key is not None
    byte_range = h.parse_range(ctx.request.headers.get("Range")) if with_range else None
    return await ctx.engine.objects.open(record.name, ctx.endpoint.key, byte_range), byte_range


async def get_object(ctx: RequestContext) -> web.StreamResponse:
    reader, byte_range = await _open(ctx, with_range=True)
    entry = reader.entry
    resp = web.StreamResponse(status=206 if byte_range else 200, headers=h.object_headers(entry))
    resp.content_length = reader.length
    if byte_range:
        resp.headers["Content-Range"] = f"bytes {reader.start}-{reader.end - 1}/{entry.size}"
    await resp.prepare(ctx.request)
    async for chunk in reader.body():
        await resp.write(chunk)
        ctx.bytes_out += len(chunk)
    await resp.write_eof()
    return resp


async def head_object(ctx: RequestContext) -> web.StreamResponse:
    reader, _ = await _open(ctx, with_range=False)
    headers = h.object_headers(reader.entry)
    headers["Content-Length"] = str(reader.entry.size)
    return web.Response(status=200, headers=headers)


async def delete_object(ctx: RequestContext) -> web.StreamResponse:
    record = await owned_bucket(ctx)
    assert ctx.endpoint.key is not None
    await ctx.engine.objects.delete(record.name, ctx.endpoint.key)
    return empty(204)


HANDLERS = {
    "PutObject": put_object,
    "GetObject": get_object,
    "HeadObject": head_object,
    "DeleteObject": delete_object,
}
