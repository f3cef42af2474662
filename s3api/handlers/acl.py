"""Bucket and object ACLs: the canned ACLs of ``s3api.access_policy``, set and shown.

An ACL is set with ``x-amz-acl`` (on CreateBucket, PutObject, CopyObject,
CreateMultipartUpload, POST uploads, PutBucketAcl, PutObjectAcl) or with an
AccessControlPolicy body whose grants are exactly those of a supported
canned ACL: the owner's FULL_CONTROL plus READ/WRITE for the AllUsers or
AuthenticatedUsers group. Any other ACL (grants to other users, by e-mail,
``x-amz-grant-*`` headers, ``aws-exec-read``, ``log-delivery-write``)
answers NotImplemented rather than pretending.

A bucket's ACL is its ``acl`` configuration document (absent: private); an
object's lives in its entry's headers under ``OBJECT_ACL_HEADER`` (absent:
private), never shown to clients as a header.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from aiohttp import web

from s3api import access_policy as policy
from s3api import xml
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import (
    BUCKET_ACL_ITEM,
    OBJECT_ACL_HEADER,
    bucket_acl,
    object_acl,
    owned_bucket,
)
from s3api.handlers.bucket_config import write_owned_config
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
GRANT_HEADERS = (
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
)
MAX_ACL_BODY = 64 * 1024
_GROUP_PERMISSIONS = (policy.READ, policy.WRITE)


def _table(level: str) -> Mapping[str, policy.Grants]:
    return policy.BUCKET_ACLS if level == "bucket" else policy.OBJECT_ACLS


def _not_implemented(what: str) -> S3Error:
    return S3Error(
        S3ErrorCode.NotImplemented,
        f"{what} is not implemented by this gateway yet: only the canned ACLs private, "
        "public-read, public-read-write and authenticated-read (and their equivalent "
        "grants) are supported.",
    )


def check_request_acl(headers: Mapping[str, str], level: str = "bucket") -> str | None:
    """The ACL ``x-amz-acl`` / ``x-amz-grant-*`` of a create or put ask for, if any.

    Returns the canned ACL to store (``level`` is ``bucket`` or ``object``);
    unsupported ACLs are NotImplemented, unknown names InvalidArgument.
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
        if canned not in _table(level):
            raise _not_implemented(f"The canned ACL {canned}")
        return policy.effective_acl(canned, level)
    if grants:
        raise _not_implemented("Granting access with " + grants[0])
    return None


def with_object_acl(headers: Mapping[str, str], canned: str | None) -> dict[str, str]:
    """An object's stored headers carrying ``canned`` (private, the default, is not stored)."""
    out = {k: v for k, v in headers.items() if k != OBJECT_ACL_HEADER}
    if canned is not None and canned != policy.PRIVATE:
        out[OBJECT_ACL_HEADER] = canned
    return out


def _grant(grantee: str, permission: str) -> str:
    return f"<Grant>{grantee}<Permission>{permission}</Permission></Grant>"


def policy_document(owner: str, canned: str = policy.PRIVATE, name: str | None = None) -> bytes:
    """The AccessControlPolicy of a resource: its owner's FULL_CONTROL and the ACL's groups."""
    who = f"<ID>{escape(owner)}</ID><DisplayName>{escape(name or owner)}</DisplayName>"
    grants = [_grant(f'<Grantee xmlns:xsi="{XSI_NS}" xsi:type="CanonicalUser">{who}</Grantee>',
                     "FULL_CONTROL")]
    for uri, permission in sorted(policy.OBJECT_ACLS.get(canned, frozenset())):
        group = f'<Grantee xmlns:xsi="{XSI_NS}" xsi:type="Group"><URI>{uri}</URI></Grantee>'
        grants.append(_grant(group, permission))
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + (
            f'<AccessControlPolicy xmlns="{xml.S3_NS}">'
            f"<Owner>{who}</Owner>"
            f"<AccessControlList>{''.join(grants)}</AccessControlList>"
            "</AccessControlPolicy>"
        ).encode()
    )


