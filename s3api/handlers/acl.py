"""Bucket and object ACLs: set with canned ACLs or any grants, and shown.

An ACL is set with ``x-amz-acl`` (on CreateBucket, PutObject, CopyObject,
CreateMultipartUpload, POST uploads, PutBucketAcl, PutObjectAcl), with
``x-amz-grant-*`` headers (``id=`` / ``uri=`` grantees; the ACL is then
exactly those grants), or with an AccessControlPolicy body (grants to users
by ID or e-mail address and to groups; user IDs must exist, e-mail
addresses must resolve). ``aws-exec-read`` and ``log-delivery-write`` answer
NotImplemented. See ``s3api.acl_grants`` for how an ACL is kept.

A bucket's ACL is its ``acl`` configuration document (absent: private); an
object's lives in its entry's headers under ``OBJECT_ACL_HEADER`` (absent:
private), never shown to clients as a header. The bucket's owner may read
and set both; others need READ_ACP / WRITE_ACP granted on the resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import web

from engine import (
    BUCKET_ACL_ITEM,
    BUCKET_ACLS,
    FULL_CONTROL,
    OBJECT_ACLS,
    PRIVATE,
    READ,
    Grants,
    Operation,
    decode_grants,
    effective_acl,
    encode_grants,
)
from s3api import acl_grants
from s3api import headers as h
from s3api.acl_grants import EMAIL, USER, Grant
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket
from s3api.responses import empty, xml_response

CANNED_ACLS = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    }
)
GRANT_HEADERS = tuple(acl_grants.GRANT_HEADERS)
MAX_ACL_BODY = 64 * 1024


def _table(level: str) -> Mapping[str, Grants]:
    return BUCKET_ACLS if level == "bucket" else OBJECT_ACLS


def check_request_acl(
    headers: Mapping[str, str],
    level: str = "bucket",
    *,
    writer: str | None = None,
    bucket_owner: str | None = None,
) -> str | None:
    """The ACL ``x-amz-acl`` / ``x-amz-grant-*`` of a create or put ask for, if any.

    Returns the ACL to store (``level`` is ``bucket`` or ``object``): a canned
    name, or the header grants; unknown canned names are InvalidArgument. An
    object written by another user than the bucket's owner (``writer``) gets
    the canned ACL's grants with the writer in the owner's place, so it keeps
    full control of what it wrote (``bucket-owner-*`` then grant the bucket's
    owner READ or FULL_CONTROL too).
    """
    if level == "object" and writer is not None and writer != bucket_owner:
        assert bucket_owner is not None
        return _written_by_another(headers, writer, bucket_owner)
    canned = headers.get("x-amz-acl")
    grants = acl_grants.header_grants(headers)
    if canned is not None:
        if canned not in CANNED_ACLS:
            raise S3Error(
                S3ErrorCode.InvalidArgument, ArgumentName="x-amz-acl", ArgumentValue=canned
            )
        if grants is not None:
            raise S3Error(
                S3ErrorCode.InvalidRequest,
                "Specifying both Canned ACLs and Header Grants is not allowed",
            )
        if canned not in _table(level):
            raise S3Error(
                S3ErrorCode.NotImplemented,
                f"The canned ACL {canned} is not implemented by this gateway yet.",
            )
        return effective_acl(canned, level)
    if grants is not None:
        return encode_grants(grants)
    return None


def _written_by_another(headers: Mapping[str, str], writer: str, bucket_owner: str) -> str:
    acl = check_request_acl(headers, "object")
    if decode_grants(acl) is not None:
        assert acl is not None
        return acl  # header grants are exactly what was asked
    canned = headers.get("x-amz-acl", PRIVATE)
    grants = acl_grants.grants_of(acl, writer)
    extra = {"bucket-owner-read": READ, "bucket-owner-full-control": FULL_CONTROL}
    if canned in extra:
        grants.append((USER, bucket_owner, extra[canned]))
    return encode_grants(grants)


def check_policy_body(body: bytes, owner: str, level: str = "bucket") -> str:
    """The ACL an AccessControlPolicy body sets (pure: its grants must need no lookup)."""
    named_owner, grants = acl_grants.policy_grants(body)
    if named_owner not in (None, owner):
        raise S3Error(S3ErrorCode.AccessDenied)
    if any(kind == EMAIL for kind, _, _ in grants):
        raise S3Error(S3ErrorCode.UnresolvableGrantByEmailAddress)
    return acl_grants.to_acl(grants, owner, level)


async def _resolve(ctx: RequestContext, grants: Sequence[Grant]) -> list[Grant]:
    """Grants to existing users only: e-mail addresses become user ids."""
    out: list[Grant] = []
    for kind, who, permission in grants:
        if kind == EMAIL:
            uid = await ctx.engine.user_by_email(who)
            if uid is None:
                raise S3Error(S3ErrorCode.UnresolvableGrantByEmailAddress, EmailAddress=who)
            out.append((USER, uid, permission))
            continue
        if kind == USER and not await ctx.engine.user_exists(who):
            raise S3Error(S3ErrorCode.InvalidArgument, "Invalid id",
                          ArgumentName="CanonicalUser/ID", ArgumentValue=who)
        out.append((kind, who, permission))
    return out


async def _requested_acl(ctx: RequestContext, owner: str, level: str) -> str:
    headers = ctx.request.headers
    body = await read_small_body(ctx, MAX_ACL_BODY)
    acl = check_request_acl(headers, level)
    if body.strip():
        if acl is not None:
            raise S3Error(S3ErrorCode.UnexpectedContent)
        named_owner, grants = acl_grants.policy_grants(body)
        if named_owner not in (None, owner):
            raise S3Error(S3ErrorCode.AccessDenied)
        return acl_grants.to_acl(await _resolve(ctx, grants), owner, level)
    if acl is None:
        raise S3Error(S3ErrorCode.MissingSecurityHeader, MissingHeaderName="x-amz-acl")
    return acl


async def _document(ctx: RequestContext, owner: str, acl: str | None) -> web.StreamResponse:
    grants = acl_grants.grants_of(acl, owner)
    users = {owner} | {who for kind, who, _ in grants if kind == USER}
    names = {uid: await ctx.engine.display_name(uid) for uid in users}
    return xml_response(acl_grants.policy_document(owner, grants, names))


async def get_bucket_acl(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)  # the owner, or a READ_ACP grantee
    record, raw = await bucket.read_config(BUCKET_ACL_ITEM)
    return await _document(ctx, record.owner, raw.decode() if raw else PRIVATE)


async def put_bucket_acl(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)  # the owner, or a WRITE_ACP grantee
    acl = await _requested_acl(ctx, bucket.owner, "bucket")
    # Written to exactly the bucket access was decided for (NoSuchBucket if re-created).
    await bucket.write_config(BUCKET_ACL_ITEM, None if acl == PRIVATE else acl.encode())
    return empty()


async def get_object_acl(ctx: RequestContext) -> web.StreamResponse:
    assert ctx.endpoint.key is not None
    bucket = await authorized_bucket(ctx)
    version = h.version_id(ctx.endpoint.query)
    return await _document(ctx, bucket.owner, await bucket.object_acl(ctx.endpoint.key, version))


async def put_object_acl(ctx: RequestContext) -> web.StreamResponse:
    assert ctx.endpoint.key is not None
    bucket = await authorized_bucket(ctx)
    version = h.version_id(ctx.endpoint.query)
    # NoSuchKey and AccessDenied come before body errors.
    await bucket.object_acl(ctx.endpoint.key, version)
    acl = await _requested_acl(ctx, bucket.owner, "object")
    await bucket.set_object_acl(ctx.endpoint.key, acl, version)
    return empty()


HANDLERS = {
    Operation.GET_BUCKET_ACL: get_bucket_acl,
    Operation.PUT_BUCKET_ACL: put_bucket_acl,
    Operation.GET_OBJECT_ACL: get_object_acl,
    Operation.PUT_OBJECT_ACL: put_object_acl,
}
