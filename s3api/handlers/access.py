"""Who may do what, applied to requests: the owner, plus what canned ACLs grant.

The decision itself is ``s3api.access_policy`` (pure). Here it meets I/O: a
bucket's owner is decided from the cached record alone, so the owner's
requests cost nothing extra; anyone else's request reads the bucket's ACL
afresh from the backend (never cached), so a change, such as making a bucket
private again, takes effect on every gateway at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from engine.buckets import authorise
from engine.errors import NoSuchKey
from engine.records import BucketRecord, ObjectEntry
from s3api import access_policy as policy
from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode

BUCKET_ACL_ITEM = "acl"  # the bucket configuration document holding its canned ACL
OBJECT_ACL_HEADER = "x-atonix-acl"  # the object's canned ACL, kept in ObjectEntry.headers
_INVITED = "atonix.s3.invited"


async def person(ctx: RequestContext, uid: str) -> list[xml.Node]:
    """The ``ID`` and ``DisplayName`` children of an Owner, Initiator or grantee."""
    return [("ID", uid), ("DisplayName", await ctx.engine.identities.display_name(uid))]


def require_user(ctx: RequestContext) -> str:
    if ctx.user is None:
        raise S3Error(S3ErrorCode.AccessDenied)
    return ctx.user


async def invite_body(request: web.Request) -> None:
    """Answer ``Expect: 100-continue`` (once): the caller is admitted, send the body.

    The dispatcher calls it for authenticated callers; an anonymous caller is
    invited here only once an ACL admits it, so a refused one sends no body.
    """
    if request.get(_INVITED):
        return
    request[_INVITED] = True
    expect = request.headers.get("Expect", "").lower()
    if expect == "100-continue" and request.version >= (1, 1) and request.can_read_body:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the interim answer is not part of the response


async def bucket_acl(ctx: RequestContext, name: str) -> tuple[BucketRecord, str]:
    """The bucket's record and canned ACL, read afresh."""
    record, raw = await ctx.engine.buckets.read_config(name, BUCKET_ACL_ITEM)
    return record, raw.decode() if raw else policy.PRIVATE


def object_acl(entry: ObjectEntry) -> str:
    return entry.headers.get(OBJECT_ACL_HEADER, policy.PRIVATE)


@dataclass(frozen=True, slots=True)
class ObjectGate:
    """Decides a read of one object once its entry is known (see ``readable_bucket``)."""

    operation: str
    caller: str | None
    owner: str
    bucket_acl: str | None  # None for the owner, whose ACL is never read

    def check(self, entry: ObjectEntry) -> None:
        if not policy.is_allowed(
            self.operation, self.caller, self.owner, self.bucket_acl, object_acl(entry)
        ):
            raise S3Error(S3ErrorCode.AccessDenied)

    def missing(self, exc: NoSuchKey) -> Exception:
        """What a missing key answers: NoSuchKey only to callers who may list the bucket."""
        if self.caller == self.owner or policy.may_see_missing_keys(
            self.caller, self.owner, self.bucket_acl
        ):
            return exc
        return S3Error(S3ErrorCode.AccessDenied)


def check_expected_owner(ctx: RequestContext, record: BucketRecord) -> None:
    """``x-amz-expected-bucket-owner`` naming someone else than the owner: AccessDenied."""
    expected = ctx.request.headers.get("x-amz-expected-bucket-owner")
    if expected is not None and expected != record.owner:
        raise S3Error(S3ErrorCode.AccessDenied)


async def readable_bucket(
    ctx: RequestContext, name: str | None = None, operation: str = "GetObject"
) -> tuple[BucketRecord, ObjectGate]:
    """The bucket an object is read from, and the gate its entry must pass."""
    name = name or ctx.endpoint.bucket
    assert name is not None
    record = await ctx.engine.buckets.get(name)
    check_expected_owner(ctx, record)
    if ctx.user is not None and record.owner == ctx.user:
        authorise(record)
        return record, ObjectGate(operation, ctx.user, record.owner, None)
    record, acl = await bucket_acl(ctx, name)
    authorise(record)
    await invite_body(ctx.request)
    return record, ObjectGate(operation, ctx.user, record.owner, acl)


async def owned_bucket(ctx: RequestContext, fresh: bool = False) -> BucketRecord:
    """The target bucket's record, if the caller may perform the request's operation.

    Its owner may do anything; others only what the bucket's ACL grants them
    (AccessDenied otherwise, as for an anonymous caller of a private bucket).
    ``fresh`` reads the record from the backend: for operations whose answer is
    the record itself (HeadBucket, GetBucketLocation, DeleteBucket), which no
    index guard would otherwise check against another gateway's delete.
    """
    assert ctx.endpoint.bucket is not None
    record = await ctx.engine.buckets.get(ctx.endpoint.bucket, use_cache=not fresh)
    if ctx.user is not None and record.owner != ctx.user and not fresh:
        # A cached record naming someone else may be of a bucket since re-created
        # by the caller: decide on the current one (non-owners pay a read anyway).
        record = await ctx.engine.buckets.get(ctx.endpoint.bucket, use_cache=False)
    check_expected_owner(ctx, record)
    if ctx.user is not None and record.owner == ctx.user:
        authorise(record)
        return record
    operation = ctx.endpoint.name
    if (
        operation in policy.BUCKET_READ_OPERATIONS | policy.BUCKET_WRITE_OPERATIONS
        or operation in policy.BUCKET_ACP_OPERATIONS
    ):
        record, acl = await bucket_acl(ctx, record.name)
        if policy.is_allowed(operation, ctx.user, record.owner, acl):
            authorise(record)
            await invite_body(ctx.request)
            return record
    raise S3Error(S3ErrorCode.AccessDenied)
