"""ACL grants beyond the canned ACLs: to users (by ID or e-mail) and groups, in bodies and
x-amz-grant-* headers, and what each permission lets a grantee do."""

from __future__ import annotations

import uuid

import pytest

from tests.support.gateway_process import create_test_user
from tests.test_s3_public_access import error_of

OWNER = {"ID": "tester", "DisplayName": "Tester"}
PERMISSIONS = ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")


@pytest.fixture
def grantee(gateway):
    """(uid, client) of a second user, with an e-mail address."""
    uid = "grantee" + uuid.uuid4().hex[:6]
    key = "AKGRANT" + uuid.uuid4().hex[:13].upper()
    create_test_user(gateway.options, uid, access_key=key, secret="grant-secret-" + uid)
    return uid, gateway.client(access_key=key, secret="grant-secret-" + uid)


def user_grant(uid: str, permission: str) -> dict:
    return {"Grantee": {"ID": uid, "Type": "CanonicalUser"}, "Permission": permission}


def shown(uid: str, permission: str) -> dict:
    return {"Grantee": {"ID": uid, "DisplayName": uid.title(), "Type": "CanonicalUser"},
            "Permission": permission}


def with_grant(acl: dict, grant: dict) -> dict:
    return {"Owner": acl["Owner"], "Grants": acl["Grants"] + [grant]}


@pytest.mark.parametrize("permission", PERMISSIONS)
def test_bucket_grant_to_a_user(s3, bucket, grantee, permission):
    uid, other = grantee
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=with_grant(
        s3.get_bucket_acl(Bucket=bucket), user_grant(uid, permission)))
    acl = s3.get_bucket_acl(Bucket=bucket)
    assert acl["Owner"] == OWNER
    assert acl["Grants"][-1] == shown(uid, permission)
    full = permission == "FULL_CONTROL"

    def allowed(call) -> bool:
        try:
            call()
        except AssertionError:
            raise
        except Exception:
            return False
        return True

    assert allowed(lambda: other.head_bucket(Bucket=bucket)) == (full or permission == "READ")
    assert allowed(lambda: other.get_bucket_acl(Bucket=bucket)) == (
        full or permission == "READ_ACP")
    assert allowed(lambda: other.put_object(Bucket=bucket, Key="w", Body=b"x")) == (
        full or permission == "WRITE")
    assert allowed(lambda: other.put_bucket_acl(Bucket=bucket, ACL="private")) == (
        full or permission == "WRITE_ACP")
    assert error_of(lambda: other.delete_bucket(Bucket=bucket))[1] == 403


def test_grant_by_email_and_unknown_grantees(s3, bucket, grantee):
    uid, _ = grantee
    acl = s3.get_bucket_acl(Bucket=bucket)
    by_mail = {"Grantee": {"EmailAddress": f"{uid}@example.com", "Type": "AmazonCustomerByEmail"},
               "Permission": "FULL_CONTROL"}
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=with_grant(acl, by_mail))
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"][-1] == shown(uid, "FULL_CONTROL")
    nobody = dict(by_mail, Grantee={"EmailAddress": "nobody@example.invalid",
                                    "Type": "AmazonCustomerByEmail"})
    assert error_of(lambda: s3.put_bucket_acl(
        Bucket=bucket, AccessControlPolicy=with_grant(acl, nobody)
    )) == ("UnresolvableGrantByEmailAddress", 400)
    assert error_of(lambda: s3.put_bucket_acl(
        Bucket=bucket, AccessControlPolicy=with_grant(acl, user_grant("_nobody", "READ"))
    )) == ("InvalidArgument", 400)


def test_acl_is_exactly_the_grants_given(s3, bucket):
    acl = s3.get_bucket_acl(Bucket=bucket)
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": []})
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"] == []
    s3.head_bucket(Bucket=bucket)  # the owner keeps every right
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    own = s3.get_object_acl(Bucket=bucket, Key="k")
    s3.put_object_acl(Bucket=bucket, Key="k", AccessControlPolicy={
        "Owner": own["Owner"], "Grants": [user_grant("tester", "READ_ACP")]})
    assert s3.get_object_acl(Bucket=bucket, Key="k")["Grants"] == [shown("tester", "READ_ACP")]
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"],
                                                          "Grants": acl["Grants"]})
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"] == acl["Grants"]


