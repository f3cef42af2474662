"""Anonymous and cross-user access through canned ACLs, over real HTTP on both backends.

Anonymous callers are plain ``requests`` without any signature and boto3 with
``signature_version=UNSIGNED``; the owner and a second user sign with SigV4.
"""

from __future__ import annotations

import uuid

import boto3
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import empty_and_delete
from tests.support.gateway_process import create_test_user
from tests.test_http_details import host_of, raw_connection, read_response_head, request_head

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def error_of(call) -> tuple[str, int]:
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("the call succeeded")


def unsigned_client(endpoint: str):
    cfg = Config(signature_version=UNSIGNED, retries={"max_attempts": 1},
                 s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=cfg)


@pytest.fixture
def anon(gateway):
    return unsigned_client(gateway.endpoint)


@pytest.fixture
def other(gateway):
    """A client of a second user, who owns nothing of the first user's."""
    uid = "other" + uuid.uuid4().hex[:6]
    key = "AKOTHER" + uuid.uuid4().hex[:13].upper()
    create_test_user(gateway.options, uid, access_key=key, secret="other-secret-" + uid)
    return gateway.client(access_key=key, secret="other-secret-" + uid)


def url(gateway, bucket: str, key: str = "") -> str:
    return f"{gateway.endpoint}/{bucket}/{key}" if key else f"{gateway.endpoint}/{bucket}"


def test_private_bucket_denies_everything_anonymous(gateway, s3, anon, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"secret")
    for method, path, query in [
        ("GET", bucket, ""), ("HEAD", bucket, ""), ("GET", f"{bucket}/obj", ""),
        ("HEAD", f"{bucket}/obj", ""), ("GET", f"{bucket}/missing", ""),
        ("PUT", f"{bucket}/new", ""), ("DELETE", f"{bucket}/obj", ""),
        ("GET", bucket, "acl"), ("GET", bucket, "location"), ("POST", f"{bucket}/up", "uploads"),
    ]:
        resp = requests.request(method, f"{gateway.endpoint}/{path}?{query}", data=b"x"
                                if method == "PUT" else None)
        assert resp.status_code == 403, (method, path, query)
        if method != "HEAD":
            assert b"<Code>AccessDenied</Code>" in resp.content
    assert error_of(lambda: anon.list_objects_v2(Bucket=bucket)) == ("AccessDenied", 403)
    assert error_of(lambda: anon.get_object(Bucket=bucket, Key="obj")) == ("AccessDenied", 403)
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"secret"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["obj"]


