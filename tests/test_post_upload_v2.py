"""POST uploads signed the older way (AWSAccessKeyId + HMAC-SHA1 signature) and anonymous ones.

Forms are built by hand, as HTML pages and older SDKs build them: every field a
multipart part, the policy a base64 JSON document signed with the secret key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET

import requests

from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET

TIMEOUT = 60


def _policy(bucket: str, *, seconds: int = 600, conditions: list | None = None) -> str:
    expiration = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    if conditions is None:
        conditions = [
            {"bucket": bucket},
            ["starts-with", "$key", "up/"],
            {"acl": "private"},
            ["starts-with", "$Content-Type", "text/"],
            ["content-length-range", 0, 1024],
        ]
    doc = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"), "conditions": conditions}
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _sign(policy: str, secret: str = TEST_SECRET) -> str:
    digest = hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _form(policy: str, **overrides) -> dict[str, str]:
    fields = {
        "key": "up/a.txt",
        "AWSAccessKeyId": TEST_ACCESS_KEY,
        "acl": "private",
        "signature": _sign(policy),
        "policy": policy,
        "Content-Type": "text/plain",
    }
    fields.update(overrides)
    return {name: value for name, value in fields.items() if value is not None}


def _post(gateway, bucket: str, fields: dict, content: bytes = b"hello"):
    files = [(name, (None, value)) for name, value in fields.items()]
    files.append(("file", ("a.txt", content)))
    return requests.post(f"{gateway.endpoint}/{bucket}", files=files, timeout=TIMEOUT,
                         allow_redirects=False)


def _code(resp) -> str:
    return ET.fromstring(resp.content).findtext("Code")


def test_v2_signed_form_uploads(gateway, s3, bucket):
    policy = _policy(bucket)
    resp = _post(gateway, bucket, _form(policy))
    assert resp.status_code == 204, resp.text
    got = s3.get_object(Bucket=bucket, Key="up/a.txt")
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "text/plain"


def test_v2_field_names_are_case_insensitive(gateway, s3, bucket):
    policy = _policy(bucket)
    fields = {name.swapcase(): value for name, value in _form(policy).items()}
    assert _post(gateway, bucket, fields).status_code == 204


def test_v2_signature_failures(gateway, s3, bucket):
    policy = _policy(bucket)
    resp = _post(gateway, bucket, _form(policy, signature=_sign(policy, "wrong")))
    assert (resp.status_code, _code(resp)) == (403, "SignatureDoesNotMatch")
    resp = _post(gateway, bucket, _form(policy, AWSAccessKeyId="NOSUCHKEY0000000000"))
    assert (resp.status_code, _code(resp)) == (403, "InvalidAccessKeyId")
    resp = _post(gateway, bucket, _form(policy, signature=None))
    assert (resp.status_code, _code(resp)) == (400, "InvalidArgument")
    expired = _policy(bucket, seconds=-600)
    resp = _post(gateway, bucket, _form(expired))
    assert (resp.status_code, _code(resp)) == (403, "AccessDenied")
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_policy_must_name_the_bucket(gateway, s3, bucket):
    policy = _policy(bucket, conditions=[
        ["starts-with", "$key", "up/"], {"acl": "private"},
        ["starts-with", "$Content-Type", "text/"],
    ])
    resp = _post(gateway, bucket, _form(policy, signature=_sign(policy)))
    assert resp.status_code == 403
    assert "Extra input fields: bucket" in ET.fromstring(resp.content).findtext("Message")


def test_anonymous_form_into_public_read_write_bucket(gateway, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    fields = {"key": "anon.txt", "acl": "public-read", "success_action_status": "201"}
    resp = _post(gateway, bucket, fields, b"from anyone")
    assert resp.status_code == 201, resp.text
    assert ET.fromstring(resp.content).findtext("Key") == "anon.txt"
    assert s3.get_object(Bucket=bucket, Key="anon.txt")["Body"].read() == b"from anyone"
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    resp = _post(gateway, bucket, {"key": "again.txt"})
    assert (resp.status_code, _code(resp)) == (403, "AccessDenied")


def test_form_tagging_field(gateway, s3, bucket):
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    tagging = ("<Tagging><TagSet><Tag><Key>b</Key><Value>2</Value></Tag>"
               "<Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>")
    resp = _post(gateway, bucket, {"key": "tagged", "tagging": tagging})
    assert resp.status_code == 204, resp.text
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}
    ]
    resp = _post(gateway, bucket, {"key": "bad", "tagging": "<Tagging><TagSet>"})
    assert (resp.status_code, _code(resp)) == (400, "MalformedXML")


def test_form_checksum_field(gateway, s3, bucket):
    """An x-amz-checksum-* field is the file's checksum: checked, stored, no condition needed."""
    policy = _policy(bucket)
    data = b"x" * 1000
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    resp = _post(gateway, bucket, _form(policy, **{"x-amz-checksum-sha256": good}), data)
    assert resp.status_code == 204, resp.text
    head = s3.head_object(Bucket=bucket, Key="up/a.txt", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == good
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    resp = _post(gateway, bucket, _form(policy, key="up/b.txt", **{"x-amz-checksum-sha256": wrong}),
                 data)
    assert (resp.status_code, _code(resp)) == (400, "BadDigest")
    resp = _post(gateway, bucket, _form(policy, key="up/c.txt",
                                        **{"x-amz-checksum-sha256": "sailorjerry"}), data)
    assert resp.status_code == 400
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["up/a.txt"]
