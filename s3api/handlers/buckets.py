"""Bucket operations: create, head, delete, location."""

from __future__ import annotations

from aiohttp import web

from engine import (
    BUCKET_ACL_ITEM,
    ENABLED,
    LOCK_CONFIG,
    PRIVATE,
    VERSIONING_CONFIG,
    BucketAlreadyOwnedByYou,
    LockConfig,
    Operation,
)
from s3api import xml
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket, require_user
from s3api.handlers.acl import check_request_acl
from s3api.responses import empty, xml_response


async def create_bucket(ctx: RequestContext) -> web.StreamResponse:
    require_user(ctx)  # refused before the body is read (the engine refuses too)
    canned = check_request_acl(ctx.request.headers, "bucket")
    body = await read_small_body(ctx)
    if body.strip():
        config = xml.parse(body)
        if xml.local_name(config.tag) != "CreateBucketConfiguration":
            raise S3Error(S3ErrorCode.MalformedXML)
        location = xml.child_text(config, "LocationConstraint")
        if location and location != ctx.settings.region:
            raise S3Error(
                S3ErrorCode.InvalidLocationConstraint,
                f"The {location} location constraint is incompatible with the region "
                f"({ctx.settings.region}) this endpoint serves.",
            )
    assert ctx.endpoint.bucket is not None
    # The ACL is written with the bucket itself: no instant where it has the wrong one.
    configs = {BUCKET_ACL_ITEM: canned.encode()} if canned not in (None, PRIVATE) else {}
    lock = ctx.request.headers.get("x-amz-bucket-object-lock-enabled", "").strip().lower()
    if lock == "true":
        # Object lock comes with versioning, enabled for good (as on AWS).
        configs |= {LOCK_CONFIG: LockConfig().encode(), VERSIONING_CONFIG: ENABLED.encode()}
    try:
        await ctx.engine.create_bucket(
            ctx.principal, ctx.endpoint.bucket, ctx.settings.region, configs or None
        )
    except BucketAlreadyOwnedByYou:
        # As us-east-1 (and Ceph RGW) answer: creating one's own bucket again succeeds and
        # changes nothing, unless it asks for another ACL than the bucket has.
        _, current = await ctx.engine.read_bucket_config(
            ctx.principal, ctx.endpoint.bucket, BUCKET_ACL_ITEM, ctx.endpoint.name
        )
        if (current.decode() if current else PRIVATE) != (canned or PRIVATE):
            raise S3Error(S3ErrorCode.BucketAlreadyExists) from None
    return empty(headers={"Location": "/" + ctx.endpoint.bucket})


MAX_BUCKETS_PER_USER = 1000  # reported by read-stats (no quota is enforced)


async def head_bucket(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx, fresh=True)
    headers = {"x-amz-bucket-region": bucket.record.region}
    if ctx.endpoint.query.get("read-stats") == "true":
        # Ceph RGW's extension: the bucket's object count and bytes (a walk of its index).
        count = size = 0
        async for _, entry in bucket.entries():
            count += 1
            size += entry.size
        headers.update({
            "X-RGW-Object-Count": str(count),
            "X-RGW-Bytes-Used": str(size),
            "X-RGW-Quota-Max-Buckets": str(MAX_BUCKETS_PER_USER),
        })
    return empty(headers=headers)


async def delete_bucket(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx, fresh=True)
    await bucket.delete_bucket()
    return empty(204)


async def get_bucket_location(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx, fresh=True)
    # us-east-1 is reported as an empty constraint, as AWS does.
    region = "" if bucket.record.region == "us-east-1" else bucket.record.region
    return xml_response(xml.render_text("LocationConstraint", region))


HANDLERS = {
    Operation.CREATE_BUCKET: create_bucket,
    Operation.HEAD_BUCKET: head_bucket,
    Operation.DELETE_BUCKET: delete_bucket,
    Operation.GET_BUCKET_LOCATION: get_bucket_location,
}