def test_public_read_bucket(gateway, s3, anon, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_object(Bucket=bucket, Key="dir/obj", Body=b"hello", ContentType="text/plain",
                  ACL="public-read")
    # Bucket READ lists; reading an object takes that object's own READ grant.
    s3.put_object(Bucket=bucket, Key="dir/private", Body=b"mine")
    assert requests.get(url(gateway, bucket, "dir/private")).status_code == 403
    s3.delete_object(Bucket=bucket, Key="dir/private")
    resp = requests.get(url(gateway, bucket, "dir/obj"))
    assert resp.status_code == 200 and resp.content == b"hello"
    assert resp.headers["Content-Type"] == "text/plain"
    assert not any(h.lower().startswith("x-atonix") for h in resp.headers)
    assert requests.head(url(gateway, bucket, "dir/obj")).headers["Content-Length"] == "5"
    ranged = requests.get(url(gateway, bucket, "dir/obj"), headers={"Range": "bytes=1-2"})
    assert ranged.status_code == 206 and ranged.content == b"el"
    assert [o["Key"] for o in anon.list_objects_v2(Bucket=bucket)["Contents"]] == ["dir/obj"]
    assert [o["Key"] for o in anon.list_objects(Bucket=bucket)["Contents"]] == ["dir/obj"]
    assert anon.list_object_versions(Bucket=bucket)["Versions"][0]["Key"] == "dir/obj"
    anon.head_bucket(Bucket=bucket)
    assert anon.get_object(Bucket=bucket, Key="dir/obj")["Body"].read() == b"hello"
    # A public reader may learn that a key is missing (it can list anyway).
    assert error_of(lambda: anon.get_object(Bucket=bucket, Key="nope")) == ("NoSuchKey", 404)
    # Writing, ACLs and configuration stay the owner's.
    assert error_of(lambda: anon.put_object(Bucket=bucket, Key="x", Body=b"x"))[1] == 403
    assert requests.put(url(gateway, bucket, "x"), data=b"x").status_code == 403
    assert error_of(lambda: anon.delete_object(Bucket=bucket, Key="dir/obj"))[1] == 403
    assert error_of(lambda: anon.get_bucket_acl(Bucket=bucket))[1] == 403
    assert error_of(lambda: anon.put_bucket_acl(Bucket=bucket, ACL="private"))[1] == 403
    assert error_of(lambda: anon.get_object_tagging(Bucket=bucket, Key="dir/obj"))[1] == 403
    assert error_of(lambda: anon.delete_bucket(Bucket=bucket))[1] == 403
    assert error_of(lambda: anon.create_multipart_upload(Bucket=bucket, Key="m"))[1] == 403
    # Back to private: anonymous listing ends; the object's own ACL still admits readers.
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    assert requests.get(url(gateway, bucket)).status_code == 403
    assert requests.get(url(gateway, bucket, "dir/obj")).status_code == 200
    s3.put_object_acl(Bucket=bucket, Key="dir/obj", ACL="private")
    assert requests.get(url(gateway, bucket, "dir/obj")).status_code == 403


def test_public_read_write_bucket(gateway, s3, anon, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    resp = requests.put(url(gateway, bucket, "anon.txt"), data=b"from anyone")
    assert resp.status_code == 200, resp.content
    anon.put_object(Bucket=bucket, Key="boto.txt", Body=b"unsigned boto3")
    # Anonymous writes are the bucket owner's objects.
    assert s3.get_object(Bucket=bucket, Key="anon.txt")["Body"].read() == b"from anyone"
    assert s3.get_object_acl(Bucket=bucket, Key="boto.txt")["Owner"]["ID"] == "tester"
    # Expect: 100-continue is answered once the ACL admits the anonymous writer.
    resp = requests.put(url(gateway, bucket, "expect.txt"), data=b"continued",
                        headers={"Expect": "100-continue"})
    assert resp.status_code == 200
    # Multipart, anonymously.
    upload = anon.create_multipart_upload(Bucket=bucket, Key="big")
    part = anon.upload_part(Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=1,
                            Body=b"p1")
    anon.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"p1"
    # The objects are the owner's and private: their anonymous writer may not read them.
    assert error_of(lambda: anon.get_object(Bucket=bucket, Key="big"))[1] == 403
    assert requests.delete(url(gateway, bucket, "anon.txt")).status_code == 204
    anon.delete_object(Bucket=bucket, Key="boto.txt")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["big", "expect.txt"]
    # Still owner-only: ACLs (WRITE_ACP is not WRITE) and deleting the bucket.
    assert error_of(lambda: anon.put_object_acl(Bucket=bucket, Key="big", ACL="private"))[1] == 403
    assert error_of(lambda: anon.put_bucket_acl(Bucket=bucket, ACL="private"))[1] == 403
    assert error_of(lambda: anon.delete_bucket(Bucket=bucket))[1] == 403


def test_object_public_read_in_private_bucket(gateway, s3, anon, bucket):
    s3.put_object(Bucket=bucket, Key="public", Body=b"open", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="private", Body=b"closed")
    assert requests.get(url(gateway, bucket, "public")).content == b"open"
    assert requests.head(url(gateway, bucket, "public")).status_code == 200
    assert requests.get(url(gateway, bucket, "private")).status_code == 403
    # Without READ on the bucket, a missing key is AccessDenied (existence is not revealed).
    assert requests.get(url(gateway, bucket, "missing")).status_code == 403
    assert requests.get(url(gateway, bucket)).status_code == 403  # no listing
    # PutObjectAcl flips it either way, atomically with the entry.
    s3.put_object_acl(Bucket=bucket, Key="public", ACL="private")
    assert requests.get(url(gateway, bucket, "public")).status_code == 403
    s3.put_object_acl(Bucket=bucket, Key="private", ACL="public-read")
    assert requests.get(url(gateway, bucket, "private")).content == b"closed"
    # An overwrite without an ACL is private again; CopyObject does not copy the ACL.
    s3.put_object(Bucket=bucket, Key="private", Body=b"new")
    assert requests.get(url(gateway, bucket, "private")).status_code == 403
    s3.put_object_acl(Bucket=bucket, Key="private", ACL="public-read")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "private"})
    assert requests.get(url(gateway, bucket, "copy")).status_code == 403
    s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "private"},
                   ACL="public-read")
    assert requests.get(url(gateway, bucket, "copy2")).content == b"new"
    # The ACL set at CreateMultipartUpload applies to the completed object.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ACL="public-read")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"multi")
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert anon.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"multi"
    assert anon.get_object(Bucket=bucket, Key="mp", PartNumber=1)["Body"].read() == b"multi"


