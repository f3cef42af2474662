"""Browser-based POST uploads: boto3's generate_presigned_post, sent with requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.gateway_process import TEST_SECRET, create_test_user

TIMEOUT = 60


def post(presigned: dict, content: bytes, filename: str = "upload.bin", extra: dict | None = None,
         file_field: str = "file"):
    fields = {**presigned["fields"], **(extra or {})}
    files = {file_field: (filename, content)}
    return requests.post(presigned["url"], data=fields, files=files, timeout=TIMEOUT,
                         allow_redirects=False)


def error(resp) -> dict[str, str]:
    root = ET.fromstring(resp.content)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


def test_simple_upload(s3, bucket):
    presigned = s3.generate_presigned_post(bucket, "hello.txt", ExpiresIn=600)
    resp = post(presigned, b"hello world")
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    etag = '"' + hashlib.md5(b"hello world").hexdigest() + '"'
    assert resp.headers["ETag"] == etag
    assert resp.headers["Location"].endswith(f"/{bucket}/hello.txt")
    got = s3.get_object(Bucket=bucket, Key="hello.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ContentType"] == "binary/octet-stream"


def test_filename_substitution_fields_and_201(s3, bucket):
    fields = {
        "Content-Type": "text/plain",
        "x-amz-meta-color": "blue",
        "success_action_status": "201",
        "Cache-Control": "max-age=60",
    }
    conditions = [
        ["starts-with", "$key", "user/photos/"],
        {"Content-Type": "text/plain"},
        ["starts-with", "$x-amz-meta-color", ""],
        {"success_action_status": "201"},
        {"Cache-Control": "max-age=60"},
    ]
    presigned = s3.generate_presigned_post(
        bucket, "user/photos/${filename}", Fields=fields, Conditions=conditions, ExpiresIn=600
    )
    resp = post(presigned, b"pixels", filename="C:\\Users\\me\\cat pic.jpg")
    assert resp.status_code == 201, resp.text
    root = ET.fromstring(resp.content)
    assert root.tag == "PostResponse"
    assert root.findtext("Bucket") == bucket
    assert root.findtext("Key") == "user/photos/cat pic.jpg"
    assert root.findtext("ETag") == '"' + hashlib.md5(b"pixels").hexdigest() + '"'
    assert root.findtext("Location").endswith(f"/{bucket}/user%2Fphotos%2Fcat%20pic.jpg")
    got = s3.get_object(Bucket=bucket, Key="user/photos/cat pic.jpg")
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "max-age=60"


def test_success_status_200_and_redirect(s3, bucket):
    presigned = s3.generate_presigned_post(
        bucket, "a/b.txt", Fields={"success_action_status": "200"},
        Conditions=[{"success_action_status": "200"}], ExpiresIn=600,
    )
    resp = post(presigned, b"x")
    assert resp.status_code == 200 and resp.content == b""
    redirect = "https://app.example.com/done?from=upload"
    presigned = s3.generate_presigned_post(
        bucket, "a/c.txt", Fields={"success_action_redirect": redirect},
        Conditions=[["starts-with", "$success_action_redirect", "https://app.example.com/"]],
        ExpiresIn=600,
    )
    resp = post(presigned, b"y")
    assert resp.status_code == 303
    location = urlsplit(resp.headers["Location"])
    assert location.netloc == "app.example.com" and location.path == "/done"
    query = parse_qs(location.query)
    assert query == {
        "from": ["upload"], "bucket": [bucket], "key": ["a/c.txt"],
        "etag": ['"' + hashlib.md5(b"y").hexdigest() + '"'],
    }


def test_large_file_streams(s3, bucket):
    content = hashlib.sha256(b"seed").digest() * (9 * 1024 * 1024 // 32 + 7)
    presigned = s3.generate_presigned_post(
        bucket, "big.bin", Conditions=[["content-length-range", 1, 20 * 1024 * 1024]],
        ExpiresIn=600,
    )
    resp = post(presigned, content)
    assert resp.status_code == 204, resp.text
    got = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(content).digest()


def test_content_length_range(s3, bucket):
    presigned = s3.generate_presigned_post(
        bucket, "sized", Conditions=[["content-length-range", 5, 10]], ExpiresIn=600
    )
    for size in (5, 10):
        assert post(presigned, b"z" * size).status_code == 204
    s3.delete_object(Bucket=bucket, Key="sized")
    resp = post(presigned, b"z" * 11)
    assert resp.status_code == 400
    err = error(resp)
    assert err["Code"] == "EntityTooLarge" and err["MaxSizeAllowed"] == "10"
    resp = post(presigned, b"z" * 4)
    assert resp.status_code == 400
    err = error(resp)
    assert err["Code"] == "EntityTooSmall"
    assert (err["ProposedSize"], err["MinSizeAllowed"]) == ("4", "5")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)  # nothing was stored


def test_expired_policy(s3, bucket):
    presigned = s3.generate_presigned_post(bucket, "late", ExpiresIn=-10)
    resp = post(presigned, b"x")
    assert resp.status_code == 403
    err = error(resp)
    assert err["Code"] == "AccessDenied"
    assert err["Message"] == "Invalid according to Policy: Policy expired."


def test_condition_failures(s3, bucket):
    presigned = s3.generate_presigned_post(
        bucket, "uploads/${filename}", Conditions=[["starts-with", "$key", "uploads/"]],
        ExpiresIn=600,
    )
    resp = post(presigned, b"x", extra={"key": "elsewhere/f"})
    assert resp.status_code == 403
    assert error(resp)["Message"] == (
        'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "uploads/"]'
    )
    resp = post(presigned, b"x", extra={"x-amz-meta-extra": "1"})
    assert resp.status_code == 403
    assert error(resp)["Message"] == (
        "Invalid according to Policy: Extra input fields: x-amz-meta-extra"
    )
    assert post(presigned, b"x", extra={"x-ignore-me": "1"}).status_code == 204
    presigned = s3.generate_presigned_post(bucket, "exact", ExpiresIn=600)
    resp = post(presigned, b"x", extra={"key": "other"})
    assert resp.status_code == 403
    assert error(resp)["Message"].endswith('["eq", "$key", "exact"]')
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert stored == ["uploads/upload.bin"]


def test_policy_for_another_bucket(s3, bucket):
    other = bucket + "-x"
    s3.create_bucket(Bucket=other)
    try:
        presigned = s3.generate_presigned_post(other, "k", ExpiresIn=600)
        presigned["url"] = presigned["url"].replace(other, bucket)
        resp = post(presigned, b"x")
        assert resp.status_code == 403
        assert "Policy Condition failed" in error(resp)["Message"]
    finally:
        s3.delete_bucket(Bucket=other)


def test_bad_signatures(gateway, s3, bucket):
    presigned = s3.generate_presigned_post(bucket, "k", ExpiresIn=600)
    resp = post(presigned, b"x", extra={"x-amz-signature": "0" * 64})
    assert resp.status_code == 403
    err = error(resp)
    assert err["Code"] == "SignatureDoesNotMatch"
    assert err["StringToSign"] == presigned["fields"]["policy"]
    tampered = base64.b64decode(presigned["fields"]["policy"])
    tampered = tampered.replace(b'"k"', b'"other"')
    extra = {"policy": base64.b64encode(tampered).decode(), "key": "other"}
    resp = post(presigned, b"x", extra=extra)
    assert error(resp)["Code"] == "SignatureDoesNotMatch"
    wrong_key = gateway.client(access_key="NOSUCHKEY00000000000", secret=TEST_SECRET)
    resp = post(wrong_key.generate_presigned_post(bucket, "k", ExpiresIn=600), b"x")
    assert resp.status_code == 403 and error(resp)["Code"] == "InvalidAccessKeyId"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_missing_fields(s3, bucket):
    presigned = s3.generate_presigned_post(bucket, "k", ExpiresIn=600)
    fields = dict(presigned["fields"])
    del fields["x-amz-signature"]
    files = {"file": ("f", b"x")}
    resp = requests.post(presigned["url"], data=fields, files=files, timeout=TIMEOUT)
    assert resp.status_code == 400
    err = error(resp)
    assert (err["Code"], err["ArgumentName"]) == ("InvalidArgument", "X-Amz-Signature")
    resp = requests.post(presigned["url"], data=presigned["fields"],
                         files={"other": ("f", b"x")}, timeout=TIMEOUT)
    assert resp.status_code == 400
    assert error(resp)["ArgumentName"] == "file"


def test_not_a_form(s3, bucket):
    presigned = s3.generate_presigned_post(bucket, "k", ExpiresIn=600)
    resp = requests.post(presigned["url"], data=presigned["fields"], timeout=TIMEOUT)
    assert resp.status_code == 412
    err = error(resp)
    assert err["Code"] == "PreconditionFailed"
    assert err["Condition"] == "Bucket POST must be of the enclosure-type multipart/form-data"


def test_anonymous_post_is_denied(gateway, s3, bucket):
    resp = requests.post(f"{gateway.endpoint}/{bucket}", data={"key": "anon"},
                         files={"file": ("f", b"x")}, timeout=TIMEOUT)
    assert resp.status_code == 403 and error(resp)["Code"] == "AccessDenied"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize(
    "policy, message",
    [
        ("not base64!", "Invalid Policy: invalid Base64 encoding."),
        (base64.b64encode(b"{nope").decode(), "Invalid Policy: Invalid JSON."),
        (base64.b64encode(json.dumps({"conditions": []}).encode()).decode(),
         "Invalid Policy: Policy missing expiration."),
        (base64.b64encode(json.dumps({"expiration": "2030-01-01T00:00:00Z"}).encode()).decode(),
         "Invalid Policy: Policy missing conditions."),
        (base64.b64encode(json.dumps(
            {"expiration": "2030-01-01T00:00:00Z", "conditions": [{}]}).encode()).decode(),
         "Invalid Policy: Invalid Simple-Condition: "
         "Simple-Conditions must have exactly one property specified."),
    ],
)
def test_invalid_policy_documents(s3, bucket, policy, message):
    """A validly signed but malformed policy: 400 InvalidPolicyDocument."""
    presigned = s3.generate_presigned_post(bucket, "k", ExpiresIn=600)
    fields = dict(presigned["fields"])
    fields["policy"] = policy
    fields["x-amz-signature"] = resign(fields)
    resp = requests.post(presigned["url"], data=fields, files={"file": ("f", b"x")},
                         timeout=TIMEOUT)
    assert resp.status_code == 400
    err = error(resp)
    assert (err["Code"], err["Message"]) == ("InvalidPolicyDocument", message)


def resign(fields: dict) -> str:
    """Sign a policy text as botocore's presigned POST does (SigV4 over the base64 text)."""
    day = fields["x-amz-credential"].split("/")[1]
    key = ("AWS4" + TEST_SECRET).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, fields["policy"].encode(), hashlib.sha256).hexdigest()


def test_pre_file_fields_are_bounded(s3, bucket):
    presigned = s3.generate_presigned_post(bucket, "k", ExpiresIn=600)
    resp = post(presigned, b"x", extra={"x-ignore-padding": "p" * 30_000})
    assert resp.status_code == 400
    err = error(resp)
    assert err["Code"] == "MaxPostPreDataLengthExceeded"
    assert err["MaxPostPreDataLengthBytes"] == "20480"


def test_other_owner_cannot_post(gateway, s3, bucket):
    uid = "poster" + uuid.uuid4().hex[:6]
    key = "AKPOST" + uuid.uuid4().hex[:14].upper()
    create_test_user(gateway.options, uid, access_key=key, secret="secret-" + uid)
    stranger = gateway.client(access_key=key, secret="secret-" + uid)
    resp = post(stranger.generate_presigned_post(bucket, "k", ExpiresIn=600), b"x")
    assert resp.status_code == 403 and error(resp)["Code"] == "AccessDenied"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
