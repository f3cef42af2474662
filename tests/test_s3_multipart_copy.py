"""Multipart over HTTP: UploadPartCopy, ?partNumber reads, gateways, managed transfers."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta

import boto3.s3.transfer
import pytest
from botocore.exceptions import ClientError

from tests.support.gateway_process import create_test_user
from tests.support.multipart import (
    PART,
    MiB,
    complete,
    error_of,
    put_part,
    start,
    upload_ids,
)
from tests.test_awscli import aws

# -- UploadPartCopy ---------------------------------------------------------------------------


def test_upload_part_copy(s3, bucket):
    source_bucket = "src-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=source_bucket)
    try:
        source = os.urandom(PART + 3 * MiB)
        s3.put_object(Bucket=source_bucket, Key="src key", Body=source)
        upload_id = start(s3, bucket)
        copy_source = {"Bucket": source_bucket, "Key": "src key"}
        first = s3.upload_part_copy(
            Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=1, CopySource=copy_source,
            CopySourceRange=f"bytes=0-{PART - 1}",
        )["CopyPartResult"]
        assert first["ETag"] == f'"{hashlib.md5(source[:PART]).hexdigest()}"'
        whole = s3.upload_part_copy(
            Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=2, CopySource=copy_source,
        )["CopyPartResult"]
        assert whole["ETag"] == f'"{hashlib.md5(source).hexdigest()}"'
        rest = s3.upload_part_copy(
            Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=3, CopySource=copy_source,
            CopySourceRange=f"bytes={PART}-{len(source) - 1}",
        )["CopyPartResult"]
        parts = [{"PartNumber": 1, "ETag": first["ETag"]},
                 {"PartNumber": 2, "ETag": whole["ETag"]},
                 {"PartNumber": 3, "ETag": rest["ETag"]}]
        complete(s3, bucket, "obj", upload_id, parts)
        got = s3.get_object(Bucket=bucket, Key="obj")["Body"].read()
        assert got == source[:PART] + source + source[PART:]
    finally:
        s3.delete_object(Bucket=source_bucket, Key="src key")
        s3.delete_bucket(Bucket=source_bucket)


def test_upload_part_copy_conditions_and_errors(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")
    etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    upload_id = start(s3, bucket)
    past = datetime.now(UTC) - timedelta(days=1)
    future = datetime.now(UTC) + timedelta(days=1)

    def copy(**kw):
        kw.setdefault("CopySource", {"Bucket": bucket, "Key": "src"})
        return s3.upload_part_copy(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=1,
                                   **kw)

    failing = [
        {"CopySourceIfMatch": '"0000"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": future},
        {"CopySourceIfUnmodifiedSince": past},
        {"CopySourceIfNoneMatch": etag, "CopySourceIfModifiedSince": past},
    ]
    for conditions in failing:
        with pytest.raises(ClientError) as e:
            copy(**conditions)
        assert error_of(e) == ("PreconditionFailed", 412), conditions
    passing = [
        {"CopySourceIfMatch": etag},
        {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": past},
        {"CopySourceIfNoneMatch": '"0000"', "CopySourceIfModifiedSince": future},
        {"CopySourceIfModifiedSince": past, "CopySourceIfUnmodifiedSince": future},
        {"CopySourceRange": "bytes=2-4"},
    ]
    for conditions in passing:
        copy(**conditions)
    assert s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id)["Parts"][0]["Size"] == 3
    for bad_range in ("bytes=5-2", "bytes=-3", "items=0-1"):
        with pytest.raises(ClientError) as e:
            copy(CopySourceRange=bad_range)
        assert error_of(e) == ("InvalidArgument", 400), bad_range
    with pytest.raises(ClientError) as e:
        copy(CopySourceRange="bytes=0-10")  # past the end of the 10-byte source
    assert error_of(e) == ("InvalidRange", 416)
    with pytest.raises(ClientError) as e:
        copy(CopySource={"Bucket": bucket, "Key": "missing"})
    assert error_of(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        copy(CopySource={"Bucket": "no-such-" + uuid.uuid4().hex[:8], "Key": "src"})
    assert error_of(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="obj", UploadId="0" * 32, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src"})
    assert error_of(e) == ("NoSuchUpload", 404)


def test_upload_part_copy_from_unowned_bucket(gateway, s3, bucket):
    suffix = uuid.uuid4().hex[:8].upper()
    access_key, secret = "MPOTHER" + suffix, "s" * 40
    create_test_user(gateway.options, uid="mp" + suffix.lower(), access_key=access_key,
                     secret=secret)
    other_s3 = gateway.client(access_key=access_key, secret=secret)
    theirs = "other-" + uuid.uuid4().hex[:10]
    other_s3.create_bucket(Bucket=theirs)
    try:
        other_s3.put_object(Bucket=theirs, Key="secret", Body=b"not yours")
        upload_id = start(s3, bucket)
        with pytest.raises(ClientError) as e:
            s3.upload_part_copy(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": theirs, "Key": "secret"})
        assert error_of(e) == ("AccessDenied", 403)
    finally:
        other_s3.delete_object(Bucket=theirs, Key="secret")
        other_s3.delete_bucket(Bucket=theirs)


# -- GET/HEAD ?partNumber -------------------------------------------------------------------


def test_get_and_head_part_number(s3, bucket):
    data = [os.urandom(PART), b"second part"]
    upload_id = start(s3, bucket)
    parts = [put_part(s3, bucket, "obj", upload_id, i + 1, d) for i, d in enumerate(data)]
    complete(s3, bucket, "obj", upload_id, parts)
    total = PART + len(data[1])
    head = s3.head_object(Bucket=bucket, Key="obj", PartNumber=1)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert head["ContentLength"] == PART and head["PartsCount"] == 2
    assert head["ContentRange"] == f"bytes 0-{PART - 1}/{total}"
    got = s3.get_object(Bucket=bucket, Key="obj", PartNumber=2)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == data[1] and got["PartsCount"] == 2
    assert got["ContentRange"] == f"bytes {PART}-{total - 1}/{total}"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="obj", PartNumber=3)
    assert error_of(e) == ("InvalidPartNumber", 416)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="obj", PartNumber=0)
    assert error_of(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="obj", PartNumber=1, Range="bytes=0-1")
    assert error_of(e) == ("InvalidRequest", 400)
    # A simple object has exactly one part: the whole object.
    s3.put_object(Bucket=bucket, Key="simple", Body=b"0123456789")
    got = s3.get_object(Bucket=bucket, Key="simple", PartNumber=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == b"0123456789" and "PartsCount" not in got
    assert got["ContentRange"] == "bytes 0-9/10"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="simple", PartNumber=2)
    assert error_of(e)[1] == 416


# -- buckets and gateways ---------------------------------------------------------------------


def test_delete_bucket_discards_uploads(s3):
    name = "mpdel-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    upload_id = start(s3, name)
    put_part(s3, name, "obj", upload_id, 1, os.urandom(PART))
    # As on AWS: in-progress uploads do not keep a bucket from being deleted.
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    try:
        assert upload_ids(s3, name) == []
        with pytest.raises(ClientError) as e:
            s3.list_parts(Bucket=name, Key="obj", UploadId=upload_id)
        assert error_of(e) == ("NoSuchUpload", 404)
    finally:
        s3.delete_bucket(Bucket=name)


def test_uploads_do_not_show_as_objects(s3, bucket):
    start(s3, bucket, "pending")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="pending")
    assert error_of(e)[1] == 404


def test_one_upload_across_gateways(two_gateways):
    a, b = (g.client() for g in two_gateways)
    name = "mpgw-" + uuid.uuid4().hex[:10]
    a.create_bucket(Bucket=name)
    upload_id = start(a, name)
    data = [os.urandom(PART), b"from b"]
    parts = [put_part(b, name, "obj", upload_id, 1, data[0]),
             put_part(a, name, "obj", upload_id, 2, data[1])]
    assert [p["PartNumber"] for p in b.list_parts(Bucket=name, Key="obj",
                                                  UploadId=upload_id)["Parts"]] == [1, 2]
    assert upload_ids(b, name) == [upload_id]
    complete(b, name, "obj", upload_id, parts)
    assert a.get_object(Bucket=name, Key="obj")["Body"].read() == b"".join(data)
    a.delete_object(Bucket=name, Key="obj")
    b.delete_bucket(Bucket=name)


# -- real clients' managed transfers ----------------------------------------------------------


def test_boto3_managed_transfer(s3, bucket, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(17 * MiB + 123))
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4
    )
    s3.upload_file(str(source), bucket, "managed.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="managed.bin")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].endswith('-4"')
    back = tmp_path / "back.bin"
    s3.download_file(bucket, "managed.bin", str(back), Config=config)
    assert back.read_bytes() == source.read_bytes()


def test_awscli_cp_multipart(gateway, tmp_path):
    name = "mpcli-" + uuid.uuid4().hex[:10]
    source = tmp_path / "twenty.bin"
    source.write_bytes(os.urandom(20 * MiB))
    aws(gateway, "s3", "mb", f"s3://{name}")
    try:
        aws(gateway, "s3", "cp", str(source), f"s3://{name}/twenty.bin")
        head = aws(gateway, "s3api", "head-object", "--bucket", name, "--key", "twenty.bin")
        assert '-3\\""' in head  # 20 MiB in the CLI's default 8 MiB chunks
        back = tmp_path / "back.bin"
        aws(gateway, "s3", "cp", f"s3://{name}/twenty.bin", str(back))
        assert back.read_bytes() == source.read_bytes()
    finally:
        aws(gateway, "s3", "rb", "--force", f"s3://{name}")
