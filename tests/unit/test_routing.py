"""Routing is pure: wire request -> Endpoint, without sockets."""

from __future__ import annotations

import pytest

from s3api.errors import S3Error
from s3api.routing import parse_query, parse_target, route, split_host

DOMAINS = ("localhost", "s3.example.com")


@pytest.mark.parametrize(
    "host,path,bucket,key",
    [
        ("127.0.0.1:7070", "/", None, None),
        ("127.0.0.1:7070", "/b", "b", None),
        ("127.0.0.1:7070", "/b/", "b", None),
        ("127.0.0.1:7070", "/b/k", "b", "k"),
        ("127.0.0.1:7070", "/b/a/b/c/", "b", "a/b/c/"),
        ("127.0.0.1:7070", "/b/a%2Fb", "b", "a/b"),
        ("127.0.0.1:7070", "/b/sp%20ace", "b", "sp ace"),
        ("127.0.0.1:7070", "/b/plus+sign", "b", "plus+sign"),
        ("127.0.0.1:7070", "/b/%C3%A9t%C3%A9", "b", "été"),
        ("127.0.0.1:7070", "/b/../x", "b", "../x"),
        ("127.0.0.1:7070", "/b//double", "b", "/double"),
        ("bkt.localhost:7070", "/k/x", "bkt", "k/x"),
        ("bkt.localhost", "/", "bkt", None),
        ("my.dotted.bucket.s3.example.com", "/k", "my.dotted.bucket", "k"),
        ("localhost:7070", "/b/k", "b", "k"),
        ("[::1]:7070", "/b/k", "b", "k"),
    ],
)
def test_parse_target(host, path, bucket, key):
    t = parse_target(host, path, DOMAINS)
    assert (t.bucket, t.key) == (bucket, key)


def test_invalid_percent_encoding():
    with pytest.raises(S3Error) as e:
        parse_target("h", "/b/%FF%FE", DOMAINS)
    assert e.value.code.name == "InvalidURI"


def test_split_host():
    assert split_host("Example.COM:80") == "example.com"
    assert split_host("[::1]:8080") == "[::1]"
    assert split_host("host") == "host"


@pytest.mark.parametrize(
    "method,path,query,headers,name",
    [
        ("GET", "/", "", {}, "ListBuckets"),
        ("PUT", "/b", "", {}, "CreateBucket"),
        ("HEAD", "/b", "", {}, "HeadBucket"),
        ("DELETE", "/b", "", {}, "DeleteBucket"),
        ("GET", "/b", "", {}, "ListObjects"),
        ("GET", "/b", "list-type=2&prefix=a", {}, "ListObjectsV2"),
        ("GET", "/b", "location", {}, "GetBucketLocation"),
        ("GET", "/b", "versioning", {}, "GetBucketVersioning"),
        ("GET", "/b", "versions", {}, "ListObjectVersions"),
        ("GET", "/b", "uploads", {}, "ListMultipartUploads"),
        ("PUT", "/b", "tagging", {}, "PutBucketTagging"),
        ("DELETE", "/b", "cors", {}, "DeleteBucketCors"),
        ("POST", "/b", "delete", {}, "DeleteObjects"),
        ("PUT", "/b/k", "", {}, "PutObject"),
        ("PUT", "/b/k", "", {"x-amz-copy-source": "/a/b"}, "CopyObject"),
        ("GET", "/b/k", "", {}, "GetObject"),
        ("HEAD", "/b/k", "", {}, "HeadObject"),
        ("DELETE", "/b/k", "", {}, "DeleteObject"),
        ("GET", "/b/k", "tagging", {}, "GetObjectTagging"),
        ("GET", "/b/k", "acl", {}, "GetObjectAcl"),
        ("POST", "/b/k", "uploads", {}, "CreateMultipartUpload"),
        ("PUT", "/b/k", "partNumber=1&uploadId=x", {}, "UploadPart"),
        ("PUT", "/b/k", "partNumber=1&uploadId=x", {"x-amz-copy-source": "/a/b"},
         "UploadPartCopy"),
        ("POST", "/b/k", "uploadId=x", {}, "CompleteMultipartUpload"),
        ("DELETE", "/b/k", "uploadId=x", {}, "AbortMultipartUpload"),
        ("GET", "/b/k", "uploadId=x", {}, "ListParts"),
        ("GET", "/b/k", "response-content-type=a", {}, "GetObject"),
    ],
)
def test_route_names(method, path, query, headers, name):
    t = parse_target("127.0.0.1", path, DOMAINS)
    assert route(method, t, parse_query(query), headers).name == name


def test_unknown_method_is_405():
    t = parse_target("127.0.0.1", "/b/k", DOMAINS)
    with pytest.raises(S3Error) as e:
        route("PATCH", t, {}, {})
    assert e.value.status == 405


def test_query_parsing_keeps_blank_and_first_value():
    assert parse_query("acl&x=1&x=2&e=") == {"acl": "", "x": "1", "e": ""}
