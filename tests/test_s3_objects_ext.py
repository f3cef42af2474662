"""Objects over real HTTP, on every backend: conditional GET/HEAD/PUT, response-* overrides,
versionId=null, HEAD ranges and GetObjectAttributes."""

from __future__ import annotations

import email.utils
import os
import threading
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from s3api import checksums as c
from tests.support.signing import signed_request
from tests.test_s3_errors import parse_error


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


def status_of(excinfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def hello(gateway, s3, bucket):
    """An object "o" with stored headers; (etag, Last-Modified epoch)."""
    s3.put_object(
        Bucket=bucket, Key="o", Body=b"hello", CacheControl="no-cache", Expires="0",
        Metadata={"a": "1"}, ContentType="text/plain",
    )  # fmt: skip
    head = s3.head_object(Bucket=bucket, Key="o")
    return head["ETag"], head["LastModified"].timestamp()


# -- conditional GET and HEAD -----------------------------------------------------------


def conditional_cases(etag: str, modified: float):
    other = '"0123456789abcdef0123456789abcdef"'
    before, same, after = http_date(modified - 1), http_date(modified), http_date(modified + 1)
    return [
        ({"If-Match": etag}, 200, None),
        ({"If-Match": etag.strip('"')}, 200, None),
        ({"If-Match": f"{other}, {etag}"}, 200, None),
        ({"If-Match": other}, 412, "If-Match"),
        ({"If-None-Match": other}, 200, None),
        ({"If-None-Match": etag}, 304, None),
        ({"If-None-Match": "*"}, 304, None),
        ({"If-Modified-Since": before}, 200, None),
        ({"If-Modified-Since": same}, 304, None),
        ({"If-Modified-Since": "yesterday"}, 200, None),
        ({"If-Unmodified-Since": before}, 412, "If-Unmodified-Since"),
        ({"If-Unmodified-Since": after}, 200, None),
        ({"If-Match": etag, "If-Unmodified-Since": before}, 200, None),
        ({"If-Match": other, "If-Unmodified-Since": after}, 412, "If-Match"),
        ({"If-None-Match": etag, "If-Modified-Since": before}, 304, None),
        ({"If-None-Match": other, "If-Modified-Since": same}, 200, None),
    ]


def test_conditional_get_and_head(gateway, bucket, hello):
    etag, modified = hello
    for headers, status, condition in conditional_cases(etag, modified):
        get = signed_request(gateway.endpoint, "GET", f"/{bucket}/o", headers=headers)
        head = signed_request(gateway.endpoint, "HEAD", f"/{bucket}/o", headers=headers)
        assert (get.status_code, head.status_code) == (status, status), headers
        assert head.content == b""
        if status == 200:
            assert get.content == b"hello"
        elif status == 304:
            for answer in (get, head):
                assert answer.content == b""
                assert answer.headers["ETag"] == etag
                assert answer.headers["Last-Modified"] == http_date(modified)
                assert answer.headers["Cache-Control"] == "no-cache"
                assert "x-amz-meta-a" not in answer.headers
        else:
            err = parse_error(get)
            assert (err["Code"], err["Condition"]) == ("PreconditionFailed", condition)


def test_conditional_get_with_boto3(s3, bucket, hello):
    etag, _ = hello
    assert s3.get_object(Bucket=bucket, Key="o", IfMatch=etag)["Body"].read() == b"hello"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="o", IfNoneMatch=etag)
    assert status_of(e)[1] == 304
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="o", IfMatch='"nope"')
    assert status_of(e)[1] == 412


def test_conditions_on_missing_key_are_404(gateway, bucket):
    resp = signed_request(gateway.endpoint, "GET", f"/{bucket}/nope", headers={"If-Match": "*"})
    assert resp.status_code == 404 and parse_error(resp)["Code"] == "NoSuchKey"


# -- response-* overrides -----------------------------------------------------------------

OVERRIDES = {
    "response-cache-control": "no-store",
    "response-content-disposition": 'attachment; filename="a.txt"',
    "response-content-encoding": "identity",
    "response-content-language": "de",
    "response-content-type": "text/html",
    "response-expires": "Thu, 01 Dec 1994 16:00:00 GMT",
}


def test_response_overrides(gateway, s3, bucket, hello):
    query = "&".join(
        f"{k}={requests.utils.quote(v, safe='')}" for k, v in sorted(OVERRIDES.items())
    )
    for method in ("GET", "HEAD"):
        resp = signed_request(gateway.endpoint, method, f"/{bucket}/o", query=query)
        assert resp.status_code == 200
        for param, value in OVERRIDES.items():
            assert resp.headers[param.removeprefix("response-")] == value
    plain = s3.get_object(Bucket=bucket, Key="o")
    assert (plain["ContentType"], plain["CacheControl"]) == ("text/plain", "no-cache")
    empty = signed_request(gateway.endpoint, "GET", f"/{bucket}/o", query="response-content-type=")
    assert empty.headers["Content-Type"] == "text/plain"
    got = s3.get_object(Bucket=bucket, Key="o", ResponseContentType="image/png", Range="bytes=1-2")
    assert (got["ContentType"], got["Body"].read()) == ("image/png", b"el")


