"""Owners and grantees carry the user's display name wherever S3 shows one."""

from __future__ import annotations

OWNER = {"ID": "tester", "DisplayName": "Tester"}


def test_acls_show_the_display_name(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for acl in (s3.get_bucket_acl(Bucket=bucket), s3.get_object_acl(Bucket=bucket, Key="k")):
        assert acl["Owner"] == OWNER
        assert acl["Grants"] == [
            {"Grantee": {**OWNER, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}
        ]


def test_listings_show_the_display_name(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.list_buckets()["Owner"] == OWNER
    assert s3.list_objects(Bucket=bucket)["Contents"][0]["Owner"] == OWNER
    listed = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]
    assert listed["Owner"] == OWNER
    assert s3.list_object_versions(Bucket=bucket)["Versions"][0]["Owner"] == OWNER
    upload = s3.create_multipart_upload(Bucket=bucket, Key="m")
    try:
        found = s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]
        assert found["Owner"] == OWNER and found["Initiator"] == OWNER
        parts = s3.list_parts(Bucket=bucket, Key="m", UploadId=upload["UploadId"])
        assert parts["Owner"] == OWNER and parts["Initiator"] == OWNER
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=upload["UploadId"])
