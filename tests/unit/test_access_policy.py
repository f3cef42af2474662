"""The access decision (pure), exhaustively: every operation x caller x bucket ACL x object ACL."""

from __future__ import annotations

import itertools

import pytest

from engine import with_object_acl
from engine.access import acl as p
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.acl import check_policy_body, check_request_acl

OWNER, OTHER, ANON = "owner", "other", None
OWNER_ONLY = (
    "GetBucketAcl", "PutBucketAcl", "GetObjectAcl", "PutObjectAcl", "DeleteBucket",
    "GetBucketLocation", "GetBucketTagging", "PutBucketCors", "GetObjectTagging",
    "PutObjectTagging", "GetObjectAttributes", "GetBucketVersioning",
)
OPERATIONS = sorted(
    p.BUCKET_READ_OPERATIONS | p.BUCKET_WRITE_OPERATIONS | p.OBJECT_READ_OPERATIONS
    | set(OWNER_ONLY)
)
BUCKET_ACLS = [None, *p.BUCKET_ACLS]
OBJECT_ACLS = [None, *p.OBJECT_ACLS]


def expected(operation, caller, bucket_acl, object_acl) -> bool:
    """The rules of the module docstring, written out as a table."""
    if caller == OWNER:
        return True
    bucket_read = {
        "public-read": True, "public-read-write": True, "authenticated-read": caller is not None,
    }.get(bucket_acl, False)
    object_read = {
        "public-read": True, "public-read-write": True, "authenticated-read": caller is not None,
    }.get(object_acl, False)
    if operation in p.BUCKET_READ_OPERATIONS:
        return bucket_read
    if operation in p.BUCKET_WRITE_OPERATIONS:
        return bucket_acl == "public-read-write"
    if operation in p.OBJECT_READ_OPERATIONS:
        return object_read
    return False


@pytest.mark.parametrize(
    ("operation", "caller", "bucket_acl", "object_acl"),
    list(itertools.product(OPERATIONS, [OWNER, OTHER, ANON], BUCKET_ACLS, OBJECT_ACLS)),
)
def test_decision(operation, caller, bucket_acl, object_acl):
    got = p.is_allowed(operation, caller, OWNER, bucket_acl, object_acl)
    assert got == expected(operation, caller, bucket_acl, object_acl)


def test_unknown_operations_are_owner_only():
    assert p.is_allowed("SomethingNew", OWNER, OWNER, "public-read-write")
    assert not p.is_allowed("SomethingNew", ANON, OWNER, "public-read-write")


def test_operation_sets_are_disjoint():
    groups = [p.BUCKET_READ_OPERATIONS, p.BUCKET_WRITE_OPERATIONS, p.OBJECT_READ_OPERATIONS]
    for a, b in itertools.combinations(groups, 2):
        assert not a & b


