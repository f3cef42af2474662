"""ListObjectVersions and the versioning state of buckets that never had versioning enabled
(versioned buckets: tests/test_s3_versioning.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from tests.support.signing import signed_request

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def put_keys(s3, bucket, keys):
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


def test_every_object_is_the_null_version(s3, bucket):
    put_keys(s3, bucket, ["a", "b/c", "d"])
    resp = s3.list_object_versions(Bucket=bucket)
    versions = resp["Versions"]
    assert [v["Key"] for v in versions] == ["a", "b/c", "d"]
    for version in versions:
        assert version["VersionId"] == "null"
        assert version["IsLatest"] is True
        assert version["Size"] == len(version["Key"])
        assert version["ETag"].startswith('"')
        assert version["StorageClass"] == "STANDARD"
        assert version["Owner"]["ID"] == "tester"
    assert "DeleteMarkers" not in resp
    assert resp["IsTruncated"] is False
    assert resp["Name"] == bucket
    assert resp["KeyMarker"] == ""
    head = s3.head_object(Bucket=bucket, Key="a")
    assert versions[0]["ETag"] == head["ETag"]


def test_prefix_delimiter_and_common_prefixes(s3, bucket):
    put_keys(s3, bucket, ["top", "dir/one", "dir/two", "dir/sub/three", "other/x"])
    resp = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [v["Key"] for v in resp["Versions"]] == ["top"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir/", "other/"]
    resp = s3.list_object_versions(Bucket=bucket, Prefix="dir/", Delimiter="/")
    assert [v["Key"] for v in resp["Versions"]] == ["dir/one", "dir/two"]
    assert [p["Prefix"] for p in resp["CommonPrefixes"]] == ["dir/sub/"]
    assert resp["Prefix"] == "dir/" and resp["Delimiter"] == "/"


def test_paging_with_markers(s3, bucket):
    keys = [f"k{i:02d}" for i in range(7)]
    put_keys(s3, bucket, keys)
    first = s3.list_object_versions(Bucket=bucket, MaxKeys=3)
    assert [v["Key"] for v in first["Versions"]] == keys[:3]
    assert first["IsTruncated"] is True
    assert first["NextKeyMarker"] == "k02"
    assert first["NextVersionIdMarker"] == "null"
    second = s3.list_object_versions(
        Bucket=bucket,
        MaxKeys=3,
        KeyMarker=first["NextKeyMarker"],
        VersionIdMarker=first["NextVersionIdMarker"],
    )
    assert [v["Key"] for v in second["Versions"]] == keys[3:6]
    assert second["KeyMarker"] == "k02" and second["VersionIdMarker"] == "null"
    # key-marker alone resumes after every version of that key.
    third = s3.list_object_versions(Bucket=bucket, KeyMarker="k05")
    assert [v["Key"] for v in third["Versions"]] == ["k06"]
    assert third["IsTruncated"] is False
    assert "NextKeyMarker" not in third


def test_paginator_walks_everything_including_prefixes(s3, bucket):
    keys = [f"p{i}/x" for i in range(4)] + [f"f{i}" for i in range(5)]
    put_keys(s3, bucket, keys)
    seen, prefixes = [], []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}):
        seen += [v["Key"] for v in page.get("Versions", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert seen == sorted(k for k in keys if "/" not in k)
    assert prefixes == [f"p{i}/" for i in range(4)]


def test_encoding_type_url(gateway, s3, bucket):
    put_keys(s3, bucket, ["a b/c+d", "é"])
    resp = signed_request(
        gateway.endpoint, "GET", f"/{bucket}", query="delimiter=%2F&encoding-type=url&versions="
    )
    assert resp.status_code == 200
    root = ET.fromstring(resp.content)
    assert root.tag == NS + "ListVersionsResult"
    assert root.findtext(NS + "EncodingType") == "url"
    assert [e.text for e in root.iter(NS + "Key")] == ["%C3%A9"]
    assert [e.text for e in root.iter(NS + "Prefix") if e.text] == ["a%20b/"]
    # boto3 asks for url encoding on its own and decodes the keys back.
    resp = s3.list_object_versions(Bucket=bucket)
    assert sorted(v["Key"] for v in resp["Versions"]) == ["a b/c+d", "é"]


def test_max_keys_zero(s3, bucket):
    put_keys(s3, bucket, ["a"])
    resp = s3.list_object_versions(Bucket=bucket, MaxKeys=0)
    assert "Versions" not in resp and resp["IsTruncated"] is False


@pytest.mark.parametrize(
    "params, name",
    [
        ({"VersionIdMarker": "null"}, "version-id-marker"),
        ({"KeyMarker": "a", "VersionIdMarker": "3HL4kqtJlcpXroDTDmJ+rmSpXd3"}, "version-id-marker"),
        ({"MaxKeys": -1}, "maxKeys"),
    ],
)
def test_bad_markers(s3, bucket, params, name):
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket=bucket, **params)
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    assert e.value.response["Error"]["ArgumentName"] == name


def test_missing_bucket_and_other_owner(gateway, s3):
    with pytest.raises(ClientError) as e:
        s3.list_object_versions(Bucket="no-such-bucket-for-versions")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"


def test_versioning_state_never_enabled(s3, bucket):
    resp = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in resp and "MFADelete" not in resp


def test_suspending_a_never_versioned_bucket(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    # Recorded and reported as AWS and RGW do; objects stay the null version.
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["Key"], v["VersionId"]) for v in versions] == [("k", "null")]


def test_malformed_versioning_configuration(gateway, bucket):
    body = b"<VersioningConfiguration><Status>Sometimes</Status></VersioningConfiguration>"
    resp = signed_request(gateway.endpoint, "PUT", f"/{bucket}", body=body, query="versioning=")
    assert resp.status_code == 400
    assert b"<Code>MalformedXML</Code>" in resp.content
