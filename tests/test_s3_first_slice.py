"""The S3 first slice over HTTP with boto3, on every backend: buckets, objects, errors."""

from __future__ import annotations

import hashlib
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET


def error_of(excinfo) -> tuple[str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle(s3):
    name = "lc-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "")
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert error_of(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert error_of(e)[1] == 404
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_create_existing_bucket(s3, bucket):
    """Creating one's own bucket again succeeds and keeps it (us-east-1, RGW) unless the ACL
    asked for differs from the bucket's: then BucketAlreadyExists, as RGW answers."""
    s3.put_object(Bucket=bucket, Key="kept", Body=b"x")
    s3.create_bucket(Bucket=bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["kept"]
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=bucket, ACL="public-read")
    assert error_of(e) == ("BucketAlreadyExists", 409)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.create_bucket(Bucket=bucket, ACL="public-read")
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=bucket)
    assert error_of(e) == ("BucketAlreadyExists", 409)


@pytest.mark.parametrize(
    "name", ["ab", "UPPER", "a" * 64, "-lead", "trail-", "a..b", "192.168.1.1", "under_score"]
)
def test_invalid_bucket_names(s3, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert error_of(e) == ("InvalidBucketName", 400)


def test_create_bucket_with_location(s3):
    name = "loc-" + uuid.uuid4().hex[:12]
    with pytest.raises(ClientError) as e:
        s3.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    assert error_of(e) == ("InvalidLocationConstraint", 400)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize("size", [0, 1, 4096, 64 * 1024, 64 * 1024 + 1, 9 * 1024 * 1024 + 7])
def test_put_get_sizes(s3, bucket, size):
    data = os.urandom(size)
    put = s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key=f"obj-{size}")
    assert got["Body"].read() == data
    assert got["ContentLength"] == size
    assert got["ETag"] == put["ETag"]


def test_metadata_and_headers(s3, bucket):
    s3.put_object(
        Bucket=bucket,
        Key="m",
        Body=b"x",
        ContentType="text/plain",
        Metadata={"color": "blue", "Mixed-Case": "Yes"},
        CacheControl="max-age=60",
        ContentDisposition="attachment",
        ContentEncoding="identity",
        ContentLanguage="en",
    )
    head = s3.head_object(Bucket=bucket, Key="m")
    assert head["ContentType"] == "text/plain"
    assert head["Metadata"] == {"color": "blue", "mixed-case": "Yes"}
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentDisposition"] == "attachment"
    assert head["ContentEncoding"] == "identity"
    assert head["ContentLanguage"] == "en"
    assert head["ContentLength"] == 1
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


def test_overwrite_replaces_and_frees(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"a" * (5 * 1024 * 1024))
    s3.put_object(Bucket=bucket, Key="o", Body=b"small")
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"small"
    s3.put_object(Bucket=bucket, Key="o", Body=b"b" * (5 * 1024 * 1024))
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"b" * (5 * 1024 * 1024)


def test_ranged_get(s3, bucket):
    data = os.urandom(5 * 1024 * 1024 + 100)
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    for rng, expect in [
        ("bytes=0-9", data[:10]),
        ("bytes=4194300-4194310", data[4194300:4194311]),
        ("bytes=-50", data[-50:]),
        ("bytes=5242800-", data[5242800:]),
        ("bytes=100-999999999", data[100:]),
    ]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert got["Body"].read() == expect, rng
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"].endswith(f"/{len(data)}")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data)}-")
    assert error_of(e) == ("InvalidRange", 416)


def test_keys_with_special_characters(s3, bucket):
    keys = ["a/b/c", "sp ace", "plus+sign", "uni-é-ü-日本", "pct%2Fraw", "q?x=1&y", "..", "a/../b",
            "~tilde", "x" * 1024]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed, key=lambda s: s.encode()) == listed
    assert set(listed) == set(keys)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="y" * 1025, Body=b"")
    assert error_of(e) == ("KeyTooLongError", 400)


def test_missing_things(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert error_of(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert error_of(e)[1] == 404
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="no-such-bucket-" + uuid.uuid4().hex[:8], Key="k")
    assert error_of(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket="no-such-bucket-" + uuid.uuid4().hex[:8])
    assert error_of(e) == ("NoSuchBucket", 404)
    s3.delete_object(Bucket=bucket, Key="never-existed")  # S3: deleting nothing succeeds


def test_listing_prefix_delimiter_paging(s3, bucket):
    keys = [f"dir{d}/file{f:02d}" for d in range(3) for f in range(5)] + ["top1", "top2"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    res = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["dir0/", "dir1/", "dir2/"]
    assert [o["Key"] for o in res["Contents"]] == ["top1", "top2"]
    res = s3.list_objects_v2(Bucket=bucket, Prefix="dir1/", Delimiter="/")
    assert [o["Key"] for o in res["Contents"]] == [f"dir1/file{f:02d}" for f in range(5)]
    seen = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 4}
    ):
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert seen == sorted(keys)
    seen_v1, cps = [], []
    for page in s3.get_paginator("list_objects").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
    ):
        seen_v1 += [o["Key"] for o in page.get("Contents", [])]
        cps += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert cps == ["dir0/", "dir1/", "dir2/"]
    assert seen_v1 == ["top1", "top2"]
    res = s3.list_objects_v2(Bucket=bucket, StartAfter="dir2/file03")
    assert [o["Key"] for o in res["Contents"]] == ["dir2/file04", "top1", "top2"]
    res = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert res["KeyCount"] == 0 and not res["IsTruncated"]


def test_virtual_hosted_style(gateway, bucket):
    client = boto3.client(
        "s3",
        endpoint_url=f"http://localhost:{gateway.port}",
        region_name="us-east-1",
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET,
        config=Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}),
    )
    client.meta.events.register("before-send.s3", _send_to_loopback)
    client.put_object(Bucket=bucket, Key="vh/key", Body=b"virtual")
    assert client.get_object(Bucket=bucket, Key="vh/key")["Body"].read() == b"virtual"
    assert gateway.client().get_object(Bucket=bucket, Key="vh/key")["Body"].read() == b"virtual"


def _send_to_loopback(request, **_):
    """Send <bucket>.localhost requests to 127.0.0.1, keeping the Host header that was signed."""
    parts = urlsplit(request.url)
    assert parts.hostname and parts.hostname.endswith(".localhost")
    request.headers["Host"] = parts.netloc
    request.url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))
