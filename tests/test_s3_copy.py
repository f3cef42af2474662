"""CopyObject over real HTTP, on every backend (plus the pure parsing rules)."""

from __future__ import annotations

import email.utils
import hashlib
import os
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from s3api import checksums as c
from s3api.errors import S3Error
from s3api.handlers.copy import CopySource, parse_copy_source
from tests.conftest import empty_and_delete
from tests.support.signing import signed_request
from tests.test_s3_errors import parse_error

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
TO_ITSELF = (
    "This copy request is illegal because it is trying to copy an object to itself without "
    "changing the object's metadata, storage class, website redirect location or encryption "
    "attributes."
)
PROPERTIES = {
    "CacheControl": "max-age=1",
    "ContentDisposition": "inline",
    "ContentEncoding": "identity",
    "ContentLanguage": "en",
    "ContentType": "text/plain",
    "Metadata": {"a": "1"},
}


def code_of(excinfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def copy_raw(gateway, bucket: str, key: str, source: str, **headers):
    return signed_request(
        gateway.endpoint,
        "PUT",
        f"/{bucket}/{key}",
        headers={"x-amz-copy-source": source, **headers},
    )


@pytest.fixture
def other_bucket(s3):
    name = "t-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete(s3, name)


# -- pure parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("b/a b", CopySource("b", "a b")),
        ("/b/a%20b", CopySource("b", "a b")),
        ("b/a+b", CopySource("b", "a b")),
        ("b/a%2Bb", CopySource("b", "a+b")),
        ("/b/%C3%BCn%C3%AF/x%20%E6%96%87", CopySource("b", "ünï/x 文")),
        ("/b/a%25b%3Fc%26d%3De", CopySource("b", "a%b?c&d=e")),
        ("/b/a%20b?versionId=null", CopySource("b", "a b", "null")),
        ("b/dir/", CopySource("b", "dir/")),
    ],
)
def test_parse_copy_source(value, expected):
    assert parse_copy_source(value) == expected


@pytest.mark.parametrize(
    "value", ["/b", "b/", "/", "", "b/o?partNumber=1", "b/%FF", "b/o?versionId=x"]
)
def test_parse_copy_source_refuses(value):
    with pytest.raises(S3Error) as info:
        parse_copy_source(value)
    assert info.value.code.name == "InvalidArgument"


# -- over HTTP --------------------------------------------------------------------------------


def test_copy_within_and_across_buckets(s3, bucket, other_bucket):
    data = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="src", Body=data, Tagging="t=1", **PROPERTIES)
    result = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert result["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    across = s3.copy_object(
        Bucket=other_bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}
    )
    assert across["CopyObjectResult"]["ETag"] == result["CopyObjectResult"]["ETag"]
    for target in (bucket, other_bucket):
        got = s3.get_object(Bucket=target, Key="dst")
        assert got["Body"].read() == data
        for name, value in PROPERTIES.items():
            assert got[name] == value
        assert s3.get_object_tagging(Bucket=target, Key="dst")["TagSet"] == [
            {"Key": "t", "Value": "1"}
        ]


