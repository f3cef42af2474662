"""Edge cases clients and conformance suites check: listing echoes, expected owners,
stored Content-Encoding, presigned lifetimes."""

from __future__ import annotations

import datetime
import gzip

import pytest
import requests
from botocore.exceptions import ClientError

from tests.test_s3_public_access import anon, error_of, unsigned_client  # noqa: F401


def test_v1_prefix_is_echoed_as_sent(s3, bucket):
    """boto3 asks for url encoding and decodes Marker/Delimiter, not Prefix, in v1."""
    s3.put_object(Bucket=bucket, Key="a b", Body=b"x")
    assert s3.list_objects(Bucket=bucket, Prefix="\n")["Prefix"] == "\n"
    listed = s3.list_objects(Bucket=bucket, Prefix="a b", Marker="\n")
    assert (listed["Prefix"], listed["Marker"]) == ("a b", "\n")
    assert [o["Key"] for o in listed["Contents"]] == ["a b"]


def test_empty_continuation_token_lists_from_the_start(s3, bucket):
    for key in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    listed = s3.list_objects_v2(Bucket=bucket, ContinuationToken="")
    assert listed["ContinuationToken"] == ""
    assert [o["Key"] for o in listed["Contents"]] == ["a", "b"]


def test_expected_bucket_owner(s3, anon, bucket):  # noqa: F811
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    s3.list_objects(Bucket=bucket, ExpectedBucketOwner="tester")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner="tester")
    for call in (
        lambda: s3.list_objects(Bucket=bucket, ExpectedBucketOwner="someone"),
        lambda: s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="someone"),
        lambda: anon.list_objects(Bucket=bucket, ExpectedBucketOwner="testerfoo"),
        lambda: anon.put_object(Bucket=bucket, Key="n", Body=b"x", ExpectedBucketOwner="x"),
    ):
        assert error_of(call) == ("AccessDenied", 403)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("gzip", "gzip"),
        ("deflate, gzip", "deflate, gzip"),
        ("gzip, aws-chunked", "gzip"),
        ("aws-chunked, gzip", "gzip"),
        ("aws-chunked", None),
        ("aws-chunked, aws-chunked", None),
    ],
)
def test_aws_chunked_is_not_an_object_encoding(s3, bucket, sent, stored):
    s3.put_object(Bucket=bucket, Key="e", Body=b"x", ContentEncoding=sent)
    assert s3.head_object(Bucket=bucket, Key="e").get("ContentEncoding") == stored


def test_gzip_encoded_bodies_are_stored_as_sent(s3, bucket):
    data = gzip.compress(b"hello world" * 100)
    s3.put_object(Bucket=bucket, Key="g", Body=data, ContentEncoding="gzip")
    got = s3.get_object(Bucket=bucket, Key="g")
    assert got["ContentEncoding"] == "gzip"
    assert got["Body"].read() == data
    s3.put_object(Bucket=bucket, Key="d", Body=b"not deflate at all", ContentEncoding="deflate")
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"not deflate at all"


def test_presigned_lifetime_out_of_range_is_denied(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                    ExpiresIn=3600)
    assert requests.get(url, timeout=30).status_code == 200
    for lifetime in ("0", "-7", "609901"):
        resp = requests.get(url.replace("X-Amz-Expires=3600", f"X-Amz-Expires={lifetime}"),
                            timeout=30)
        assert resp.status_code == 403, lifetime


def test_missing_object_in_missing_bucket(s3):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="no-such-bucket-edges", Key="k")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"


def test_delete_conditions_on_mtime_and_size(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"abc")
    mtime = s3.head_object(Bucket=bucket, Key="k")["LastModified"]
    long_ago = datetime.datetime(2015, 1, 1)
    assert error_of(lambda: s3.delete_object(Bucket=bucket, Key="k",
                                             IfMatchLastModifiedTime=long_ago)) == (
        "PreconditionFailed", 412)
    assert error_of(lambda: s3.delete_object(Bucket=bucket, Key="k", IfMatchSize=4)) == (
        "PreconditionFailed", 412)
    s3.delete_object(Bucket=bucket, Key="k", IfMatchLastModifiedTime=mtime, IfMatchSize=3)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="k", IfMatchSize=4)  # gone already: 204


def test_delete_objects_entry_conditions(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="a", Body=b"abc")["ETag"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"abc")
    mtime = s3.head_object(Bucket=bucket, Key="b")["LastModified"]
    s3.put_object(Bucket=bucket, Key="c", Body=b"abc")
    refused = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": '"0000"'},
        {"Key": "b", "LastModifiedTime": datetime.datetime(2015, 1, 1)},
        {"Key": "c", "Size": 9},
    ]})
    assert [(e["Key"], e["Code"]) for e in refused["Errors"]] == [
        ("a", "PreconditionFailed"), ("b", "PreconditionFailed"), ("c", "PreconditionFailed")
    ]
    done = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": etag}, {"Key": "b", "LastModifiedTime": mtime},
        {"Key": "c", "Size": 3},
    ]})
    assert sorted(d["Key"] for d in done["Deleted"]) == ["a", "b", "c"]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_allow_unordered_listing(gateway, s3, bucket):
    """RGW's allow-unordered: accepted (our listings are ordered anyway), not with a
    delimiter."""
    for key in ("b", "a/x", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    client = gateway.client()
    client.meta.events.register(
        "before-call.s3.ListObjects",
        lambda params, **kw: params.__setitem__("url", params["url"] + "&allow-unordered=true"),
    )
    listed = client.list_objects(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["a/x", "b", "c"]
    assert error_of(lambda: client.list_objects(Bucket=bucket, Delimiter="/")) == (
        "InvalidArgument", 400)


@pytest.mark.parametrize("expect", ["200", ""])
def test_unknown_expect_values_are_ignored(gateway, s3, bucket, expect):
    client = gateway.client()
    client.meta.events.register(
        "before-call.s3.PutObject",
        lambda params, **kw: params["headers"].update({"Expect": expect}),
    )
    client.put_object(Bucket=bucket, Key="k", Body=b"body")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"body"


def test_head_bucket_read_stats(s3, bucket):
    """Ceph RGW's read-stats extension of HeadBucket: object count and bytes."""
    s3.meta.events.register(
        "request-created.s3.HeadBucket",
        lambda request, **kw: request.params.__setitem__("read-stats", "true"),
    )
    for key in ("foo", "bar", "bazz"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    headers = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    assert (headers["x-rgw-object-count"], headers["x-rgw-bytes-used"]) == ("3", "10")


def test_missing_object_says_it_is_no_delete_marker(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="gone")
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "false"
