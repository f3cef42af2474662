"""The S3 side of access: the request's principal and operation go to the engine, which decides.

The decision itself (owners, ACLs, policies) is the engine's
(``engine.access``); here are only what is S3's: the operation and bucket a
request names, ``x-amz-expected-bucket-owner``, and when to answer
``Expect: 100-continue`` (only once the engine admitted the caller, so a
refused client never sends its body).
"""

from __future__ import annotations

from aiohttp import web

from engine import AuthorizedBucket, Operation
from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode

_INVITED = "atonix.s3.invited"


async def person(ctx: RequestContext, uid: str) -> list[xml.Node]:
    """The ``ID`` and ``DisplayName`` children of an Owner, Initiator or grantee."""
    return [("ID", uid), ("DisplayName", await ctx.engine.display_name(uid))]


def require_user(ctx: RequestContext) -> str:
    if ctx.user is None:
        raise S3Error(S3ErrorCode.AccessDenied)
    return ctx.user


async def invite_body(request: web.Request) -> None:
    """Answer ``Expect: 100-continue`` (once): the caller is admitted, send the body.

    The dispatcher calls it for authenticated callers; an anonymous caller is
    invited here only once the engine admits it, so a refused one sends no body.
    """
    if request.get(_INVITED):
        return
    request[_INVITED] = True
    expect = request.headers.get("Expect", "").lower()
    if expect == "100-continue" and request.version >= (1, 1) and request.can_read_body:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the interim answer is not part of the response


async def authorized_bucket(
    ctx: RequestContext,
    name: str | None = None,
    operation: Operation | None = None,
    *,
    key: str | None = None,
    fresh: bool = False,
) -> AuthorizedBucket:
    """The request's bucket (or ``name``) for the request's operation (or ``operation``).

    ``fresh`` decides on the record read from the backend (HeadBucket,
    GetBucketLocation, DeleteBucket answer with the record itself).
    """
    name = name or ctx.endpoint.bucket
    assert name is not None
    bucket = await ctx.engine.bucket(
        ctx.principal,
        name,
        operation or ctx.endpoint.name,
        key=key or (ctx.endpoint.key if name == ctx.endpoint.bucket else None),
        fresh=fresh,
        expected_owner=ctx.request.headers.get("x-amz-expected-bucket-owner"),
    )
    await invite_body(ctx.request)
    return bucket


async def source_bucket(ctx: RequestContext, name: str, key: str) -> AuthorizedBucket:
    """The bucket a copy reads from: the caller must be allowed to GET the source.

    ``x-amz-expected-bucket-owner`` is checked against it too, as this gateway
    always has (AWS reads ``x-amz-source-expected-bucket-owner`` for the source).
    """
    bucket = await ctx.engine.bucket(
        ctx.principal,
        name,
        Operation.GET_OBJECT,
        key=key,
        expected_owner=ctx.request.headers.get("x-amz-expected-bucket-owner"),
    )
    await invite_body(ctx.request)
    return bucket
