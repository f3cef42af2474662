"""S3 versioning through boto3, on both backends: what AWS documents for versioned buckets."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def vbucket(s3):
    name = "v-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=name)


def _error(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response


def test_versions_are_kept_and_read_back(s3, vbucket):
    assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Enabled"
    ids = [s3.put_object(Bucket=vbucket, Key="k", Body=b"v%d" % i)["VersionId"] for i in range(3)]
    assert len(set(ids)) == 3 and "null" not in ids
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"v2"
    for i, vid in enumerate(ids):
        got = s3.get_object(Bucket=vbucket, Key="k", VersionId=vid)
        assert got["Body"].read() == b"v%d" % i and got["VersionId"] == vid
        assert s3.head_object(Bucket=vbucket, Key="k", VersionId=vid)["ContentLength"] == 2
    listed = s3.list_object_versions(Bucket=vbucket)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in listed] == [
        (ids[2], True), (ids[1], False), (ids[0], False)
    ]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=vbucket)["Contents"]] == ["k"]


def test_delete_markers(s3, vbucket):
    first = s3.put_object(Bucket=vbucket, Key="k", Body=b"x")["VersionId"]
    deleted = s3.delete_object(Bucket=vbucket, Key="k")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] not in (None, first)
    marker = deleted["VersionId"]
    missing = _error(lambda: s3.get_object(Bucket=vbucket, Key="k"))
    assert missing["Error"]["Code"] == "NoSuchKey"
    assert missing["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    assert missing["ResponseMetadata"]["HTTPHeaders"]["x-amz-version-id"] == marker
    refused = _error(lambda: s3.get_object(Bucket=vbucket, Key="k", VersionId=marker))
    assert refused["Error"]["Code"] == "MethodNotAllowed"
    assert refused["ResponseMetadata"]["HTTPStatusCode"] == 405
    assert s3.list_objects_v2(Bucket=vbucket)["KeyCount"] == 0
    listing = s3.list_object_versions(Bucket=vbucket)
    assert [(m["VersionId"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [(marker, True)]
    assert [(v["VersionId"], v["IsLatest"]) for v in listing["Versions"]] == [(first, False)]
    # Removing the marker brings the object back; removing a version removes it for good.
    gone = s3.delete_object(Bucket=vbucket, Key="k", VersionId=marker)
    assert gone["DeleteMarker"] is True and gone["VersionId"] == marker
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"x"
    assert s3.delete_object(Bucket=vbucket, Key="k", VersionId=first)["VersionId"] == first
    assert "Versions" not in s3.list_object_versions(Bucket=vbucket)


def test_suspended_writes_the_null_version(s3, vbucket):
    kept = s3.put_object(Bucket=vbucket, Key="k", Body=b"versioned")["VersionId"]
    s3.put_bucket_versioning(Bucket=vbucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=vbucket)["Status"] == "Suspended"
    assert s3.put_object(Bucket=vbucket, Key="k", Body=b"one")["VersionId"] == "null"
    assert s3.put_object(Bucket=vbucket, Key="k", Body=b"two")["VersionId"] == "null"
    versions = s3.list_object_versions(Bucket=vbucket)["Versions"]
    assert [v["VersionId"] for v in versions] == ["null", kept]  # one null, replaced
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId="null")["Body"].read() == b"two"
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=kept)["Body"].read() == b"versioned"


def test_copy_multipart_and_delete_objects_name_versions(s3, vbucket):
    old = s3.put_object(Bucket=vbucket, Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket=vbucket, Key="src", Body=b"new")
    copied = s3.copy_object(
        Bucket=vbucket, Key="dst", CopySource={"Bucket": vbucket, "Key": "src", "VersionId": old}
    )
    assert copied["CopySourceVersionId"] == old and copied["VersionId"]
    assert s3.get_object(Bucket=vbucket, Key="dst")["Body"].read() == b"old"
    upload = s3.create_multipart_upload(Bucket=vbucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=vbucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"p")
    done = s3.complete_multipart_upload(
        Bucket=vbucket, Key="mp", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert done["VersionId"] and s3.head_object(Bucket=vbucket, Key="mp")["VersionId"] == (
        done["VersionId"]
    )
    result = s3.delete_objects(
        Bucket=vbucket,
        Delete={"Objects": [{"Key": "src", "VersionId": old}, {"Key": "dst"}]},
    )
    deleted = {(d["Key"], d.get("VersionId")): d for d in result["Deleted"]}
    assert deleted[("src", old)].get("DeleteMarker") is not True
    assert deleted[("dst", None)]["DeleteMarker"] is True
    assert deleted[("dst", None)]["DeleteMarkerVersionId"]
    assert _error(lambda: s3.get_object(Bucket=vbucket, Key="src", VersionId=old))["Error"][
        "Code"
    ] == "NoSuchVersion"


def test_tags_and_attributes_of_a_version(s3, vbucket):
    vid = s3.put_object(Bucket=vbucket, Key="k", Body=b"x", Tagging="a=1")["VersionId"]
    assert s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=vid)["TagSet"] == [
        {"Key": "a", "Value": "1"}
    ]
    s3.put_object_tagging(
        Bucket=vbucket, Key="k", VersionId=vid, Tagging={"TagSet": [{"Key": "b", "Value": "2"}]}
    )
    attrs = s3.get_object_attributes(
        Bucket=vbucket, Key="k", VersionId=vid, ObjectAttributes=["ObjectSize"]
    )
    assert attrs["ObjectSize"] == 1 and attrs["VersionId"] == vid
    current = s3.put_object(Bucket=vbucket, Key="k", Body=b"y")["VersionId"]
    # A noncurrent version's tags change where it is; the current version's stay.
    s3.put_object_tagging(Bucket=vbucket, Key="k", VersionId=vid, Tagging={"TagSet": []})
    assert s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=vid)["TagSet"] == []
    assert s3.get_object_tagging(Bucket=vbucket, Key="k")["TagSet"] == []
    assert s3.get_object_tagging(Bucket=vbucket, Key="k", VersionId=current)["VersionId"] == (
        current
    )
    assert s3.get_object(Bucket=vbucket, Key="k", VersionId=vid)["Body"].read() == b"x"


def test_bad_and_unknown_version_ids(s3, vbucket):
    s3.put_object(Bucket=vbucket, Key="k", Body=b"x")
    bad = _error(lambda: s3.get_object(Bucket=vbucket, Key="k", VersionId="not-a-version"))
    assert bad["Error"]["Code"] == "InvalidArgument"
    unknown = "0" * 24
    assert _error(lambda: s3.get_object(Bucket=vbucket, Key="k", VersionId=unknown))["Error"][
        "Code"
    ] == "NoSuchVersion"
    assert _error(lambda: s3.head_object(Bucket=vbucket, Key="k", VersionId=unknown))[
        "ResponseMetadata"
    ]["HTTPStatusCode"] == 404
    # Deleting a version that does not exist changes nothing, and succeeds.
    s3.delete_object(Bucket=vbucket, Key="k", VersionId=unknown)
    assert s3.get_object(Bucket=vbucket, Key="k")["Body"].read() == b"x"


def test_a_versioned_bucket_is_not_empty_until_every_version_is_gone(s3, vbucket):
    s3.put_object(Bucket=vbucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=vbucket, Key="k")
    assert _error(lambda: s3.delete_bucket(Bucket=vbucket))["Error"]["Code"] == "BucketNotEmpty"
