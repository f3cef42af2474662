"""Bucket and object ACLs, as far as this gateway has them: the owner's FULL_CONTROL only.

GetBucketAcl/GetObjectAcl answer the one grant every resource has. A Put of
that same ACL (the ``private`` canned ACL, or a body granting exactly the
owner FULL_CONTROL) is accepted as the no-op it is; any other ACL would
change who may do what, which needs the access-control work still to come,
so it answers NotImplemented rather than pretending.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from aiohttp import web

from s3api import xml
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import owned_bucket
from s3api.responses import empty, xml_response

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
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
# Canned ACLs that grant nothing beyond the owner's FULL_CONTROL when the
# object's owner is the bucket's owner (always so here).
_OWNER_ONLY = {"bucket": {"private"}, "object": {"private", "bucket-owner-full-control"}}
GRANT_HEADERS = (
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
)
MAX_ACL_BODY = 64 * 1024


def _not_implemented(what: str) -> S3Error:
    return S3Error(
        S3ErrorCode.NotImplemented,
        f"{what} is not implemented by this gateway yet: only the owner's FULL_CONTROL "
        "(the private canned ACL) is supported.",
    )


def check_request_acl(headers: Mapping[str, str], level: str = "bucket") -> str | None:
    """Validate ``x-amz-acl`` / ``x-amz-grant-*`` of a create or put; the canned ACL if any.

    Accepts only ACLs equal to the owner's FULL_CONTROL (``level`` is
    ``bucket`` or ``object``); others are NotImplemented, unknown names
    InvalidArgument.
    """
    canned = headers.get("x-amz-acl")
    grants = [name for name in GRANT_HEADERS if name in headers]
    if canned is not None:
        if canned not in CANNED_ACLS:
            raise S3Error(
                S3ErrorCode.InvalidArgument, ArgumentName="x-amz-acl", ArgumentValue=canned
            )
        if grants:
            raise S3Error(
                S3ErrorCode.InvalidRequest,
                "Specifying both Canned ACLs and Header Grants is not allowed",
            )
        if canned not in _OWNER_ONLY[level]:
            raise _not_implemented(f"The canned ACL {canned}")
    elif grants:
        raise _not_implemented("Granting access with " + grants[0])
    return canned


def policy_document(owner: str) -> bytes:
    """The AccessControlPolicy of a resource whose owner holds the only grant."""
    who = f"<ID>{escape(owner)}</ID><DisplayName>{escape(owner)}</DisplayName>"
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + (
            f'<AccessControlPolicy xmlns="{xml.S3_NS}">'
            f"<Owner>{who}</Owner>"
            "<AccessControlList><Grant>"
            f'<Grantee xmlns:xsi="{XSI_NS}" xsi:type="CanonicalUser">{who}</Grantee>'
            "<Permission>FULL_CONTROL</Permission>"
            "</Grant></AccessControlList>"
            "</AccessControlPolicy>"
        ).encode()
    )


def _is_owner_full_control(grant: Element, owner: str) -> bool:
    grantees = xml.children(grant, "Grantee")
    if len(grantees) != 1 or xml.child_text(grant, "Permission") != "FULL_CONTROL":
        return False
    grantee = grantees[0]
    kind = grantee.get(f"{{{XSI_NS}}}type")
    return kind == "CanonicalUser" and xml.child_text(grantee, "ID") == owner


def check_policy_body(body: bytes, owner: str) -> None:
    """Accept an AccessControlPolicy body only if it grants exactly the owner FULL_CONTROL."""
    try:
        root = xml.parse(body)
    except S3Error:
        raise S3Error(S3ErrorCode.MalformedACLError) from None
    acls = xml.children(root, "AccessControlList")
    if xml.local_name(root.tag) != "AccessControlPolicy" or len(acls) != 1:
        raise S3Error(S3ErrorCode.MalformedACLError)
    owners = xml.children(root, "Owner")
    if owners and xml.child_text(owners[0], "ID") not in (None, owner):
        raise S3Error(S3ErrorCode.AccessDenied)
    grants = xml.children(acls[0], "Grant")
    if len(grants) != 1 or not _is_owner_full_control(grants[0], owner):
        raise _not_implemented("An ACL other than the owner's FULL_CONTROL")


async def _put_acl(ctx: RequestContext, owner: str, level: str) -> None:
    headers = ctx.request.headers
    body = await read_small_body(ctx, MAX_ACL_BODY)
    canned = check_request_acl(headers, level)
    has_grants = any(name in headers for name in GRANT_HEADERS)
    if body.strip():
        if canned is not None or has_grants:
            raise S3Error(S3ErrorCode.UnexpectedContent)
        check_policy_body(body, owner)
    elif canned is None:
        raise S3Error(S3ErrorCode.MissingSecurityHeader, MissingHeaderName="x-amz-acl")


async def get_bucket_acl(ctx: RequestContext) -> web.StreamResponse:
    record = await owned_bucket(ctx)
    return xml_response(policy_document(record.owner))


async def put_bucket_acl(ctx: RequestContext) -> web.StreamResponse:
    record = await owned_bucket(ctx)
    await _put_acl(ctx, record.owner, "bucket")
    return empty()


async def _owned_object(ctx: RequestContext) -> str:
    """The owner of the target object (its bucket's owner); NoSuchKey if it is missing."""
    record = await owned_bucket(ctx)
    assert ctx.endpoint.key is not None
    await ctx.engine.objects.head(record.name, ctx.endpoint.key)
    return record.owner


async def get_object_acl(ctx: RequestContext) -> web.StreamResponse:
    return xml_response(policy_document(await _owned_object(ctx)))


async def put_object_acl(ctx: RequestContext) -> web.StreamResponse:
    owner = await _owned_object(ctx)
    await _put_acl(ctx, owner, "object")
    return empty()


HANDLERS = {
    "GetBucketAcl": get_bucket_acl,
    "PutBucketAcl": put_bucket_acl,
    "GetObjectAcl": get_object_acl,
    "PutObjectAcl": put_object_acl,
}
