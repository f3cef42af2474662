"""Multipart upload over HTTP with real clients, on every backend.

boto3's low-level calls for every operation and error case, boto3's managed
transfer (upload_file/download_file), the AWS CLI, two gateways sharing one
upload, and an engine-level check that aborted and replaced parts leave no
data behind.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import boto3.s3.transfer
import pytest
from awscrt import checksums as crt_checksums
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from gateway.engine.engine import EngineSettings, ObjectEngine
from gateway.engine.multipart import NewUpload, PartBody
from gateway.engine.upload_records import (
    registry_after_key,
    registry_after_prefix,
    registry_key,
    split_registry_key,
)
from gateway.engine.uploads_registry import UploadsQuery
from s3api.errors import S3Error
from s3api.handlers.multipart_copy import CopySource, parse_copy_source
from tests.conftest import backend_options, require_backend
from tests.contract.conftest import make_backend
from tests.support.gateway_process import GatewayProcess, create_test_user
from tests.support.signing import signed_request
from tests.test_awscli import aws

MiB = 1024 * 1024
PART = 5 * MiB


def error_of(excinfo) -> tuple[str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def mp_etag(*parts: bytes) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def start(s3, bucket: str, key: str = "obj", **kw) -> str:
    return s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)["UploadId"]


def put_part(s3, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> dict:
    etag = s3.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
    )["ETag"]
    return {"PartNumber": number, "ETag": etag}


def complete(s3, bucket: str, key: str, upload_id: str, parts: list[dict]) -> dict:
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


def upload_ids(s3, bucket: str, **kw) -> list[str]:
    listed = s3.list_multipart_uploads(Bucket=bucket, **kw)
    return [u["UploadId"] for u in listed.get("Uploads", [])]


# -- the happy path -----------------------------------------------------------------


def test_create_upload_complete_get(s3, bucket):
    upload_id = start(
        s3, bucket, ContentType="text/plain", Metadata={"color": "blue"},
        CacheControl="max-age=60",
    )
    data = [os.urandom(PART), os.urandom(PART), b"the last part may be small"]
    parts = [put_part(s3, bucket, "obj", upload_id, i + 1, d) for i, d in enumerate(data)]
    assert parts[0]["ETag"] == f'"{hashlib.md5(data[0]).hexdigest()}"'
    assert upload_ids(s3, bucket) == [upload_id]
    done = complete(s3, bucket, "obj", upload_id, parts)
    assert done["ETag"] == mp_etag(*data)
    assert done["Bucket"] == bucket and done["Key"] == "obj"
    assert done["Location"].endswith(f"/{bucket}/obj")
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == b"".join(data)
    assert got["ETag"] == done["ETag"]
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "max-age=60"
    assert "PartsCount" not in got  # AWS names the count only for partNumber reads
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [
        ("obj", sum(map(len, data)), done["ETag"])
    ]
    assert upload_ids(s3, bucket) == []
    with pytest.raises(ClientError) as e:
        complete(s3, bucket, "obj", upload_id, parts)
    assert error_of(e) == ("NoSuchUpload", 404)


def test_tags_and_storage_class_carry_over(s3, bucket):
    upload_id = start(s3, bucket, Tagging="team=blue&stage=test", StorageClass="STANDARD_IA")
    assert s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["StorageClass"] == "STANDARD_IA"
    complete(s3, bucket, "obj", upload_id, [put_part(s3, bucket, "obj", upload_id, 1, b"x")])
    tags = s3.get_object_tagging(Bucket=bucket, Key="obj")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("stage", "test"), ("team", "blue")]
    assert s3.head_object(Bucket=bucket, Key="obj")["StorageClass"] == "STANDARD_IA"


def test_single_empty_part(s3, bucket):
    upload_id = start(s3, bucket)
    parts = [put_part(s3, bucket, "obj", upload_id, 1, b"")]
    assert complete(s3, bucket, "obj", upload_id, parts)["ETag"] == mp_etag(b"")
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["ContentLength"] == 0 and got["Body"].read() == b""


def test_ranged_get_across_parts(s3, bucket):
    data = [os.urandom(PART), os.urandom(PART), os.urandom(1000)]
    upload_id = start(s3, bucket)
    parts = [put_part(s3, bucket, "obj", upload_id, i + 1, d) for i, d in enumerate(data)]
    complete(s3, bucket, "obj", upload_id, parts)
    whole = b"".join(data)
    lo, hi = PART - 10, 2 * PART + 9
    got = s3.get_object(Bucket=bucket, Key="obj", Range=f"bytes={lo}-{hi}")
    assert got["Body"].read() == whole[lo : hi + 1]


def test_part_replaced_and_parts_left_out(s3, bucket):
    upload_id = start(s3, bucket)
    first = put_part(s3, bucket, "obj", upload_id, 1, os.urandom(PART))
    second_data = os.urandom(PART)
    second = put_part(s3, bucket, "obj", upload_id, 1, second_data)
    put_part(s3, bucket, "obj", upload_id, 2, b"left out")
    tail = put_part(s3, bucket, "obj", upload_id, 3, b"tail")
    listed = s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id)["Parts"]
    assert (listed[0]["PartNumber"], listed[0]["ETag"]) == (1, second["ETag"])
    with pytest.raises(ClientError) as e:
        complete(s3, bucket, "obj", upload_id, [first, tail])
    assert error_of(e) == ("InvalidPart", 400)
    complete(s3, bucket, "obj", upload_id, [second, tail])
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == second_data + b"tail"


def test_complete_replaces_existing_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=os.urandom(200 * 1024))
    upload_id = start(s3, bucket)
    parts = [put_part(s3, bucket, "obj", upload_id, 1, b"new")]
    complete(s3, bucket, "obj", upload_id, parts)
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"new"


# -- completion errors ----------------------------------------------------------------


def test_complete_errors(s3, bucket):
    upload_id = start(s3, bucket)
    small = put_part(s3, bucket, "obj", upload_id, 1, b"small")
    big = put_part(s3, bucket, "obj", upload_id, 2, os.urandom(PART))
    last = put_part(s3, bucket, "obj", upload_id, 3, b"last")
    cases = [
        ([big, small], ("InvalidPartOrder", 400)),
        ([big, big], ("InvalidPartOrder", 400)),
        ([small, big], ("EntityTooSmall", 400)),
        ([{"PartNumber": 2, "ETag": '"' + "0" * 32 + '"'}], ("InvalidPart", 400)),
        ([big, {"PartNumber": 4, "ETag": last["ETag"]}], ("InvalidPart", 400)),
        ([{"PartNumber": 10001, "ETag": last["ETag"]}], ("InvalidArgument", 400)),
        ([{"PartNumber": 0, "ETag": last["ETag"]}], ("InvalidArgument", 400)),
    ]
    for parts, expected in cases:
        with pytest.raises(ClientError) as e:
            complete(s3, bucket, "obj", upload_id, parts)
        assert error_of(e) == expected, parts
    # A failed completion leaves the upload usable; unquoted ETags are accepted.
    unquoted = [{"PartNumber": 2, "ETag": big["ETag"].strip('"')}, last]
    complete(s3, bucket, "obj", upload_id, unquoted)
    assert s3.head_object(Bucket=bucket, Key="obj")["ContentLength"] == PART + 4


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<CompleteMultipartUpload></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>"
        b"</CompleteMultipartUpload>",
        b"<Other/>",
        b"<CompleteMultipartUpload><Part>",
    ],
)
def test_complete_malformed_xml(gateway, s3, bucket, body):
    upload_id = start(s3, bucket)
    put_part(s3, bucket, "obj", upload_id, 1, b"x")
    resp = signed_request(
        gateway.endpoint, "POST", f"/{bucket}/obj", body, query=f"uploadId={upload_id}"
    )
    assert resp.status_code == 400
    assert b"<Code>MalformedXML</Code>" in resp.content


# -- part and upload errors -------------------------------------------------------------


def test_upload_part_errors(gateway, s3, bucket):
    upload_id = start(s3, bucket)
    for number in (0, 10001):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=number,
                           Body=b"x")
        assert error_of(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="obj", UploadId="0" * 32, PartNumber=1, Body=b"x")
    assert error_of(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:  # the upload id belongs to another key
        s3.upload_part(Bucket=bucket, Key="other", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert error_of(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket="no-such-bucket-" + uuid.uuid4().hex[:8], Key="obj",
                       UploadId=upload_id, PartNumber=1, Body=b"x")
    assert error_of(e) == ("NoSuchBucket", 404)
    wrong_md5 = "1B2M2Y8AsgTpgAmY7PhCfg=="  # md5 of the empty string
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=1,
                       Body=b"not empty", ContentMD5=wrong_md5)
    assert error_of(e) == ("BadDigest", 400)
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}/obj", b"abc",
                          query=f"partNumber=1&uploadId={upload_id}",
                          headers={"Content-MD5": "not-base64"})
    assert resp.status_code == 400 and b"<Code>InvalidDigest</Code>" in resp.content
    assert s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id).get("Parts", []) == []
    right_md5 = "kAFQmDzST7DWlj99KOF/cg=="  # md5 of b"abc"
    s3.upload_part(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=1, Body=b"abc",
                   ContentMD5=right_md5)


def test_abort(s3, bucket):
    upload_id = start(s3, bucket)
    put_part(s3, bucket, "obj", upload_id, 1, os.urandom(PART))
    assert s3.abort_multipart_upload(Bucket=bucket, Key="obj", UploadId=upload_id)[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert upload_ids(s3, bucket) == []
    calls = [
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="obj", UploadId=upload_id),
        lambda: s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id),
        lambda: s3.upload_part(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=1,
                               Body=b"x"),
        lambda: complete(s3, bucket, "obj", upload_id, [{"PartNumber": 1, "ETag": "x"}]),
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="obj", UploadId="nonsense"),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="obj")


def test_invalid_storage_class(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="obj", StorageClass="NOPE")
    assert error_of(e) == ("InvalidStorageClass", 400)


# -- checksums ----------------------------------------------------------------------------------


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_composite_checksum(s3, bucket):
    upload_id = start(s3, bucket, ChecksumAlgorithm="SHA256")
    data = [os.urandom(PART), b"tail"]
    parts = []
    for number, chunk in enumerate(data, 1):
        got = s3.upload_part(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=number,
                             Body=chunk, ChecksumAlgorithm="SHA256")
        assert got["ChecksumSHA256"] == _b64(hashlib.sha256(chunk).digest())
        parts.append({"PartNumber": number, "ETag": got["ETag"],
                      "ChecksumSHA256": got["ChecksumSHA256"]})
    listed = s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id)
    assert listed["ChecksumAlgorithm"] == "SHA256"
    assert [p["ChecksumSHA256"] for p in listed["Parts"]] == [p["ChecksumSHA256"] for p in parts]
    done = complete(s3, bucket, "obj", upload_id, parts)
    digests = b"".join(hashlib.sha256(chunk).digest() for chunk in data)
    assert done["ChecksumSHA256"] == _b64(hashlib.sha256(digests).digest()) + "-2"
    assert done["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == done["ChecksumSHA256"]


def test_full_object_checksums(gateway, s3, bucket):
    data = [os.urandom(PART), b"tail"]
    whole = b"".join(data)
    upload_id = start(s3, bucket, "crc32", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    parts = [put_part(s3, bucket, "crc32", upload_id, n, d) for n, d in enumerate(data, 1)]
    done = complete(s3, bucket, "crc32", upload_id, parts)
    assert done["ChecksumCRC32"] == _b64(zlib.crc32(whole).to_bytes(4, "big"))
    assert done["ChecksumType"] == "FULL_OBJECT"
    # Without an algorithm S3 gives the object a full-object CRC64NVME...
    plain = gateway.client(request_checksum_calculation="when_required")
    upload_id = start(plain, bucket, "default")
    parts = [put_part(plain, bucket, "default", upload_id, n, d) for n, d in enumerate(data, 1)]
    complete(plain, bucket, "default", upload_id, parts)
    head = s3.head_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    expected = _b64(crt_checksums.crc64nvme(whole).to_bytes(8, "big"))
    assert head["ChecksumCRC64NVME"] == expected
    assert head["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    assert got["Body"].read() == whole  # botocore validates the checksum as it reads
    # ... or the CRC every part came with (boto3 sends CRC32 with each part unasked).
    upload_id = start(s3, bucket, "sdk")
    parts = [put_part(s3, bucket, "sdk", upload_id, n, d) for n, d in enumerate(data, 1)]
    complete(s3, bucket, "sdk", upload_id, parts)
    head = s3.head_object(Bucket=bucket, Key="sdk", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == _b64(zlib.crc32(whole).to_bytes(4, "big"))


def test_checksum_errors(gateway, s3, bucket):
    for kwargs in ({"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "COMPOSITE"},
                   {"ChecksumAlgorithm": "SHA1", "ChecksumType": "FULL_OBJECT"},
                   {"ChecksumType": "COMPOSITE"}):
        with pytest.raises(ClientError) as e:
            s3.create_multipart_upload(Bucket=bucket, Key="obj", **kwargs)
        assert error_of(e) == ("InvalidRequest", 400), kwargs
    upload_id = start(s3, bucket, ChecksumAlgorithm="CRC32")
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumber=1, Body=b"x",
                       ChecksumAlgorithm="SHA256")
    assert error_of(e) == ("InvalidRequest", 400)
    wrong = _b64(zlib.crc32(b"other").to_bytes(4, "big"))
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}/obj", b"abc",
                          query=f"partNumber=1&uploadId={upload_id}",
                          headers={"x-amz-checksum-crc32": wrong})
    assert resp.status_code == 400 and b"<Code>BadDigest</Code>" in resp.content
    assert s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id).get("Parts", []) == []
    part = put_part(s3, bucket, "obj", upload_id, 1, b"abc")
    with pytest.raises(ClientError) as e:
        complete(s3, bucket, "obj", upload_id, [{**part, "ChecksumCRC32": wrong}])
    assert error_of(e) == ("InvalidPart", 400)
    good = _b64(zlib.crc32(b"abc").to_bytes(4, "big"))
    done = complete(s3, bucket, "obj", upload_id, [{**part, "ChecksumCRC32": good}])
    assert done["ChecksumCRC32"].endswith("-1")


# -- listing --------------------------------------------------------------------------------


def test_list_parts_paging(s3, bucket):
    upload_id = start(s3, bucket, StorageClass="STANDARD_IA")
    for n in (1, 2, 3, 5, 8):
        put_part(s3, bucket, "obj", upload_id, n, b"p%d" % n)
    page = s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    assert page["IsTruncated"] is True and page["NextPartNumberMarker"] == 2
    assert page["MaxParts"] == 2 and page["StorageClass"] == "STANDARD_IA"
    assert page["Initiator"]["ID"] == page["Owner"]["ID"] == "tester"
    assert page["Parts"][0]["Size"] == 2
    page = s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id, MaxParts=2,
                         PartNumberMarker=2)
    assert [p["PartNumber"] for p in page["Parts"]] == [3, 5]
    page = s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id, PartNumberMarker=5)
    assert [p["PartNumber"] for p in page["Parts"]] == [8] and page["IsTruncated"] is False
    for beyond in (10000, 123456):
        page = s3.list_parts(Bucket=bucket, Key="obj", UploadId=upload_id,
                             PartNumberMarker=beyond)
        assert page.get("Parts", []) == [] and page["IsTruncated"] is False
    pages = s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key="obj", UploadId=upload_id, PaginationConfig={"PageSize": 1}
    )
    assert [p["PartNumber"] for pg in pages for p in pg["Parts"]] == [1, 2, 3, 5, 8]


def test_list_multipart_uploads(s3, bucket):
    keys = ["a/1", "a/2", "b", "c", "c", "d x", "d", "e/f/g"]
    ids = {}
    for key in keys:
        ids.setdefault(key, []).append(start(s3, bucket, key))
    listed = s3.list_multipart_uploads(Bucket=bucket)
    order = [(u["Key"], u["UploadId"]) for u in listed["Uploads"]]
    expected = sorted((k, i) for k, v in ids.items() for i in v)
    assert order == expected  # (key, upload id) order: "d" before "d x"
    assert ids["c"][0] < ids["c"][1]  # uploads of one key list in initiation order
    upload = listed["Uploads"][0]
    assert upload["Initiator"]["ID"] == "tester" and upload["StorageClass"] == "STANDARD"
    assert isinstance(upload["Initiated"], datetime)

    rolled = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["a/", "e/"]
    assert [u["Key"] for u in rolled["Uploads"]] == ["b", "c", "c", "d", "d x"]
    under = s3.list_multipart_uploads(Bucket=bucket, Prefix="e/", Delimiter="/")
    assert [p["Prefix"] for p in under["CommonPrefixes"]] == ["e/f/"]
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")["Uploads"]
            ] == ["a/1", "a/2"]

    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=3)
    assert page["IsTruncated"] is True and len(page["Uploads"]) == 3
    assert (page["NextKeyMarker"], page["NextUploadIdMarker"]) == ("b", ids["b"][0])
    page = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="c", UploadIdMarker=ids["c"][0])
    assert (page["Uploads"][0]["Key"], page["Uploads"][0]["UploadId"]) == ("c", ids["c"][1])
    page = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="c")
    assert page["Uploads"][0]["Key"] == "d"
    # upload-id-marker without key-marker is ignored, as on AWS
    assert len(upload_ids(s3, bucket, UploadIdMarker=ids["c"][0])) == len(keys)
    paged = s3.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
    )
    seen = [u["Key"] for pg in paged for u in pg.get("Uploads", [])]
    assert seen == ["b", "c", "c", "d", "d x"]
    for key, values in ids.items():
        for upload_id in values:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert upload_ids(s3, bucket) == []


def test_list_multipart_uploads_url_encoding(s3, bucket):
    key = "dir/sp ace+ü"
    start(s3, bucket, key)
    page = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url", Prefix="dir/")
    assert page["EncodingType"] == "url"
    assert page["Uploads"][0]["Key"] == quote(key, safe="/")
    with pytest.raises(ClientError) as e:
        s3.list_multipart_uploads(Bucket=bucket, EncodingType="xml")
    assert error_of(e) == ("InvalidArgument", 400)


def test_list_parameters_validated(gateway, bucket):
    for query in ("uploads&max-uploads=-1", "uploads&max-uploads=abc"):
        resp = signed_request(gateway.endpoint, "GET", f"/{bucket}", query=query)
        assert resp.status_code == 400 and b"InvalidArgument" in resp.content


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
    for bad_range in ("bytes=5-2", "bytes=0-10", "bytes=-3", "items=0-1"):
        with pytest.raises(ClientError) as e:
            copy(CopySourceRange=bad_range)
        assert error_of(e) == ("InvalidArgument", 400), bad_range
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


@pytest.fixture(params=["local", "rados"])
def two_gateways(request, tmp_path):
    require_backend(request.param)
    options = backend_options(request.param, tmp_path)
    create_test_user(options)
    a = GatewayProcess(options, tmp_path / "a.log").start()
    b = GatewayProcess(options, tmp_path / "b.log").start()
    yield a, b
    a.stop()
    b.stop()


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


# -- engine level: data is reclaimed ------------------------------------------------------------


async def _body(data: bytes):
    yield data


def _opener(data: bytes):
    return lambda info: PartBody(_body(data), len(data))


@pytest.fixture
async def engine(backend_kind, tmp_path):
    backend = make_backend(backend_kind, tmp_path)
    await backend.connect()
    eng = ObjectEngine(
        backend,
        # The stripe payload path (dedupe off); tests/test_dedupe_engine.py covers chunks.
        EngineSettings(pool_prefix="t" + uuid.uuid4().hex[:10], stripe_size=MiB, dedupe=False),
    )
    await eng.prepare()
    yield eng
    for pool in (eng.meta.name, eng.data.name, eng.chunk_pool.name):
        with contextlib.suppress(Exception):
            await backend.delete_pool(pool)
    await backend.close()
    eng.close()


async def _data_objects(eng: ObjectEngine) -> set[str]:
    return {oid async for oid in eng.data.list_objects()}


async def test_engine_abort_and_replace_reclaim_data(engine):
    await engine.buckets.create("reclaim", "owner")
    uploads = engine.uploads
    info = await uploads.create("reclaim", "k", NewUpload(owner="owner"))
    part = os.urandom(5 * MiB + 10)  # 6 stripes of 1 MiB
    await uploads.upload_part("reclaim", "k", info.upload_id, 1, _opener(part))
    assert len(await _data_objects(engine)) == 6
    await uploads.upload_part("reclaim", "k", info.upload_id, 1, _opener(b"x" * 10))
    assert len(await _data_objects(engine)) == 1  # the replaced part's stripes are gone
    await uploads.upload_part("reclaim", "k", info.upload_id, 2, _opener(part))
    assert len(await _data_objects(engine)) == 7
    await uploads.abort("reclaim", "k", info.upload_id)
    assert await _data_objects(engine) == set()
    page = await uploads.list_uploads("reclaim", UploadsQuery())
    assert page.uploads == []


async def test_engine_complete_reclaims_unused_parts(engine):
    await engine.buckets.create("complete", "owner")
    uploads = engine.uploads
    info = await uploads.create("complete", "k", NewUpload(owner="owner"))
    part = os.urandom(5 * MiB)
    one = await uploads.upload_part("complete", "k", info.upload_id, 1, _opener(part))
    await uploads.upload_part("complete", "k", info.upload_id, 2, _opener(part))
    three = await uploads.upload_part("complete", "k", info.upload_id, 3, _opener(b"end"))
    entry = await uploads.complete("complete", "k", info.upload_id,
                                   [(1, one.etag), (3, three.etag)])
    assert entry.parts == 2 and entry.size == 5 * MiB + 3
    assert len(await _data_objects(engine)) == 6  # part 2's five stripes were reclaimed
    await engine.objects.delete("complete", "k")
    assert await _data_objects(engine) == set()


async def test_engine_delete_bucket_purges_uploads(engine):
    await engine.buckets.create("purge", "owner")
    info = await engine.uploads.create("purge", "k", NewUpload(owner="owner"))
    await engine.uploads.upload_part("purge", "k", info.upload_id, 1, _opener(b"x" * (2 * MiB)))
    assert len(await _data_objects(engine)) == 2
    await engine.buckets.delete("purge")
    assert await _data_objects(engine) == set()
    leftovers = [oid async for oid in engine.meta.list_objects("upload.")]
    assert leftovers == []


async def test_engine_registry_orders_by_key_then_upload(engine):
    """Keys may hold any character but NUL; \x01 and \x02 must not break (key, id) order."""
    await engine.buckets.create("order", "owner")
    keys = ["d", "d\x01", "d\x01x", "d\x02", "d\x01\x01", "d ", "c", "d"]
    made = [
        (key, (await engine.uploads.create("order", key, NewUpload(owner="owner"))).upload_id)
        for key in keys
    ]
    page = await engine.uploads.list_uploads("order", UploadsQuery())
    assert [(u.key, u.upload_id) for u in page.uploads] == sorted(made)
    page = await engine.uploads.list_uploads("order", UploadsQuery(key_marker="d\x01"))
    assert [u.key for u in page.uploads] == ["d\x01\x01", "d\x01x", "d\x02", "d "]
    page = await engine.uploads.list_uploads("order", UploadsQuery(prefix="d\x01"))
    assert [u.key for u in page.uploads] == ["d\x01", "d\x01\x01", "d\x01x"]


# -- pure rules -------------------------------------------------------------------------------

_keys = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                min_size=1, max_size=12)


@given(st.lists(st.tuples(_keys, st.sampled_from(["0a", "0b", "1f"])), min_size=2, max_size=20))
def test_registry_keys_sort_by_key_then_upload_id(pairs):
    encoded = sorted(pairs, key=lambda p: registry_key(*p).encode())
    assert encoded == sorted(pairs, key=lambda p: (p[0].encode(), p[1]))
    assert all(split_registry_key(registry_key(k, u)) == (k, u) for k, u in pairs)


@given(_keys, _keys)
def test_registry_seek_points(key, other):
    if other.startswith(key):
        assert registry_key(other, "ff") <= registry_after_prefix(key)
    if other != key:
        after = registry_after_key(key).encode()
        assert (registry_key(other, "00").encode() > after) == (other.encode() > key.encode())


def test_copy_source_parsing():
    assert parse_copy_source("/b/dir/k%20x") == CopySource("b", "dir/k x")
    assert parse_copy_source("b/k?versionId=null") == CopySource("b", "k")
    for bad in ("b", "/b/", "b/k?versionId=abc"):
        with pytest.raises(S3Error):
            parse_copy_source(bad)