def test_owner_is_never_anonymous():
    """A bucket whose owner field were empty/None must not make anonymous callers owners."""
    assert not p.is_allowed("DeleteBucket", None, None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("caller", [OTHER, ANON])
def test_missing_keys_visible_only_to_listers(caller):
    assert p.may_see_missing_keys(OWNER, OWNER, None)
    assert not p.may_see_missing_keys(caller, OWNER, None)
    assert p.may_see_missing_keys(caller, OWNER, "public-read")
    assert p.may_see_missing_keys(caller, OWNER, "authenticated-read") == (caller is not None)


def test_effective_acl_and_grants():
    assert p.effective_acl("bucket-owner-full-control", "object") == "private"
    assert p.effective_acl("bucket-owner-read", "object") == "private"
    assert p.effective_acl("public-read", "bucket") == "public-read"
    for level, table in (("bucket", p.BUCKET_ACLS), ("object", p.OBJECT_ACLS)):
        for name, grants in table.items():
            assert p.canned_for_grants(grants, level) == p.effective_acl(name, level)
    assert p.canned_for_grants(frozenset({(p.AUTHENTICATED_USERS, p.WRITE)}), "bucket") is None


# -- request parsing (pure) -------------------------------------------------------------------


def code_of(call) -> S3ErrorCode:
    with pytest.raises(S3Error) as e:
        call()
    return e.value.code


def test_canned_headers():
    assert check_request_acl({}, "bucket") is None
    assert check_request_acl({"x-amz-acl": "public-read"}, "bucket") == "public-read"
    assert check_request_acl({"x-amz-acl": "bucket-owner-read"}, "object") == "private"
    assert code_of(lambda: check_request_acl({"x-amz-acl": "bucket-owner-read"}, "bucket")) is (
        S3ErrorCode.NotImplemented
    )
    assert code_of(lambda: check_request_acl({"x-amz-acl": "nope"})) is S3ErrorCode.InvalidArgument
    granted = check_request_acl({"x-amz-grant-read": 'id="x", uri=' + p.ALL_USERS})
    assert p.decode_grants(granted) == [("user", "x", "READ"), ("group", p.ALL_USERS, "READ")]
    assert code_of(lambda: check_request_acl({"x-amz-grant-read": "emailAddress=a@b.c"})) is (
        S3ErrorCode.NotImplemented
    )
    assert code_of(
        lambda: check_request_acl({"x-amz-acl": "private", "x-amz-grant-read": "id=x"})
    ) is S3ErrorCode.InvalidRequest


def test_object_acl_is_stored_only_when_not_private():
    assert with_object_acl({"cache-control": "x"}, "public-read") == {
        "cache-control": "x", "x-atonix-acl": "public-read"
    }
    assert with_object_acl({"x-atonix-acl": "public-read"}, "private") == {}
    assert with_object_acl({"x-atonix-acl": "public-read"}, None) == {}


XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def body(*grants: str, owner: str = OWNER) -> bytes:
    own = (f'<Grant><Grantee {XSI} xsi:type="CanonicalUser"><ID>{owner}</ID></Grantee>'
           "<Permission>FULL_CONTROL</Permission></Grant>")
    return (
        '<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Owner><ID>{OWNER}</ID></Owner><AccessControlList>{own}{''.join(grants)}"
        "</AccessControlList></AccessControlPolicy>"
    ).encode()


def group(uri: str, permission: str) -> str:
    return (f'<Grant><Grantee {XSI} xsi:type="Group"><URI>{uri}</URI></Grantee>'
            f"<Permission>{permission}</Permission></Grant>")


def test_policy_bodies_map_to_canned_acls():
    assert check_policy_body(body(), OWNER) == "private"
    assert check_policy_body(body(group(p.ALL_USERS, "READ")), OWNER) == "public-read"
    assert check_policy_body(
        body(group(p.ALL_USERS, "WRITE"), group(p.ALL_USERS, "READ")), OWNER
    ) == "public-read-write"
    assert check_policy_body(body(group(p.AUTHENTICATED_USERS, "READ")), OWNER) == (
        "authenticated-read"
    )
    explicit = {
        body(group(p.ALL_USERS, "WRITE")): [
            ("user", OWNER, "FULL_CONTROL"), ("group", p.ALL_USERS, "WRITE")
        ],
        body(group(p.ALL_USERS, "READ_ACP")): [
            ("user", OWNER, "FULL_CONTROL"), ("group", p.ALL_USERS, "READ_ACP")
        ],
        body(owner="someone-else"): [("user", "someone-else", "FULL_CONTROL")],
    }
    for doc, grants in explicit.items():
        assert p.decode_grants(check_policy_body(doc, OWNER)) == grants
    assert code_of(lambda: check_policy_body(b"<nope", OWNER)) is S3ErrorCode.MalformedACLError


@pytest.mark.parametrize("permission", ["READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL"])
def test_user_grants(permission):
    acl = p.encode_grants([("user", OTHER, permission)])
    need = {"ListObjects": "READ", "PutObject": "WRITE", "GetBucketAcl": "READ_ACP",
            "PutBucketAcl": "WRITE_ACP"}
    for operation, wanted in need.items():
        allowed = permission in (wanted, "FULL_CONTROL")
        assert p.is_allowed(operation, OTHER, OWNER, acl) is allowed, operation
        assert not p.is_allowed(operation, ANON, OWNER, acl)
    object_need = {"GetObject": "READ", "GetObjectAcl": "READ_ACP", "PutObjectAcl": "WRITE_ACP"}
    for operation, wanted in object_need.items():
        allowed = permission in (wanted, "FULL_CONTROL")
        assert p.is_allowed(operation, OTHER, OWNER, None, acl) is allowed, operation
    assert not p.is_allowed("DeleteBucket", OTHER, OWNER, acl)