def _grant_of(grant: Element, owner: str) -> tuple[str, str] | None:
    """(group URI, permission) of a group grant; None for the owner's FULL_CONTROL."""
    grantees = xml.children(grant, "Grantee")
    permission = xml.child_text(grant, "Permission")
    if len(grantees) != 1 or permission is None:
        raise S3Error(S3ErrorCode.MalformedACLError)
    grantee = grantees[0]
    kind = grantee.get(f"{{{XSI_NS}}}type")
    if kind == "CanonicalUser" and xml.child_text(grantee, "ID") == owner:
        if permission == "FULL_CONTROL":
            return None
    elif kind == "Group" and permission in _GROUP_PERMISSIONS:
        uri = xml.child_text(grantee, "URI")
        if uri in (policy.ALL_USERS, policy.AUTHENTICATED_USERS):
            return uri, permission
    raise _not_implemented("An ACL granting this")


def check_policy_body(body: bytes, owner: str, level: str = "bucket") -> str:
    """The canned ACL an AccessControlPolicy body expresses exactly (NotImplemented if none)."""
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
    found = [_grant_of(grant, owner) for grant in xml.children(acls[0], "Grant")]
    if found.count(None) != 1:
        raise _not_implemented("An ACL without exactly the owner's FULL_CONTROL")
    canned = policy.canned_for_grants(frozenset(g for g in found if g is not None), level)
    if canned is None:
        raise _not_implemented("This combination of grants")
    return canned


async def _requested_acl(ctx: RequestContext, owner: str, level: str) -> str:
    headers = ctx.request.headers
    body = await read_small_body(ctx, MAX_ACL_BODY)
    canned = check_request_acl(headers, level)
    has_grants = any(name in headers for name in GRANT_HEADERS)
    if body.strip():
        if canned is not None or has_grants:
            raise S3Error(S3ErrorCode.UnexpectedContent)
        return check_policy_body(body, owner, level)
    if canned is None:
        raise S3Error(S3ErrorCode.MissingSecurityHeader, MissingHeaderName="x-amz-acl")
    return canned


async def get_bucket_acl(ctx: RequestContext) -> web.StreamResponse:
    record = await owned_bucket(ctx)
    record, canned = await bucket_acl(ctx, record.name)
    name = await ctx.engine.identities.display_name(record.owner)
    return xml_response(policy_document(record.owner, canned, name))


async def put_bucket_acl(ctx: RequestContext) -> web.StreamResponse:
    record = await owned_bucket(ctx)
    canned = await _requested_acl(ctx, record.owner, "bucket")
    value = None if canned == policy.PRIVATE else canned.encode()
    await write_owned_config(ctx, BUCKET_ACL_ITEM, value)
    return empty()


async def get_object_acl(ctx: RequestContext) -> web.StreamResponse:
    record = await owned_bucket(ctx)
    assert ctx.endpoint.key is not None
    entry = await ctx.engine.objects.head(record.name, ctx.endpoint.key)
    name = await ctx.engine.identities.display_name(record.owner)
    return xml_response(policy_document(record.owner, object_acl(entry), name))


async def put_object_acl(ctx: RequestContext) -> web.StreamResponse:
    record = await owned_bucket(ctx)
    assert ctx.endpoint.key is not None
    await ctx.engine.objects.head(record.name, ctx.endpoint.key)  # NoSuchKey before body errors
    canned = await _requested_acl(ctx, record.owner, "object")
    await ctx.engine.objects.update(
        record.name,
        ctx.endpoint.key,
        lambda e: dataclasses.replace(e, headers=with_object_acl(e.headers, canned)),
    )
    return empty()


HANDLERS = {
    "GetBucketAcl": get_bucket_acl,
    "PutBucketAcl": put_bucket_acl,
    "GetObjectAcl": get_object_acl,
    "PutObjectAcl": put_object_acl,
}
