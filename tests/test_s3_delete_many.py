"""DeleteObjects over real HTTP, on every backend."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import pytest

from s3api import checksums as c
from tests.support.signing import signed_request
from tests.test_s3_errors import parse_error

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def document(keys: list[str], quiet: bool | None = None, versions: dict | None = None) -> bytes:
    versions = versions or {}
    items = "".join(
        f"<Object><Key>{escape(k)}</Key>"
        + (f"<VersionId>{versions[k]}</VersionId>" if k in versions else "")
        + "</Object>"
        for k in keys
    )
    flag = "" if quiet is None else f"<Quiet>{str(quiet).lower()}</Quiet>"
    return (
        f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{flag}{items}</Delete>'.encode()
    )


def md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def post_delete(gateway, bucket: str, body: bytes, headers: dict | None = None):
    headers = {"Content-MD5": md5(body)} if headers is None else headers
    return signed_request(
        gateway.endpoint, "POST", f"/{bucket}", body, query="delete", headers=headers
    )


def keys_of(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_delete_objects_with_boto3(s3, bucket):
    names = ["a", "<b> & \"c\" 'd'", "e f/ü", "kept"]
    for name in names:
        s3.put_object(Bucket=bucket, Key=name, Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={
            "Objects": [{"Key": "a"}, {"Key": "missing"}, {"Key": names[1]}, {"Key": names[2]}]
        },
    )
    assert [d["Key"] for d in result["Deleted"]] == ["a", "missing", names[1], names[2]]
    assert "Errors" not in result
    assert keys_of(s3, bucket) == ["kept"]


def test_quiet_reports_only_errors(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="q", Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q"}], "Quiet": True})
    assert "Deleted" not in result and "Errors" not in result
    body = document(["x", "y"], quiet=True, versions={"y": "v1"})
    resp = post_delete(gateway, bucket, body)
    root = ET.fromstring(resp.content)
    assert root.tag == NS + "DeleteResult"
    errors = root.findall(NS + "Error")
    assert len(root) == 1 and len(errors) == 1
    assert errors[0].findtext(NS + "Key") == "y"
    assert errors[0].findtext(NS + "Code") == "InvalidArgument"


def test_version_id_null_is_accepted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="v", Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "v", "VersionId": "null"}]}
    )
    assert result["Deleted"] == [{"Key": "v", "VersionId": "null"}]
    assert keys_of(s3, bucket) == []


def test_a_checksum_is_as_good_as_content_md5(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = document(["k"])
    resp = post_delete(gateway, bucket, body, {"x-amz-checksum-crc32": c.compute("CRC32", body)})
    assert resp.status_code == 200
    assert keys_of(s3, bucket) == []


def test_thousand_keys(gateway, s3, bucket):
    real = [f"key-{n:04d}" for n in range(0, 1000, 50)]
    for name in real:
        s3.put_object(Bucket=bucket, Key=name, Body=b"x")
    body = document([f"key-{n:04d}" for n in range(1000)])
    resp = post_delete(gateway, bucket, body)
    assert resp.status_code == 200
    assert len(ET.fromstring(resp.content).findall(NS + "Deleted")) == 1000
    assert keys_of(s3, bucket) == []


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "code"),
    [
        ("no integrity header", document(["k"]), {}, 400, "InvalidRequest"),
        ("wrong Content-MD5", document(["k"]), {"Content-MD5": md5(b"other")}, 400, "BadDigest"),
        (
            "wrong checksum",
            document(["k"]),
            {"x-amz-checksum-crc32": c.compute("CRC32", b"x")},
            400,
            "BadDigest",
        ),
        ("no keys", document([]), None, 400, "MalformedXML"),
        ("1001 keys", document([f"k{n}" for n in range(1001)]), None, 400, "MalformedXML"),
        ("no end", b"<Delete><Object><Key>k</Key></Object>", None, 400, "MalformedXML"),
        (
            "another document",
            b"<Remove><Object><Key>k</Key></Object></Remove>",
            None,
            400,
            "MalformedXML",
        ),
        (
            "an object without key",
            b"<Delete><Object><ETag>x</ETag></Object></Delete>",
            None,
            400,
            "MalformedXML",
        ),
        ("no document", b"", None, 400, "MissingRequestBodyError"),
    ],
)
def test_refused_requests_delete_nothing(gateway, s3, bucket, name, body, headers, status, code):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    resp = post_delete(gateway, bucket, body, headers)
    assert resp.status_code == status, name
    err = parse_error(resp)
    assert err["Code"] == code, name
    if code == "InvalidRequest":
        assert err["Message"] == "Missing required header for this request: Content-MD5"
    if name == "wrong Content-MD5":
        assert (err["CalculatedDigest"], err["ExpectedDigest"]) == (md5(body), md5(b"other"))
    assert keys_of(s3, bucket) == ["k"]


def test_missing_bucket(gateway):
    body = document(["k"])
    resp = post_delete(gateway, "no-such-bucket-for-delete", body)
    assert resp.status_code == 404 and parse_error(resp)["Code"] == "NoSuchBucket"
