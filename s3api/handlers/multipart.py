"""Multipart upload operations: create, upload part, complete, abort, list parts and uploads.

The engine (``engine.multipart``) keeps all upload state on the
backend, so any gateway process can serve any step of an upload.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from engine import NewUpload, Operation, UploadsPage, UploadsQuery, with_object_acl
from s3api import checksums
from s3api import headers as h
from s3api.body import content_md5, read_small_body
from s3api.context import RequestContext
from s3api.handlers import multipart_checksums as mc
from s3api.handlers import multipart_xml as mx
from s3api.handlers.access import authorized_bucket
from s3api.handlers.acl import check_request_acl
from s3api.handlers.multipart_copy import upload_part_copy
from s3api.handlers.object_lock import lock_request_headers
from s3api.handlers.tagging import parse_tagging_header
from s3api.responses import empty, xml_response


def _key(ctx: RequestContext) -> str:
    assert ctx.endpoint.key is not None  # routing sends only object-level requests here
    return ctx.endpoint.key


def _upload_id(ctx: RequestContext) -> str:
    return ctx.endpoint.query.get("uploadId", "")


async def create_multipart_upload(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    headers = ctx.request.headers
    stored = with_object_acl(
        h.stored_headers({k.lower(): v for k, v in headers.items()}),
        check_request_acl(headers, "object", writer=ctx.user, bucket_owner=bucket.owner),
    ) | lock_request_headers(headers)
    storage_class = mx.storage_class(headers)
    if storage_class != "STANDARD":
        stored["x-amz-storage-class"] = storage_class
    algorithm, checksum_type = mc.upload_checksum(headers)
    tags = parse_tagging_header(headers.get("x-amz-tagging"))
    info = await bucket.create_upload(
        _key(ctx),
        NewUpload(
            owner=ctx.user or bucket.owner,  # an anonymous writer's upload is the owner's
            content_type=headers.get("Content-Type"),
            user_meta=h.user_metadata(headers),
            headers=stored,
            tags=tags,
            storage_class=storage_class,
            checksum_algorithm=algorithm,
            checksum_type=checksum_type,
        ),
    )
    resp = xml_response(mx.initiate_result(bucket.name, info.key, info.upload_id))
    if algorithm:
        resp.headers["x-amz-checksum-algorithm"] = algorithm
        resp.headers[checksums.TYPE_HEADER] = checksum_type
    return resp


async def upload_part(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    number = mx.part_number(ctx.endpoint.query.get("partNumber"))
    opener = mc.part_opener(ctx, content_md5(ctx))
    part = await bucket.upload_part(_key(ctx), _upload_id(ctx), number, opener)
    return empty(headers={"ETag": part.etag, **mc.part_checksum_headers(part)})


def _location(ctx: RequestContext, bucket: str, key: str) -> str:
    scheme = ctx.request.scheme
    host = ctx.request.host
    if ctx.endpoint.target.virtual_host:
        return f"{scheme}://{host}/{quote(key)}"
    return f"{scheme}://{host}/{bucket}/{quote(key)}"


async def complete_multipart_upload(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    body = await read_small_body(ctx, mx.MAX_COMPLETE_BODY, checksums_describe_body=False)
    requested = mx.parse_complete(body)
    key = _key(ctx)
    entry = await bucket.complete_upload(
        key,
        _upload_id(ctx),
        [(p.number, p.etag) for p in requested],
        mc.object_checksums(requested, ctx.request.headers),
    )
    body = mx.complete_result(_location(ctx, bucket.name, key), bucket.name, key, entry)
    response = xml_response(body)
    response.headers.update(h.version_headers(entry))
    return response


async def abort_multipart_upload(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    await bucket.abort_upload(_key(ctx), _upload_id(ctx))
    return empty(204)


async def list_parts(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    q = ctx.endpoint.query
    max_parts = mx.count_param(q, "max-parts", mx.LIST_LIMIT, mx.LIST_LIMIT)
    marker = mx.count_param(q, "part-number-marker", 0, None)
    page = await bucket.list_parts(_key(ctx), _upload_id(ctx), marker, max_parts)
    owner = page.upload.meta.info.owner
    names = {owner: await ctx.engine.display_name(owner)}
    body = mx.list_parts_result(
        bucket.name, page.upload, page.parts, marker, max_parts, page.is_truncated, names
    )
    return xml_response(body)


async def list_multipart_uploads(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    q = ctx.endpoint.query
    encode = mx.url_encoder(q)
    query = UploadsQuery(
        prefix=q.get("prefix", ""),
        delimiter=q.get("delimiter", ""),
        key_marker=q.get("key-marker", ""),
        upload_id_marker=q.get("upload-id-marker", "") if q.get("key-marker") else "",
        max_uploads=mx.count_param(q, "max-uploads", mx.LIST_LIMIT, mx.LIST_LIMIT),
    )
    if query.max_uploads == 0:
        page = UploadsPage([], [], False, None, None)
    else:
        page = await bucket.list_uploads(query)
    names = {
        uid: await ctx.engine.display_name(uid)
        for uid in {info.owner for info in page.uploads}
    }
    body = mx.list_uploads_result(bucket.name, query, page, encode, "encoding-type" in q, names)
    return xml_response(body)


HANDLERS = {
    Operation.CREATE_MULTIPART_UPLOAD: create_multipart_upload,
    Operation.UPLOAD_PART: upload_part,
    Operation.UPLOAD_PART_COPY: upload_part_copy,
    Operation.COMPLETE_MULTIPART_UPLOAD: complete_multipart_upload,
    Operation.ABORT_MULTIPART_UPLOAD: abort_multipart_upload,
    Operation.LIST_PARTS: list_parts,
    Operation.LIST_MULTIPART_UPLOADS: list_multipart_uploads,
}