def test_response_overrides_presigned(gateway, s3, bucket, hello):
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "o", "ResponseContentDisposition": "attachment"},
    )
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Disposition"] == "attachment"


def test_response_override_must_be_latin1(gateway, bucket, hello):
    resp = signed_request(
        gateway.endpoint, "GET", f"/{bucket}/o", query="response-content-language=%E6%96%87"
    )
    assert resp.status_code == 400
    err = parse_error(resp)
    assert (err["Code"], err["ArgumentName"]) == ("InvalidArgument", "response-content-language")


# -- conditional PUT ------------------------------------------------------------------------


def test_conditional_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="new", Body=b"hello", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="new", Body=b"other", IfNoneMatch="*")
    assert status_of(e) == ("PreconditionFailed", 412)
    assert e.value.response["Error"]["Condition"] == "If-None-Match"
    etag = s3.head_object(Bucket=bucket, Key="new")["ETag"]
    s3.put_object(Bucket=bucket, Key="new", Body=b"hello", IfMatch=etag)
    s3.put_object(Bucket=bucket, Key="new", Body=b"hello", IfMatch=etag.strip('"'))
    s3.put_object(Bucket=bucket, Key="new", Body=b"v2", IfMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="new", Body=b"v3", IfMatch=etag)
    assert status_of(e) == ("PreconditionFailed", 412)
    assert e.value.response["Error"]["Condition"] == "If-Match"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch=etag)
    assert status_of(e) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b"v2"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["new"]


def test_if_none_match_with_etags(gateway, s3, bucket):
    """An ETag list in If-None-Match (as Ceph RGW takes it): refused if the object has one."""
    put = lambda value: signed_request(  # noqa: E731
        gateway.endpoint, "PUT", f"/{bucket}/k", b"x", headers={"If-None-Match": value}
    )
    assert put('"abc"').status_code == 200  # no object yet
    etag = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    assert put('"abc", "def"').status_code == 200
    resp = put(f'"other", {etag}')
    assert resp.status_code == 412
    assert parse_error(resp)["Condition"] == "If-None-Match"
    assert put(etag.strip('"')).status_code == 412


def test_large_conditional_put_refused_leaves_old_object(s3, bucket):
    old = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key="big", Body=old)
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="big", Body=os.urandom(5 * 1024 * 1024), IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == old


def race(gateway, threads: int, attempt) -> list:
    """Run attempt(client, n) in ``threads`` threads released together; their results."""
    barrier = threading.Barrier(threads)
    results: list = [None] * threads

    def run(n: int) -> None:
        client = gateway.client()
        barrier.wait()
        results[n] = attempt(client, n)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


def test_racing_if_none_match_puts_have_one_winner(gateway, s3, bucket):
    def attempt(client, n: int):
        try:
            client.put_object(Bucket=bucket, Key="race", Body=f"body-{n}".encode(), IfNoneMatch="*")
            return "won"
        except ClientError as e:
            return e.response["Error"]["Code"]

    for _ in range(3):
        key_results = race(gateway, 12, attempt)
        assert key_results.count("won") == 1, key_results
        assert set(key_results) == {"won", "PreconditionFailed"}
        winner = key_results.index("won")
        body = s3.get_object(Bucket=bucket, Key="race")["Body"].read()
        assert body == f"body-{winner}".encode()
        s3.delete_object(Bucket=bucket, Key="race")


def test_racing_if_match_puts_have_one_winner(gateway, s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cas", Body=b"v0")["ETag"]

    def attempt(client, n: int):
        try:
            client.put_object(Bucket=bucket, Key="cas", Body=f"v-{n}".encode(), IfMatch=etag)
            return "won"
        except ClientError as e:
            return e.response["Error"]["Code"]

    results = race(gateway, 12, attempt)
    assert results.count("won") == 1, results
    assert (
        s3.get_object(Bucket=bucket, Key="cas")["Body"].read()
        == f"v-{results.index('won')}".encode()
    )


# -- versionId=null, HEAD ranges, tag count -------------------------------------------------


def test_version_id_null_is_the_object(gateway, bucket, hello):
    for method in ("GET", "HEAD"):
        resp = signed_request(gateway.endpoint, method, f"/{bucket}/o", query="versionId=null")
        assert resp.status_code == 200
        assert "x-amz-version-id" not in resp.headers
        bad = signed_request(gateway.endpoint, method, f"/{bucket}/o", query="versionId=abc")
        assert bad.status_code == 400
    bad = signed_request(gateway.endpoint, "GET", f"/{bucket}/o", query="versionId=abc")
    err = parse_error(bad)
    assert (err["Code"], err["Message"]) == ("InvalidArgument", "Invalid version id specified")
    assert (
        signed_request(gateway.endpoint, "DELETE", f"/{bucket}/o", query="versionId=x").status_code
        == 400
    )
    gone = signed_request(gateway.endpoint, "DELETE", f"/{bucket}/o", query="versionId=null")
    assert gone.status_code == 204 and "x-amz-version-id" not in gone.headers
    assert signed_request(gateway.endpoint, "HEAD", f"/{bucket}/o").status_code == 404


def test_head_with_range(gateway, bucket, hello):
    resp = signed_request(gateway.endpoint, "HEAD", f"/{bucket}/o", headers={"Range": "bytes=1-2"})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == "bytes 1-2/5"
    assert resp.headers["Content-Length"] == "2"
    bad = signed_request(gateway.endpoint, "HEAD", f"/{bucket}/o", headers={"Range": "bytes=9-"})
    assert bad.status_code == 416


def test_tagging_count_on_get_and_head(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="a=1&b=2")
    assert s3.get_object(Bucket=bucket, Key="t")["TagCount"] == 2
    assert (
        s3.head_object(Bucket=bucket, Key="t")["ResponseMetadata"]["HTTPHeaders"][
            "x-amz-tagging-count"
        ]
        == "2"
    )
    s3.put_object(Bucket=bucket, Key="u", Body=b"x")
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="u")


