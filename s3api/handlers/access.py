"""Who may do what (first slice): a bucket's owner may do everything in it."""

from __future__ import annotations

from gateway.engine.records import BucketRecord
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode


def require_user(ctx: RequestContext) -> str:
    if ctx.user is None:
        raise S3Error(S3ErrorCode.AccessDenied)
    return ctx.user


async def owned_bucket(ctx: RequestContext) -> BucketRecord:
    """The target bucket's record, if the caller owns it (AccessDenied otherwise)."""
    user = require_user(ctx)
    assert ctx.endpoint.bucket is not None
    record = await ctx.engine.buckets.get(ctx.endpoint.bucket)
    if record.owner != user:
        raise S3Error(S3ErrorCode.AccessDenied)
    return record
