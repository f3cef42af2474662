"""Object tagging over real HTTP, on every backend (plus the pure tag rules)."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from xml.sax.saxutils import escape

import pytest
from botocore.exceptions import ClientError

from s3api.errors import S3Error
from s3api.handlers.tagging import parse_tagging_header, validate_tags
from tests.support.signing import signed_request
from tests.test_s3_errors import parse_error

TEN = [(f"key-{n}", f"value-{n}") for n in range(7)] + [
    ("b c+d-e=f.g_h:i/j@k", "2 + 2 = 4"),
    ("empty", ""),
    ("\U0001d49c" * 128, "文" * 256),  # 128 astral letters are 128 characters
]


def tag_set(pairs) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs]


def tagging_body(pairs) -> bytes:
    items = "".join(
        f"<Tag><Key>{escape(k)}</Key><Value>{escape(v)}</Value></Tag>" for k, v in pairs
    )
    return f'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>{items}</TagSet></Tagging>'.encode()


def put_tagging_raw(gateway, bucket: str, key: str, body: bytes):
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    return signed_request(
        gateway.endpoint,
        "PUT",
        f"/{bucket}/{key}",
        body,
        query="tagging",
        headers={"Content-MD5": md5},
    )


# -- pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("a=1&b=2", {"a": "1", "b": "2"}),
        ("a&b=", {"a": "", "b": ""}),
        ("a%20b=c%2Bd&e+f=g=h", {"a b": "c+d", "e f": "g=h"}),
        ("%C3%BC=%E6%96%87", {"ü": "文"}),
        ("", {}),
    ],
)
def test_parse_tagging_header(header, tags):
    assert parse_tagging_header(header) == tags


@pytest.mark.parametrize(
    ("header", "code"),
    [("a=1&a=2", "InvalidArgument"), ("=1", "InvalidArgument"), ("a=%FF", "InvalidArgument"),
     ("&".join(f"k{n}=" for n in range(11)), "InvalidTag"), ("a,b=1", "InvalidTag"),
     ("aws:cost=1", "InvalidTag")],
)  # fmt: skip
def test_parse_tagging_header_refuses(header, code):
    with pytest.raises(S3Error) as info:
        parse_tagging_header(header)
    assert info.value.code.name == code


def test_validate_tags_accepts_the_limits():
    assert list(validate_tags(TEN).items()) == TEN


# -- over HTTP ------------------------------------------------------------------------------


def test_put_get_delete_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"hello")
    assert s3.get_object_tagging(Bucket=bucket, Key="o")["TagSet"] == []
    s3.put_object_tagging(Bucket=bucket, Key="o", Tagging={"TagSet": tag_set(TEN)})
    assert s3.get_object_tagging(Bucket=bucket, Key="o")["TagSet"] == tag_set(sorted(TEN))
    assert s3.get_object(Bucket=bucket, Key="o")["TagCount"] == 10
    s3.put_object_tagging(Bucket=bucket, Key="o", Tagging={"TagSet": tag_set([("only", "one")])})
    assert s3.get_object_tagging(Bucket=bucket, Key="o")["TagSet"] == tag_set([("only", "one")])
    deleted = s3.delete_object_tagging(Bucket=bucket, Key="o")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="o")["TagSet"] == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="o")
    # Tags change nothing else: content and Last-Modified stay.
    assert s3.get_object(Bucket=bucket, Key="o")["Body"].read() == b"hello"


def test_tagging_header_on_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", Tagging="a%20b=c%2Bd&e+f=g=h")
    assert s3.get_object_tagging(Bucket=bucket, Key="o")["TagSet"] == tag_set(
        [("a b", "c+d"), ("e f", "g=h")]
    )


def test_tagging_keeps_last_modified(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    before = s3.head_object(Bucket=bucket, Key="o")
    s3.put_object_tagging(Bucket=bucket, Key="o", Tagging={"TagSet": tag_set([("a", "1")])})
    after = s3.head_object(Bucket=bucket, Key="o")
    assert (after["LastModified"], after["ETag"]) == (before["LastModified"], before["ETag"])


ELEVEN = [(f"key-{n}", "") for n in range(11)]


@pytest.mark.parametrize(
    ("pairs", "code", "message", "details"),
    [
        (ELEVEN, "InvalidTag", "Object tags cannot be greater than 10", {}),
        (
            [("a", "1"), ("a", "2")],
            "InvalidTag",
            "Cannot provide multiple Tags with the same key",
            {"TagKey": "a"},
        ),
        (
            [("v" * 129, "")],
            "InvalidTag",
            "The TagKey you have provided is invalid",
            {"TagKey": "v" * 129},
        ),
        ([("", "v")], "InvalidTag", "The TagKey you have provided is invalid", {"TagKey": ""}),
        (
            [("k", "v" * 257)],
            "InvalidTag",
            "The TagValue you have provided is invalid",
            {"TagKey": "k", "TagValue": "v" * 257},
        ),
        (
            [("a,b", "v")],
            "InvalidTag",
            "The TagKey you have provided is invalid",
            {"TagKey": "a,b"},
        ),
        (
            [("k", "a*b")],
            "InvalidTag",
            "The TagValue you have provided is invalid",
            {"TagKey": "k", "TagValue": "a*b"},
        ),
        (
            [("k", "😀")],
            "InvalidTag",
            "The TagValue you have provided is invalid",
            {"TagKey": "k", "TagValue": "😀"},
        ),
        (
            [("AWS:cost", "v")],
            "InvalidTag",
            "System tags cannot be added/updated by requester",
            {"TagKey": "AWS:cost"},
        ),
    ],
)
def test_tag_rules(gateway, s3, bucket, pairs, code, message, details):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", Tagging="keep=1")
    resp = put_tagging_raw(gateway, bucket, "o", tagging_body(pairs))
    assert resp.status_code == 400
    err = parse_error(resp)
    assert (err["Code"], err["Message"]) == (code, message)
    for name, value in details.items():
        assert err[name] == value
    assert s3.get_object_tagging(Bucket=bucket, Key="o")["TagSet"] == tag_set([("keep", "1")])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<Tagging><TagSet>", "MalformedXML"),
        (b"<Tagging></Tagging>", "MalformedXML"),
        (b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>", "MalformedXML"),
        (b"<Tags><TagSet></TagSet></Tags>", "MalformedXML"),
        (b"", "MissingRequestBodyError"),
    ],
)
def test_bad_tagging_documents(gateway, s3, bucket, body, code):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    resp = put_tagging_raw(gateway, bucket, "o", body)
    assert resp.status_code == 400 and parse_error(resp)["Code"] == code


def test_header_errors_store_nothing(gateway, s3, bucket):
    resp = signed_request(
        gateway.endpoint, "PUT", f"/{bucket}/new", b"x", headers={"x-amz-tagging": "a=1&a=2"}
    )
    assert resp.status_code == 400
    err = parse_error(resp)
    assert (err["Code"], err["ArgumentName"], err["ArgumentValue"]) == (
        "InvalidArgument",
        "x-amz-tagging",
        "a=1&a=2",
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_tagging_of_missing_key(gateway, bucket, method):
    body = tagging_body([("a", "1")]) if method == "PUT" else b""
    resp = (
        put_tagging_raw(gateway, bucket, "missing", body)
        if method == "PUT"
        else signed_request(gateway.endpoint, method, f"/{bucket}/missing", query="tagging")
    )
    assert resp.status_code == 404 and parse_error(resp)["Code"] == "NoSuchKey"


def test_version_id_on_tagging(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", Tagging="a=1")
    ok = signed_request(gateway.endpoint, "GET", f"/{bucket}/o", query="tagging&versionId=null")
    assert ok.status_code == 200 and "x-amz-version-id" not in ok.headers
    bad = signed_request(gateway.endpoint, "GET", f"/{bucket}/o", query="tagging&versionId=v1")
    assert bad.status_code == 400


def test_tag_updates_never_resurrect_an_overwritten_object(gateway, s3, bucket):
    """Tag writes race with overwrites; the last acknowledged overwrite always survives whole.

    A tag update that wrote back the entry it had read would resurrect an older
    object whose stripes the overwrite already removed.
    """
    size = 100_000  # past the inline limit: entries point at stripes
    s3.put_object(Bucket=bucket, Key="o", Body=os.urandom(size))
    stop = threading.Event()
    failures: list[Exception] = []

    def tagger(n: int) -> None:
        client = gateway.client()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                client.put_object_tagging(
                    Bucket=bucket, Key="o", Tagging={"TagSet": tag_set([(f"t{n}", str(i))])}
                )
            except ClientError as e:  # a conflict is an acceptable answer, a wrong one is not
                if e.response["Error"]["Code"] != "ConditionalRequestConflict":
                    failures.append(e)

    threads = [threading.Thread(target=tagger, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    last = b""
    try:
        for _ in range(15):
            last = os.urandom(size)
            s3.put_object(Bucket=bucket, Key="o", Body=last)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures
    got = s3.get_object(Bucket=bucket, Key="o")["Body"].read()
    assert got == last


def test_tags_are_listed_by_key(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", Tagging="foo=bar&bar")
    assert s3.get_object_tagging(Bucket=bucket, Key="o")["TagSet"] == [
        {"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}
    ]
