"""Multipart and service edges: a repeated Complete, anonymous ListBuckets."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError

from tests.test_s3_public_access import anon, error_of  # noqa: F401

PART = 5 * 1024 * 1024


def _upload(s3, bucket: str, key: str, parts: list[bytes]) -> tuple[str, list[dict]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for number, data in enumerate(parts, 1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                              Body=data)["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    return upload_id, done


def test_complete_again_answers_the_same_object(s3, bucket):
    upload_id, parts = _upload(s3, bucket, "m", [b"a" * PART, b"tail"])
    first = s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
    again = s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
    assert again["ETag"] == first["ETag"]
    assert s3.get_object(Bucket=bucket, Key="m")["ContentLength"] == PART + 4
    # Once the key holds something else, the old upload is gone for good.
    s3.put_object(Bucket=bucket, Key="m", Body=b"new")
    assert error_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )) == ("NoSuchUpload", 404)
    # Another upload's id does not complete as this object either.
    other_id, other_parts = _upload(s3, bucket, "o", [b"x"])
    s3.complete_multipart_upload(Bucket=bucket, Key="o", UploadId=other_id,
                                 MultipartUpload={"Parts": other_parts})
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="m", UploadId=other_id,
                                     MultipartUpload={"Parts": other_parts})
    assert e.value.response["Error"]["Code"] == "NoSuchUpload"


def test_anonymous_list_buckets_is_empty(gateway, s3, anon, bucket):  # noqa: F811
    assert anon.list_buckets()["Buckets"] == []
    resp = requests.get(gateway.endpoint + "/", timeout=30)
    assert resp.status_code == 200 and b"ListAllMyBucketsResult" in resp.content


def _checksum_upload(s3, bucket, key, algorithm, kind):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm,
                                           ChecksumType=kind)["UploadId"]
    name, parts = "Checksum" + algorithm, []
    for number, fill in enumerate(b"AB", 1):
        got = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                             Body=bytes([fill]) * PART, ChecksumAlgorithm=algorithm)
        parts.append({"PartNumber": number, "ETag": got["ETag"], name: got[name]})
    return upload_id, name, parts


@pytest.mark.parametrize(("algorithm", "kind"), [("SHA256", "COMPOSITE"), ("CRC32", "FULL_OBJECT")])
def test_complete_names_the_object_checksum(s3, bucket, algorithm, kind):
    """x-amz-checksum-* on CompleteMultipartUpload is the object's checksum (a composite one
    with its -N suffix), checked against the parts; it says nothing of the XML body."""
    upload_id, name, parts = _checksum_upload(s3, bucket, "a", algorithm, kind)
    expected = s3.complete_multipart_upload(
        Bucket=bucket, Key="a", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )[name]
    upload_id, name, parts = _checksum_upload(s3, bucket, "b", algorithm, kind)
    assert error_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="b", UploadId=upload_id, MultipartUpload={"Parts": parts},
        **{name: "bad"},
    )) == ("BadDigest", 400)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="b", UploadId=upload_id,
                                        MultipartUpload={"Parts": parts}, **{name: expected})
    assert (done[name], done["ChecksumType"]) == (expected, kind)
    head = s3.head_object(Bucket=bucket, Key="b", ChecksumMode="ENABLED")
    assert head[name] == expected


def test_part_named_twice_in_a_row_counts_once(s3, bucket):
    """As RGW: the later mention wins (a part re-sent while the first send was still on its
    way is listed twice by clients that record both answers)."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    first = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=1,
                           Body=b"B" * 8)["ETag"]
    again = s3.upload_part(Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=1,
                           Body=b"A" * 8)["ETag"]
    assert error_of(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": again},
                                   {"PartNumber": 1, "ETag": first}]},
    )) == ("InvalidPart", 400)  # the later mention names the replaced part
    s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": first},
                                   {"PartNumber": 1, "ETag": again}]},
    )
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == b"A" * 8
