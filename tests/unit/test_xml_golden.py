"""Golden XML: error bodies and listings byte for byte, and safe parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import errors as engine
from engine.index import ListPage
from engine.records import ObjectEntry
from s3api import xml
from s3api.errors import S3Error, S3ErrorCode, to_s3_error
from storage import errors as storage

GOLDEN = Path(__file__).parent.parent / "golden"


def golden(name: str, produced: bytes) -> None:
    path = GOLDEN / name
    assert produced.decode() == path.read_text(), f"{name} differs from its golden copy"


def test_error_document_golden():
    err = S3Error(S3ErrorCode.NoSuchKey, Key="a&b<c>")
    golden("error_nosuchkey.xml", xml.error_document(err, "REQ123", "host-id", "/bkt/a&b<c>"))


def test_error_with_details_golden():
    err = to_s3_error(engine.BucketNotEmpty(BucketName="full"))
    golden("error_bucketnotempty.xml", xml.error_document(err, "R1", "h1", "/full"))


@pytest.mark.parametrize(
    "exc,code,status",
    [
        (engine.NoSuchBucket(), "NoSuchBucket", 404),
        (engine.NoSuchKey(), "NoSuchKey", 404),
        (engine.BucketAlreadyExists(), "BucketAlreadyExists", 409),
        (engine.BucketAlreadyOwnedByYou(), "BucketAlreadyOwnedByYou", 409),
        (engine.BucketNotEmpty(), "BucketNotEmpty", 409),
        (engine.InvalidBucketName(), "InvalidBucketName", 400),
        (engine.KeyTooLong(), "KeyTooLongError", 400),
        (engine.InvalidKey(), "InvalidArgument", 400),
        (engine.EntityTooLarge(), "EntityTooLarge", 400),
        (engine.IncompleteBody(), "IncompleteBody", 400),
        (engine.BadDigest(), "BadDigest", 400),
        (engine.InvalidRange(), "InvalidRange", 416),
        (engine.PreconditionFailed(), "PreconditionFailed", 412),
        (storage.BackendUnavailable("down"), "ServiceUnavailable", 503),
        (storage.ObjectNotFound(), "InternalError", 500),
        (RuntimeError("boom"), "InternalError", 500),
    ],
)
def test_error_mapping(exc, code, status):
    err = to_s3_error(exc)
    assert (err.code.name, err.status) == (code, status)
    assert "boom" not in err.message  # internal details never reach the client


def test_list_bucket_result_golden():
    from s3api.handlers import listing

    page = ListPage(
        entries=[("a.txt", ObjectEntry(size=3, etag='"abc"', mtime=1_700_000_000.25))],
        common_prefixes=["dir/"],
        is_truncated=False,
        next_marker=None,
    )
    header = [("Name", "b"), ("Prefix", ""), ("KeyCount", 2), ("MaxKeys", 1000),
              ("Delimiter", "/"), ("IsTruncated", False)]
    body = xml.render(
        "ListBucketResult", [*header, *listing._contents(page, lambda s: s, owner=None)]
    )
    golden("list_objects_v2.xml", body)


def test_location_constraint_golden():
    golden("location_empty.xml", xml.render_text("LocationConstraint", ""))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<a>",
        b"not xml",
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>',
        b'<!DOCTYPE x [<!ENTITY a "aa"><!ENTITY b "&a;&a;">]><a>&b;</a>',
    ],
)
def test_parse_rejects_malformed_and_dangerous(body):
    with pytest.raises(S3Error) as e:
        xml.parse(body)
    assert e.value.code is S3ErrorCode.MalformedXML


def test_timestamps():
    assert xml.timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert xml.http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
