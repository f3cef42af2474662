"""ACL grants (pure): the grants an ACL holds, parsed from requests and shown in documents.

An ACL is kept as one string: the name of a canned ACL (``engine.access.acl``),
or, for any other set of grants, ``encode_grants`` of its grants: a JSON list
of ``[kind, grantee, permission]`` where kind is ``user`` (a user id) or
``group`` (a group URI). A set of grants that is exactly a canned ACL (the
owner's FULL_CONTROL plus that ACL's group grants) is kept as the canned name.

Grants come from an AccessControlPolicy body (CanonicalUser by ID, Group by
URI, AmazonCustomerByEmail by address: ``email`` grants, which the caller
resolves to users) or from ``x-amz-grant-*`` headers (``id=`` and ``uri=``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from engine import (
    FULL_CONTROL,
    OBJECT_ACLS,
    PRIVATE,
    READ,
    READ_ACP,
    WRITE,
    WRITE_ACP,
    canned_for_grants,
    decode_grants,
    encode_grants,
)
from s3api import xml
from s3api.errors import S3Error, S3ErrorCode

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
PERMISSIONS = (READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL)
GRANT_HEADERS = {
    "x-amz-grant-read": READ,
    "x-amz-grant-write": WRITE,
    "x-amz-grant-read-acp": READ_ACP,
    "x-amz-grant-write-acp": WRITE_ACP,
    "x-amz-grant-full-control": FULL_CONTROL,
}
USER, GROUP, EMAIL = "user", "group", "email"

Grant = tuple[str, str, str]  # (kind, grantee, permission)


def _malformed() -> S3Error:
    return S3Error(S3ErrorCode.MalformedACLError)


def grants_of(acl: str | None, owner: str) -> list[Grant]:
    """Every grant of an ACL: a canned one's groups then its owner's FULL_CONTROL (the order
    Ceph RGW lists them in), or its own list as set."""
    explicit = decode_grants(acl)
    if explicit is not None:
        return list(explicit)
    canned = OBJECT_ACLS.get(acl or PRIVATE, frozenset())
    groups: list[Grant] = [(GROUP, uri, permission) for uri, permission in sorted(canned)]
    return [*groups, (USER, owner, FULL_CONTROL)]


def to_acl(grants: Sequence[Grant], owner: str, level: str) -> str:
    """The string to keep for these (resolved) grants: a canned name when one says the same."""
    owner_grant = (USER, owner, FULL_CONTROL)
    groups = [(g[1], g[2]) for g in grants if g[0] == GROUP]
    others = [g for g in grants if g[0] != GROUP and g != owner_grant]
    if grants.count(owner_grant) == 1 and not others and len(set(groups)) == len(groups):
        canned = canned_for_grants(frozenset(groups), level)
        if canned is not None:
            return canned
    return encode_grants(grants)


# -- from requests ------------------------------------------------------------------------


def header_grants(headers: Mapping[str, str]) -> list[Grant] | None:
    """The grants of ``x-amz-grant-*`` headers (``id="..."``, ``uri="..."`` lists), if any."""
    found: list[Grant] = []
    named = False
    for header, permission in GRANT_HEADERS.items():
        value = headers.get(header)
        if value is None:
            continue
        named = True
        for item in value.split(","):
            kind, _, who = item.strip().partition("=")
            who = who.strip().strip('"')
            kind = kind.strip().lower()
            if not who or kind not in ("id", "uri", "emailaddress"):
                raise S3Error(
                    S3ErrorCode.InvalidArgument, ArgumentName=header, ArgumentValue=value
                )
            if kind == "emailaddress":
                raise S3Error(
                    S3ErrorCode.NotImplemented,
                    "Granting by e-mail address in a header is not implemented by this "
                    "gateway yet; use an AccessControlPolicy body.",
                )
            found.append((USER if kind == "id" else GROUP, who, permission))
    return found if named else None


def policy_grants(body: bytes) -> tuple[str | None, list[Grant]]:
    """(owner ID named, grants) of an AccessControlPolicy body; ``email`` grants unresolved."""
    try:
        root = xml.parse(body)
    except S3Error:
        raise _malformed() from None
    acls = xml.children(root, "AccessControlList")
    if xml.local_name(root.tag) != "AccessControlPolicy" or len(acls) != 1:
        raise _malformed()
    owners = xml.children(root, "Owner")
    owner = xml.child_text(owners[0], "ID") if owners else None
    return owner, [_grant(grant) for grant in xml.children(acls[0], "Grant")]


def _grant(grant) -> Grant:
    grantees = xml.children(grant, "Grantee")
    permission = xml.child_text(grant, "Permission")
    if len(grantees) != 1 or permission not in PERMISSIONS:
        raise _malformed()
    grantee = grantees[0]
    kind = grantee.get(f"{{{XSI_NS}}}type")
    field, out = {
        "CanonicalUser": ("ID", USER),
        "Group": ("URI", GROUP),
        "AmazonCustomerByEmail": ("EmailAddress", EMAIL),
    }.get(kind or "", (None, None))
    who = xml.child_text(grantee, field) if field else None
    if not who or out is None:
        raise _malformed()
    return out, who.strip(), permission


# -- to documents -------------------------------------------------------------------------


def _grant_xml(grant: Grant, names: Mapping[str, str]) -> str:
    kind, who, permission = grant
    if kind == USER:
        inner = f"<ID>{escape(who)}</ID><DisplayName>{escape(names.get(who, who))}</DisplayName>"
        grantee = f'<Grantee xmlns:xsi="{XSI_NS}" xsi:type="CanonicalUser">{inner}</Grantee>'
    else:
        uri = f"<URI>{escape(who)}</URI>"
        grantee = f'<Grantee xmlns:xsi="{XSI_NS}" xsi:type="Group">{uri}</Grantee>'
    return f"<Grant>{grantee}<Permission>{permission}</Permission></Grant>"


def policy_document(owner: str, grants: Sequence[Grant], names: Mapping[str, str]) -> bytes:
    """The AccessControlPolicy document: the owner and every grant, users by display name."""
    who = f"<ID>{escape(owner)}</ID><DisplayName>{escape(names.get(owner, owner))}</DisplayName>"
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + (
            f'<AccessControlPolicy xmlns="{xml.S3_NS}">'
            f"<Owner>{who}</Owner>"
            f"<AccessControlList>{''.join(_grant_xml(g, names) for g in grants)}"
            "</AccessControlList></AccessControlPolicy>"
        ).encode()
    )