def test_copy_result_document(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"hello", ChecksumAlgorithm="CRC32")
    resp = copy_raw(gateway, bucket, "dst", f"/{bucket}/src")
    assert resp.status_code == 200
    root = ET.fromstring(resp.content)
    assert root.tag == NS + "CopyObjectResult"
    fields = {child.tag.removeprefix(NS): child.text for child in root}
    assert fields["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'
    assert fields["ChecksumCRC32"] == c.compute("CRC32", b"hello")
    assert fields["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert fields["LastModified"].startswith(head["LastModified"].strftime("%Y-%m-%dT%H:%M:%S"))
    assert "x-amz-version-id" not in resp.headers


def test_copy_computes_requested_or_default_checksum(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"hello", ChecksumAlgorithm="SHA1")
    copied = s3.copy_object(
        Bucket=bucket,
        Key="sha",
        CopySource={"Bucket": bucket, "Key": "src"},
        ChecksumAlgorithm="SHA256",
    )
    assert copied["CopyObjectResult"]["ChecksumSHA256"] == c.compute("SHA256", b"hello")
    kept = s3.copy_object(Bucket=bucket, Key="kept", CopySource={"Bucket": bucket, "Key": "src"})
    assert kept["CopyObjectResult"]["ChecksumSHA1"] == c.compute("SHA1", b"hello")


def test_metadata_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", **PROPERTIES)
    src = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(
        Bucket=bucket, Key="copy", CopySource=src, MetadataDirective="COPY",
        ContentType="image/png", Metadata={"b": "2"},
    )  # fmt: skip
    kept = s3.head_object(Bucket=bucket, Key="copy")
    assert (kept["ContentType"], kept["Metadata"]) == ("text/plain", {"a": "1"})
    s3.copy_object(
        Bucket=bucket, Key="replaced", CopySource=src, MetadataDirective="REPLACE",
        ContentType="image/png", Metadata={"b": "2"},
    )  # fmt: skip
    replaced = s3.head_object(Bucket=bucket, Key="replaced")
    assert (replaced["ContentType"], replaced["Metadata"]) == ("image/png", {"b": "2"})
    assert "CacheControl" not in replaced
    s3.copy_object(Bucket=bucket, Key="bare", CopySource=src, MetadataDirective="REPLACE")
    assert s3.head_object(Bucket=bucket, Key="bare")["ContentType"] == "binary/octet-stream"


def test_tagging_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1")
    src = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="c1", CopySource=src, TaggingDirective="COPY", Tagging="b=2")
    s3.copy_object(
        Bucket=bucket, Key="c2", CopySource=src, TaggingDirective="REPLACE", Tagging="b=2&c=3"
    )
    s3.copy_object(Bucket=bucket, Key="c3", CopySource=src, TaggingDirective="REPLACE")
    tags = {k: s3.get_object_tagging(Bucket=bucket, Key=k)["TagSet"] for k in ("c1", "c2", "c3")}
    assert tags["c1"] == [{"Key": "a", "Value": "1"}]
    assert tags["c2"] == [{"Key": "b", "Value": "2"}, {"Key": "c", "Value": "3"}]
    assert tags["c3"] == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("x-amz-metadata-directive", "MERGE"), ("x-amz-tagging-directive", "replace")],
)
def test_unknown_directive(gateway, s3, bucket, name, value):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    resp = copy_raw(gateway, bucket, "dst", f"{bucket}/src", **{name: value})
    assert resp.status_code == 400
    err = parse_error(resp)
    assert (err["Code"], err["ArgumentName"], err["ArgumentValue"]) == (
        "InvalidArgument",
        name,
        value,
    )


def test_copy_to_itself(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"hello", **PROPERTIES)
    for headers in ({}, {"x-amz-metadata-directive": "COPY", "x-amz-meta-b": "2"},
                    {"x-amz-tagging-directive": "REPLACE", "x-amz-tagging": "b=2"}):  # fmt: skip
        resp = copy_raw(gateway, bucket, "o", f"/{bucket}/o", **headers)
        assert resp.status_code == 400
        err = parse_error(resp)
        assert (err["Code"], err["Message"]) == ("InvalidRequest", TO_ITSELF)
    s3.copy_object(
        Bucket=bucket, Key="o", CopySource={"Bucket": bucket, "Key": "o"},
        MetadataDirective="REPLACE", Metadata={"b": "2"},
    )  # fmt: skip
    head = s3.head_object(Bucket=bucket, Key="o")
    assert head["Metadata"] == {"b": "2"}
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"hello"
    resp = copy_raw(gateway, bucket, "o", f"/{bucket}/o", **{"x-amz-storage-class": "STANDARD"})
    assert resp.status_code == 200


