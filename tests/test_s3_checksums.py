"""Additional checksums over real HTTP, on every backend: verify on PUT, store, report on GET/HEAD.

boto3 sends the checksum headers itself and validates what GET returns with
ChecksumMode=ENABLED; hand-signed requests cover what SDKs avoid (a wrong
value, aws-chunked trailers over plain HTTP).
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
import requests
from botocore.auth import STREAMING_UNSIGNED_PAYLOAD_TRAILER, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from s3api import checksums as c
from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET
from tests.support.signing import signed_request
from tests.test_s3_errors import parse_error

SDK_ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]


class _TrailerAuth(S3SigV4Auth):
    """Signs the headers of an aws-chunked body whose checksum follows in the trailer."""

    def payload(self, request) -> str:
        return STREAMING_UNSIGNED_PAYLOAD_TRAILER


def trailer_put(endpoint: str, path: str, data: bytes, trailer: str, value: str, chunk=16384):
    body = bytearray()
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        body += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    body += f"0\r\n{trailer}:{value}\r\n\r\n".encode()
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": trailer,
        "Content-Length": str(len(body)),
    }
    request = AWSRequest(method="PUT", url=endpoint + path, data=bytes(body), headers=headers)
    _TrailerAuth(Credentials(TEST_ACCESS_KEY, TEST_SECRET), "s3", "us-east-1").add_auth(request)
    return requests.put(
        endpoint + path, data=bytes(body), headers=dict(request.headers), timeout=60
    )


def missing(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    return False


@pytest.mark.parametrize("algorithm", SDK_ALGORITHMS)
@pytest.mark.parametrize("size", [11, 200_000])
def test_sdk_round_trip(s3, bucket, algorithm, size):
    data = os.urandom(size)
    expected = c.compute(algorithm, data)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data, ChecksumAlgorithm=algorithm)
    assert put["Checksum" + algorithm] == expected
    assert put["ChecksumType"] == "FULL_OBJECT"
    # botocore validates the body against the checksum the gateway reports.
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["Checksum" + algorithm] == expected
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head["Checksum" + algorithm] == expected and head["ChecksumType"] == "FULL_OBJECT"


def test_checksum_only_with_mode_and_not_for_ranges(gateway, bucket):
    data = b"hello world"
    value = c.compute("CRC32", data)
    resp = signed_request(
        gateway.endpoint, "PUT", f"/{bucket}/k", data, headers={"x-amz-checksum-crc32": value}
    )
    assert resp.status_code == 200
    assert resp.headers["x-amz-checksum-crc32"] == value
    plain = signed_request(gateway.endpoint, "GET", f"/{bucket}/k")
    assert "x-amz-checksum-crc32" not in plain.headers
    for mode in ("ENABLED", "enabled"):
        on = signed_request(
            gateway.endpoint, "GET", f"/{bucket}/k", headers={"x-amz-checksum-mode": mode}
        )
        assert on.headers["x-amz-checksum-crc32"] == value
        assert on.headers["x-amz-checksum-type"] == "FULL_OBJECT"
    ranged = signed_request(
        gateway.endpoint,
        "GET",
        f"/{bucket}/k",
        headers={"x-amz-checksum-mode": "ENABLED", "Range": "bytes=0-3"},
    )
    assert ranged.status_code == 206 and ranged.content == b"hell"
    assert not [h for h in ranged.headers if h.lower().startswith("x-amz-checksum-")]


def test_default_crc64nvme_when_none_sent(gateway, s3, bucket):
    data = os.urandom(70_000)
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}/plain", data)
    assert resp.status_code == 200
    head = s3.head_object(Bucket=bucket, Key="plain", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == c.compute("CRC64NVME", data)


@pytest.mark.parametrize("algorithm", SDK_ALGORITHMS)
def test_mismatch_is_bad_digest_and_stores_nothing(gateway, s3, bucket, algorithm):
    wrong = c.compute(algorithm, b"something else")
    for key, size in (("small", 100), ("striped", 5 * 1024 * 1024 + 3)):
        resp = signed_request(
            gateway.endpoint,
            "PUT",
            f"/{bucket}/{key}",
            os.urandom(size),
            headers={c.header_name(algorithm): wrong},
        )
        assert resp.status_code == 400
        err = parse_error(resp)
        assert err["Code"] == "BadDigest"
        assert (
            err["Message"]
            == f"The {algorithm} you specified did not match the calculated checksum."
        )
        assert missing(s3, bucket, key)


def test_mismatch_keeps_the_previous_object(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"original")
    resp = signed_request(
        gateway.endpoint,
        "PUT",
        f"/{bucket}/k",
        b"replacement",
        headers={"x-amz-checksum-sha256": c.compute("SHA256", b"nope")},
    )
    assert resp.status_code == 400
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"original"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-crc32c": "AAAAAA=="},
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ),
        (
            {"x-amz-sdk-checksum-algorithm": "CRC32"},
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* "
            "or x-amz-trailer headers were found.",
        ),
    ],
)
def test_invalid_checksum_headers(gateway, s3, bucket, headers, message):
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}/k", b"data", headers=headers)
    assert resp.status_code == 400
    err = parse_error(resp)
    assert (err["Code"], err["Message"]) == ("InvalidRequest", message)
    assert missing(s3, bucket, "k")


def test_checksum_value_that_is_no_digest(gateway, s3, bucket):
    """BadDigest, as Ceph RGW answers (AWS: InvalidRequest); 400 either way."""
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}/k", b"data",
                          headers={"x-amz-checksum-crc32": "abc"})
    assert resp.status_code == 400
    err = parse_error(resp)
    assert (err["Code"], err["Message"]) == (
        "BadDigest", "Value for x-amz-checksum-crc32 header is invalid."
    )
    assert missing(s3, bucket, "k")


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC64NVME", "SHA256"])
def test_trailing_checksum(gateway, s3, bucket, algorithm):
    data = os.urandom(100_000)
    name = c.header_name(algorithm)
    resp = trailer_put(gateway.endpoint, f"/{bucket}/t", data, name, c.compute(algorithm, data))
    assert resp.status_code == 200, resp.text
    got = s3.get_object(Bucket=bucket, Key="t", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["Checksum" + algorithm] == c.compute(algorithm, data)


def test_trailing_checksum_mismatch_stores_nothing(gateway, s3, bucket):
    data = os.urandom(100_000)
    wrong = c.compute("CRC32", data[:-1])
    resp = trailer_put(gateway.endpoint, f"/{bucket}/t", data, "x-amz-checksum-crc32", wrong)
    assert resp.status_code == 400
    err = parse_error(resp)
    assert err["Code"] == "BadDigest"
    assert err["Message"] == "The CRC32 you specified did not match the calculated checksum."
    assert missing(s3, bucket, "t")


def test_content_md5_still_verified(gateway, s3, bucket):
    data = b"payload"
    good = base64.b64encode(hashlib.md5(data).digest()).decode()
    ok = signed_request(
        gateway.endpoint, "PUT", f"/{bucket}/m", data, headers={"Content-MD5": good}
    )
    assert ok.status_code == 200
    other = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    bad = signed_request(
        gateway.endpoint, "PUT", f"/{bucket}/n", data, headers={"Content-MD5": other}
    )
    assert bad.status_code == 400 and parse_error(bad)["Code"] == "BadDigest"
    assert missing(s3, bucket, "n")


def test_checksum_on_small_bodies_is_verified(gateway, s3, bucket):
    """Configuration bodies (here object tagging) are verified against their checksum too."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = (
        b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>'
        b"<Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>"
    )
    wrong = c.compute("CRC32", b"other")
    resp = signed_request(
        gateway.endpoint,
        "PUT",
        f"/{bucket}/k",
        body,
        query="tagging",
        headers={"x-amz-checksum-crc32": wrong},
    )
    assert resp.status_code == 400 and parse_error(resp)["Code"] == "BadDigest"
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
