"""CORS: Put/Get/DeleteBucketCors, preflight OPTIONS, and headers on actual requests.

The rules themselves are evaluated by the pure ``s3api.cors``. A preflight is
never authenticated (browsers send no credentials with it); it reads the
bucket's rules straight from the backend like every configuration read.
"""

from __future__ import annotations

import logging

from aiohttp import web

from engine import CORS_ITEM, NoSuchBucket, Operation
from s3api import cors
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.bucket_config import read_config_body, read_owned_config, write_owned_config
from s3api.responses import empty, xml_response

log = logging.getLogger("atonix.s3")


async def put_bucket_cors(ctx: RequestContext) -> web.StreamResponse:
    bucket, body = await read_config_body(ctx)
    rules = cors.parse_configuration(body)
    await write_owned_config(ctx, CORS_ITEM, cors.encode(rules), bucket)
    return empty()


async def get_bucket_cors(ctx: RequestContext) -> web.StreamResponse:
    record, stored = await read_owned_config(ctx, CORS_ITEM)
    if stored is None:
        raise S3Error(S3ErrorCode.NoSuchCORSConfiguration, BucketName=record.name)
    return xml_response(cors.render_configuration(cors.decode(stored)))


async def delete_bucket_cors(ctx: RequestContext) -> web.StreamResponse:
    await write_owned_config(ctx, CORS_ITEM, None)
    return empty(204)


async def preflight(ctx: RequestContext) -> web.StreamResponse:
    """OPTIONS on a bucket or object: 200 with the matching rule's headers, or 400/403."""
    headers = ctx.request.headers
    origin = headers.get("Origin")
    method = headers.get("Access-Control-Request-Method")
    if not origin:
        raise S3Error(S3ErrorCode.BadRequest, cors.NO_ORIGIN)
    if ctx.endpoint.bucket is None:
        raise cors.forbidden("CORSResponse: Bucket not found", method, "BUCKET")
    try:
        _, stored = await ctx.engine.read_bucket_config(
            ctx.principal, ctx.endpoint.bucket, CORS_ITEM, ctx.endpoint.name
        )
    except NoSuchBucket:
        raise cors.forbidden("CORSResponse: Bucket not found", method, "BUCKET") from None
    rules = cors.decode(stored) if stored is not None else None
    resource_type = "OBJECT" if ctx.endpoint.key is not None else "BUCKET"
    allowed = cors.preflight_headers(
        rules, origin, method, headers.get("Access-Control-Request-Headers"), resource_type
    )
    return empty(headers=allowed)


async def actual_request_headers(ctx: RequestContext) -> dict[str, str]:
    """CORS headers for a (non-preflight) request with an Origin; {} when none apply.

    Never raises: a missing bucket or an unreachable backend is the request's
    own answer to give, not a reason to fail the CORS decoration.
    """
    origin = ctx.request.headers.get("Origin")
    if not origin or ctx.endpoint.bucket is None:
        return {}
    try:
        # Read as a preflight would: the rules decide what a browser may see, for anyone.
        _, stored = await ctx.engine.read_bucket_config(
            ctx.principal, ctx.endpoint.bucket, CORS_ITEM, Operation.OPTIONS_BUCKET
        )
    except Exception as exc:  # see the docstring
        log.debug("no CORS headers for %s: %r", ctx.endpoint.bucket, exc)
        return {}
    if stored is None:
        return {}
    # A browser's actual request may still carry the method it announced in its preflight.
    method = ctx.request.headers.get("Access-Control-Request-Method") or ctx.request.method
    return cors.response_headers(cors.decode(stored), origin, method)


HANDLERS = {
    Operation.PUT_BUCKET_CORS: put_bucket_cors,
    Operation.GET_BUCKET_CORS: get_bucket_cors,
    Operation.DELETE_BUCKET_CORS: delete_bucket_cors,
    Operation.OPTIONS_BUCKET: preflight,
    Operation.OPTIONS_OBJECT: preflight,
}