@pytest.mark.parametrize("key", ["a b", "a+b", "ünï/çødé 文字", "a%b?c&d=e", "dir/"])
def test_copy_source_encodings(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == key.encode()


def test_copy_source_raw_forms(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a b", Body=b"space")
    for source in (
        f"{bucket}/a b",
        f"/{bucket}/a%20b",
        f"{bucket}/a+b",
        f"/{bucket}/a%20b?versionId=null",
    ):
        resp = copy_raw(gateway, bucket, "copy", source)
        assert resp.status_code == 200, (source, resp.text)
    bad = copy_raw(gateway, bucket, "copy", f"/{bucket}/a%20b?versionId=v1")
    assert bad.status_code == 400 and parse_error(bad)["Message"] == "Invalid version id specified"


@pytest.mark.parametrize(
    "source", ["/only-bucket", "bucket/", "/", "bucket/o?partNumber=1", "bucket/%FF"]
)
def test_invalid_copy_source(gateway, bucket, source):
    resp = copy_raw(gateway, bucket, "dst", source)
    assert resp.status_code == 400
    err = parse_error(resp)
    assert err["Code"] == "InvalidArgument"
    assert (
        err["Message"]
        == "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
    )
    assert err["ArgumentValue"] == source


def test_missing_source(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nope"})
    assert code_of(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket,
            Key="dst",
            CopySource={"Bucket": "no-such-" + uuid.uuid4().hex[:8], "Key": "k"},
        )
    assert code_of(e) == ("NoSuchBucket", 404)


def test_copy_source_conditions(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"hello")
    head = s3.head_object(Bucket=bucket, Key="src")
    etag, modified = head["ETag"], head["LastModified"].timestamp()
    before = email.utils.formatdate(modified - 1, usegmt=True)
    same = email.utils.formatdate(modified, usegmt=True)
    after = email.utils.formatdate(modified + 1, usegmt=True)
    cases = [
        ({"if-match": etag}, None),
        ({"if-match": '"other"'}, "if-match"),
        ({"if-none-match": '"other"'}, None),
        ({"if-none-match": etag}, "if-none-match"),
        ({"if-modified-since": before}, None),
        ({"if-modified-since": same}, "if-modified-since"),
        ({"if-unmodified-since": after}, None),
        ({"if-unmodified-since": before}, "if-unmodified-since"),
        ({"if-match": etag, "if-unmodified-since": before}, None),
        ({"if-none-match": etag, "if-modified-since": before}, "if-none-match"),
    ]
    for conditions, failed in cases:
        headers = {f"x-amz-copy-source-{k}": v for k, v in conditions.items()}
        resp = copy_raw(gateway, bucket, "dst", f"{bucket}/src", **headers)
        if failed is None:
            assert resp.status_code == 200, conditions
            s3.delete_object(Bucket=bucket, Key="dst")
            continue
        assert resp.status_code == 412, conditions
        err = parse_error(resp)
        assert (err["Code"], err["Condition"]) == (
            "PreconditionFailed",
            f"x-amz-copy-source-{failed}",
        )
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["src"]


def test_copy_with_boto3_conditions(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="src", Body=b"x")["ETag"]
    src = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=src, CopySourceIfMatch=etag)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="no", CopySource=src, CopySourceIfNoneMatch=etag)
    assert code_of(e) == ("PreconditionFailed", 412)


def test_destination_conditions(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    s3.put_object(Bucket=bucket, Key="exists", Body=b"old")
    resp = copy_raw(gateway, bucket, "exists", f"{bucket}/src", **{"If-None-Match": "*"})
    assert resp.status_code == 412 and parse_error(resp)["Condition"] == "If-None-Match"
    assert s3.get_object(Bucket=bucket, Key="exists")["Body"].read() == b"old"
    assert (
        copy_raw(gateway, bucket, "fresh", f"{bucket}/src", **{"If-None-Match": "*"}).status_code
        == 200
    )


def test_large_copy_is_streamed_into_new_stripes(s3, bucket):
    data = os.urandom(9 * 1024 * 1024 + 5)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    s3.copy_object(Bucket=bucket, Key="big-copy", CopySource={"Bucket": bucket, "Key": "big"})
    s3.delete_object(Bucket=bucket, Key="big")  # the copy owns its own bytes
    got = s3.get_object(Bucket=bucket, Key="big-copy", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_copy_of_multipart_object_has_md5_etag(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    bodies = [b"a" * 5 * 1024 * 1024, b"tail"]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=n, Body=b)[
                "ETag"
            ],
        }
        for n, b in enumerate(bodies, start=1)
    ]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    result = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"})
    assert result["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"".join(bodies)).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"".join(bodies)