def test_authenticated_read(gateway, s3, anon, other, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="authenticated-read")
    s3.put_object(Bucket=bucket, Key="obj", Body=b"members only", ACL="authenticated-read")
    assert other.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"members only"
    assert [o["Key"] for o in other.list_objects_v2(Bucket=bucket)["Contents"]] == ["obj"]
    other.head_bucket(Bucket=bucket)
    assert error_of(lambda: other.put_object(Bucket=bucket, Key="x", Body=b"x")) == (
        "AccessDenied", 403
    )
    assert error_of(lambda: other.delete_object(Bucket=bucket, Key="obj"))[1] == 403
    assert error_of(lambda: other.get_bucket_acl(Bucket=bucket))[1] == 403
    assert error_of(lambda: anon.get_object(Bucket=bucket, Key="obj"))[1] == 403
    assert error_of(lambda: anon.list_objects_v2(Bucket=bucket))[1] == 403
    # A URL presigned by the other user reads it; an unsigned request does not.
    presigned = other.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "obj"})
    assert requests.get(presigned).content == b"members only"
    assert requests.get(url(gateway, bucket, "obj")).status_code == 403
    # Copying needs READ on the source: the other user may copy into its own bucket.
    mine = "t-" + uuid.uuid4().hex[:16]
    other.create_bucket(Bucket=mine)
    try:
        other.copy_object(Bucket=mine, Key="c", CopySource={"Bucket": bucket, "Key": "obj"})
        assert other.get_object(Bucket=mine, Key="c")["Body"].read() == b"members only"
        s3.put_object_acl(Bucket=bucket, Key="obj", ACL="private")
        assert error_of(lambda: other.copy_object(
            Bucket=mine, Key="d", CopySource={"Bucket": bucket, "Key": "obj"}
        ))[1] == 403
    finally:
        empty_and_delete(other, mine)