# -- GetObjectAttributes --------------------------------------------------------------------

ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def test_object_attributes(s3, bucket):
    data = b"hello"
    s3.put_object(Bucket=bucket, Key="a", Body=data, ChecksumAlgorithm="CRC32")
    got = s3.get_object_attributes(Bucket=bucket, Key="a", ObjectAttributes=ALL)
    assert got["ETag"] == "5d41402abc4b2a76b9719d911017c592"
    assert got["Checksum"] == {
        "ChecksumCRC32": c.compute("CRC32", data),
        "ChecksumType": "FULL_OBJECT",
    }
    assert (got["StorageClass"], got["ObjectSize"]) == ("STANDARD", 5)
    assert "ObjectParts" not in got and got["LastModified"]
    only = s3.get_object_attributes(Bucket=bucket, Key="a", ObjectAttributes=["ObjectSize"])
    assert "ETag" not in only and only["ObjectSize"] == 5


def test_object_attributes_of_a_multipart_object(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    parts = []
    for number, body in ((1, b"a" * 5 * 1024 * 1024), (2, b"tail")):
        etag = s3.upload_part(
            Bucket=bucket, Key="mp", UploadId=upload, PartNumber=number, Body=body
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    got = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL)
    assert got["ObjectParts"]["TotalPartsCount"] == 2
    assert got["ObjectSize"] == 5 * 1024 * 1024 + 4
    assert got["ETag"].endswith("-2")
    # The parts are listed (as RGW lists them), paged like ListParts.
    sizes = [(p["PartNumber"], p["Size"]) for p in got["ObjectParts"]["Parts"]]
    assert sizes == [(1, 5 * 1024 * 1024), (2, 4)]
    assert got["ObjectParts"]["IsTruncated"] is False
    page = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL, MaxParts=1)
    parts_page = page["ObjectParts"]
    assert (parts_page["MaxParts"], parts_page["IsTruncated"]) == (1, True)
    assert parts_page["NextPartNumberMarker"] == 1
    assert [p["PartNumber"] for p in parts_page["Parts"]] == [1]
    rest = s3.get_object_attributes(Bucket=bucket, Key="mp", ObjectAttributes=ALL,
                                    PartNumberMarker=1)["ObjectParts"]
    assert (rest["PartNumberMarker"], rest["IsTruncated"]) == (1, False)
    assert [p["PartNumber"] for p in rest["Parts"]] == [2]


@pytest.mark.parametrize(
    ("value", "code", "message"),
    [
        (
            None,
            "InvalidRequest",
            "Missing required header for this request: x-amz-object-attributes",
        ),
        ("ETag,Owner", "InvalidArgument", "Invalid attribute name specified."),
        ("etag", "InvalidArgument", "Invalid attribute name specified."),
        (",", "InvalidArgument", "Invalid attribute name specified."),
    ],
)
def test_object_attributes_errors(gateway, s3, bucket, value, code, message):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    headers = {} if value is None else {"x-amz-object-attributes": value}
    resp = signed_request(
        gateway.endpoint, "GET", f"/{bucket}/a", query="attributes", headers=headers
    )
    assert resp.status_code == 400
    err = parse_error(resp)
    assert (err["Code"], err["Message"]) == (code, message)


def test_object_attributes_missing_key(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object_attributes(
            Bucket=bucket, Key="nope-" + uuid.uuid4().hex, ObjectAttributes=["ETag"]
        )
    assert status_of(e) == ("NoSuchKey", 404)


def test_conditional_delete(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="d", Body=b"x")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.delete_object(Bucket=bucket, Key="d", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert status_of(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="d", IfMatch=etag)
    # A key that is gone is deleted already, whatever the condition (as Ceph RGW).
    s3.delete_object(Bucket=bucket, Key="d", IfMatch=etag)