def test_grant_headers(s3, grantee):
    uid, other = grantee
    headers = {f"x-amz-grant-{p.lower().replace('_', '-')}": f'id="{uid}"' for p in PERMISSIONS}
    name = "t-" + uuid.uuid4().hex[:16]

    def add_headers(request, **kwargs):
        for header, value in headers.items():
            request.headers[header] = value

    s3.meta.events.register("before-sign.s3.CreateBucket", add_headers)
    s3.meta.events.register("before-sign.s3.PutObject", add_headers)
    s3.create_bucket(Bucket=name)
    try:
        expected = sorted(PERMISSIONS)
        granted = s3.get_bucket_acl(Bucket=name)["Grants"]
        assert sorted(g["Permission"] for g in granted) == expected
        assert {g["Grantee"]["ID"] for g in granted} == {uid}
        s3.put_object(Bucket=name, Key="k", Body=b"x")
        granted = s3.get_object_acl(Bucket=name, Key="k")["Grants"]
        assert sorted(g["Permission"] for g in granted) == expected
        other.put_object(Bucket=name, Key="theirs", Body=b"y")
        assert other.get_object(Bucket=name, Key="k")["Body"].read() == b"x"
    finally:
        for key in ("k", "theirs"):
            s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)


def test_object_grants(s3, bucket, grantee):
    uid, other = grantee
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert error_of(lambda: other.get_object(Bucket=bucket, Key="k"))[1] == 403
    acl = s3.get_object_acl(Bucket=bucket, Key="k")
    s3.put_object_acl(Bucket=bucket, Key="k",
                      AccessControlPolicy=with_grant(acl, user_grant(uid, "FULL_CONTROL")))
    assert other.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    # FULL_CONTROL on the object includes WRITE_ACP; the owner stays the bucket's.
    other.put_object_acl(Bucket=bucket, Key="k", AccessControlPolicy={
        "Owner": OWNER, "Grants": [user_grant(uid, "READ_ACP")]})
    assert other.get_object_acl(Bucket=bucket, Key="k")["Owner"] == OWNER
    assert error_of(lambda: other.get_object(Bucket=bucket, Key="k"))[1] == 403
    assert error_of(lambda: other.put_object_acl(Bucket=bucket, Key="k", ACL="private"))[1] == 403


def test_objects_written_by_another_user(s3, bucket, grantee):
    """Another user's object keeps its writer's full control; bucket-owner-* add the owner."""
    uid, other = grantee
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    other.put_object(Bucket=bucket, Key="theirs", Body=b"mine")
    assert other.get_object(Bucket=bucket, Key="theirs")["Body"].read() == b"mine"
    assert other.get_object_acl(Bucket=bucket, Key="theirs")["Grants"] == [
        shown(uid, "FULL_CONTROL")
    ]
    for canned, permission in (("bucket-owner-read", "READ"),
                               ("bucket-owner-full-control", "FULL_CONTROL")):
        other.put_object(Bucket=bucket, Key="theirs", Body=b"x", ACL=canned)
        assert other.get_object_acl(Bucket=bucket, Key="theirs")["Grants"] == [
            shown(uid, "FULL_CONTROL"),
            {"Grantee": {**OWNER, "Type": "CanonicalUser"}, "Permission": permission},
        ]
    other.put_object(Bucket=bucket, Key="open", Body=b"x", ACL="public-read")
    grants = other.get_object_acl(Bucket=bucket, Key="open")["Grants"]
    assert [g["Permission"] for g in grants] == ["READ", "FULL_CONTROL"]


def test_canned_grants_list_groups_first(s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert [(g["Grantee"]["Type"], g["Permission"]) for g in grants] == [
        ("Group", "READ"), ("Group", "WRITE"), ("CanonicalUser", "FULL_CONTROL")
    ]