def grants_of(policy: dict) -> set[tuple[str, str]]:
    return {
        (g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"]) for g in policy["Grants"]
    }


@pytest.mark.parametrize(
    ("canned", "groups"),
    [
        ("private", set()),
        ("public-read", {(ALL_USERS, "READ")}),
        ("public-read-write", {(ALL_USERS, "READ"), (ALL_USERS, "WRITE")}),
        ("authenticated-read", {(AUTHENTICATED_USERS, "READ")}),
    ],
)
def test_acl_round_trips(gateway, s3, bucket, canned, groups):
    owner = {("tester", "FULL_CONTROL")}
    s3.put_bucket_acl(Bucket=bucket, ACL=canned)
    policy = s3.get_bucket_acl(Bucket=bucket)
    assert grants_of(policy) == owner | groups
    # The document Get returns is accepted back as the same ACL (AccessControlPolicy body).
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={
        "Owner": policy["Owner"], "Grants": policy["Grants"]
    })
    assert grants_of(s3.get_bucket_acl(Bucket=bucket)) == owner | groups
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x", ACL=canned)
    assert grants_of(s3.get_object_acl(Bucket=bucket, Key="obj")) == owner | groups
    s3.put_object_acl(Bucket=bucket, Key="obj", ACL="private")
    s3.put_object_acl(Bucket=bucket, Key="obj", AccessControlPolicy={
        "Owner": policy["Owner"], "Grants": policy["Grants"]
    })
    assert grants_of(s3.get_object_acl(Bucket=bucket, Key="obj")) == owner | groups
    raw = requests.get(url(gateway, bucket, "obj"))
    assert (raw.status_code == 200) == (canned in ("public-read", "public-read-write"))


def test_create_bucket_with_acl(gateway, s3, anon):
    name = "t-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name, ACL="public-read")
    try:
        assert (ALL_USERS, "READ") in grants_of(s3.get_bucket_acl(Bucket=name))
        assert anon.list_objects_v2(Bucket=name)["KeyCount"] == 0
    finally:
        empty_and_delete(s3, name)


def test_object_owner_acls_mean_private(gateway, s3, bucket):
    for canned in ("bucket-owner-full-control", "bucket-owner-read"):
        s3.put_object(Bucket=bucket, Key="obj", Body=b"x", ACL=canned)
        assert grants_of(s3.get_object_acl(Bucket=bucket, Key="obj")) == {
            ("tester", "FULL_CONTROL")
        }
        assert requests.get(url(gateway, bucket, "obj")).status_code == 403
    assert error_of(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="bucket-owner-read")) == (
        "NotImplemented", 501
    )


def test_making_private_takes_effect_on_every_gateway(two_gateways):
    a, b = two_gateways
    owner_a = a.client()
    name = "t-" + uuid.uuid4().hex[:16]
    owner_a.create_bucket(Bucket=name)
    owner_a.put_object(Bucket=name, Key="obj", Body=b"x")
    owner_a.put_bucket_acl(Bucket=name, ACL="public-read")
    assert requests.get(url(b, name)).status_code == 200  # B has now read the ACL once
    owner_a.put_bucket_acl(Bucket=name, ACL="private")
    assert requests.get(url(b, name)).status_code == 403
    owner_a.put_object_acl(Bucket=name, Key="obj", ACL="public-read")
    assert requests.get(url(b, name, "obj")).status_code == 200
    owner_a.put_object_acl(Bucket=name, Key="obj", ACL="private")
    assert requests.get(url(b, name, "obj")).status_code == 403
    empty_and_delete(owner_a, name)


def test_anonymous_expect_continue(gateway, s3, bucket):
    """100 Continue comes once the ACL admits the anonymous writer, never before a refusal."""
    body = b"y" * 50_000
    path = f"/{bucket}/expect"
    headers = {"Expect": "100-continue", "Content-Length": str(len(body)), "Host": host_of(gateway)}
    with raw_connection(gateway) as sock:  # private: refused without a 100
        sock.sendall(request_head("PUT", path, headers))
        status, _, _ = read_response_head(sock)
        assert status == 403
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    with raw_connection(gateway) as sock:
        sock.sendall(request_head("PUT", path, headers))
        status, _, rest = read_response_head(sock)
        assert status == 100 and rest == b""
        sock.sendall(body)
        status, _, _ = read_response_head(sock)
        assert status == 200
    assert s3.get_object(Bucket=bucket, Key="expect")["Body"].read() == body
