"""Multipart upload over HTTP with real clients, on every backend.

boto3's low-level calls for every operation and error case, boto3's managed
transfer (upload_file/download_file), the AWS CLI, two gateways sharing one
upload, and an engine-level check that aborted and replaced parts leave no
data behind.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
import zlib
from datetime import datetime
from urllib.parse import quote

import pytest
from awscrt import checksums as crt_checksums
from botocore.exceptions import ClientError

from tests.support.multipart import (
    PART,
    complete,
    error_of,
    mp_etag,
    put_part,
    start,
    upload_ids,
)
from tests.support.signing import signed_request

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
    # Completing again answers the object it made (as RGW); aborting it no longer can.
    assert complete(s3, bucket, "obj", upload_id, parts)["ETag"] == done["ETag"]
    with pytest.raises(ClientError) as e:
        s3.abort_multipart_upload(Bucket=bucket, Key="obj", UploadId=upload_id)
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
        ([big, big, small], ("InvalidPartOrder", 400)),
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
