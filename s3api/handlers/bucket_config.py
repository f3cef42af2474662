"""Shared steps of the bucket configuration operations (tagging, CORS, versioning).

Documents are read and written through the engine's ``read_bucket_config`` /
``write_bucket_config``, never through the cached bucket record, so every
gateway sees a change at once. Only the bucket's owner may read or change
them (the engine decides, on the very record the document belongs to).
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from engine import AuthorizedBucket, BucketRecord
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket

MAX_CONFIG_BODY = 64 * 1024  # AWS's limit for CORS and tagging documents


def _bucket(ctx: RequestContext) -> str:
    assert ctx.endpoint.bucket is not None
    return ctx.endpoint.bucket


async def read_owned_config(ctx: RequestContext, item: str) -> tuple[BucketRecord, bytes | None]:
    """The caller's bucket and its ``item`` document (None when unset)."""
    return await ctx.engine.read_bucket_config(
        ctx.principal, _bucket(ctx), item, ctx.endpoint.name
    )


async def write_owned_config(
    ctx: RequestContext, item: str, value: bytes | None, bucket: AuthorizedBucket | None = None
) -> None:
    """Store (or with None remove) the ``item`` document of the caller's bucket: of exactly
    ``bucket`` when its access was decided before (a body was read meanwhile)."""
    if bucket is not None:
        await bucket.write_config(item, value)
        return
    await ctx.engine.write_bucket_config(
        ctx.principal, _bucket(ctx), item, value, ctx.endpoint.name
    )


async def read_config_body(ctx: RequestContext) -> tuple[AuthorizedBucket, bytes]:
    """The caller's bucket and a configuration body, checked against Content-MD5 when
    the client sent one."""
    bucket = await authorized_bucket(ctx)  # NoSuchBucket, AccessDenied before body errors
    body = await read_small_body(ctx, MAX_CONFIG_BODY)
    md5 = ctx.request.headers.get("Content-MD5")
    if md5 is not None:
        try:
            digest = base64.b64decode(md5, validate=True)
        except (binascii.Error, ValueError):
            digest = b""
        if len(digest) != 16:
            raise S3Error(S3ErrorCode.InvalidDigest)
        if hashlib.md5(body).digest() != digest:
            raise S3Error(S3ErrorCode.BadDigest)
    return bucket, body
