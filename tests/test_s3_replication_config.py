"""Bucket replication configurations over real HTTP (boto3, both backends): the
round trip and S3's checks of source, destinations and versioning."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import empty_and_delete
from tests.support.gateway_process import create_test_user
from tests.support.signing import signed_request

ROLE = "arn:aws:iam::123456789012:role/replicator"


def error_of(call) -> tuple[str, int, dict]:
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]


def new_bucket(s3, versioning: str | None = "Enabled") -> str:
    name = "r-" + uuid.uuid4().hex[:16]
    s3.create_bucket(Bucket=name)
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    return name


@pytest.fixture
def buckets(s3):
    """Make buckets (versioned unless told otherwise), removed after the test."""
    made: list[str] = []

    def make(versioning: str | None = "Enabled") -> str:
        made.append(new_bucket(s3, versioning))
        return made[-1]

    yield make
    for name in made:
        empty_and_delete(s3, name)


def rule(dest: str, priority: int = 1, **extra) -> dict:
    return {
        "ID": f"r{priority}", "Priority": priority, "Status": "Enabled",
        "Filter": {"Prefix": ""}, "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {"Bucket": f"arn:aws:s3:::{dest}"}, **extra,
    }


def put(s3, source: str, *rules: dict):
    return s3.put_bucket_replication(
        Bucket=source, ReplicationConfiguration={"Role": ROLE, "Rules": list(rules)}
    )


def test_round_trip(s3, buckets):
    source, dest = buckets(), buckets()
    code, status, err = error_of(lambda: s3.get_bucket_replication(Bucket=source))
    assert (code, status, err["BucketName"]) == (
        "ReplicationConfigurationNotFoundError", 404, source)
    rules = [
        {**rule(dest, 1), "Filter": {"Prefix": "logs/"},
         "DeleteMarkerReplication": {"Status": "Enabled"},
         "Destination": {"Bucket": f"arn:aws:s3:::{dest}", "StorageClass": "STANDARD_IA"}},
        {**rule(dest, 2), "Filter": {"Tag": {"Key": "team", "Value": "web"}}},
        {**rule(dest, 3), "Status": "Disabled",
         "Filter": {"And": {"Prefix": "a/", "Tags": [{"Key": "k", "Value": "v"}]}}},
    ]
    resp = put(s3, source, *rules)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]
    assert got == {"Role": ROLE, "Rules": rules}
    put(s3, source, rule(dest, 9))  # replaces the whole configuration
    assert s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"] == [
        rule(dest, 9)]
    resp = s3.delete_bucket_replication(Bucket=source)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lambda: s3.get_bucket_replication(Bucket=source))[0] == (
        "ReplicationConfigurationNotFoundError")
    s3.delete_bucket_replication(Bucket=source)  # deleting nothing succeeds


def test_v1_rules_and_made_up_ids(s3, buckets):
    source, dest = buckets(), buckets()
    v1 = {"Prefix": "old/", "Status": "Enabled", "Destination": {"Bucket": f"arn:aws:s3:::{dest}"}}
    put(s3, source, v1)
    (got,) = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"]
    assert got.pop("ID")  # made up, as AWS does
    assert got == v1


def test_source_must_keep_versions(s3, buckets):
    dest = buckets()
    for versioning in (None, "Suspended"):
        source = buckets(versioning)
        code, status, err = error_of(lambda s=source: put(s3, s, rule(dest)))
        assert (code, status) == ("InvalidRequest", 400)
        assert err["Message"] == (
            "Versioning must be 'Enabled' on the bucket to apply a replication configuration")


@pytest.mark.parametrize("problem", ["missing", "unversioned", "same", "foreign"])
def test_destination_checks(gateway, s3, buckets, problem):
    source = buckets()
    if problem == "missing":
        dest = "missing-" + uuid.uuid4().hex[:8]
    elif problem == "unversioned":
        dest = buckets(None)
    elif problem == "same":
        dest = source
    else:
        dest = foreign_bucket(gateway)
    code, status, _ = error_of(lambda: put(s3, source, rule(dest)))
    assert (code, status) == ("InvalidRequest", 400)
    assert error_of(lambda: s3.get_bucket_replication(Bucket=source))[0] == (
        "ReplicationConfigurationNotFoundError")


def other_client(gateway):
    uid = "other" + uuid.uuid4().hex[:6]
    key = "AKOTHER" + uuid.uuid4().hex[:13].upper()
    create_test_user(gateway.options, uid, access_key=key, secret="other-secret-" + uid)
    return gateway.client(access_key=key, secret="other-secret-" + uid)


def foreign_bucket(gateway) -> str:
    """A versioned bucket of another user (left behind: its owner's business)."""
    return new_bucket(other_client(gateway))


def test_unknown_region_is_refused(s3, buckets):
    source, dest = buckets(), buckets()
    arn = {"Bucket": f"arn:aws:s3:mars-north-1::{dest}"}
    code, status, _ = error_of(lambda: put(s3, source, rule(dest, Destination=arn)))
    assert (code, status) == ("InvalidRequest", 400)


@pytest.mark.parametrize("storage_class", ["GLACIER", "COLDEST"])
def test_storage_class_must_be_served(s3, buckets, storage_class):
    source, dest = buckets(), buckets()
    target = {"Bucket": f"arn:aws:s3:::{dest}", "StorageClass": storage_class}
    code, status, _ = error_of(lambda: put(s3, source, rule(dest, Destination=target)))
    assert (code, status) == ("InvalidStorageClass", 400)


def test_document_errors(s3, buckets):
    source, dest = buckets(), buckets()
    bad_arn = {"Bucket": "not-an-arn"}
    code, status, err = error_of(lambda: put(s3, source, rule(dest, Destination=bad_arn)))
    assert (code, status, err["Message"]) == ("InvalidArgument", 400, "Invalid bucket ARN")
    code, _, _ = error_of(lambda: put(s3, source, rule(dest, 1), rule(dest, 1) | {"ID": "x"}))
    assert code == "InvalidRequest"  # duplicate priority
    tagged = rule(dest, Filter={"Tag": {"Key": "k", "Value": "v"}},
                  DeleteMarkerReplication={"Status": "Enabled"})
    assert error_of(lambda: put(s3, source, tagged))[0] == "InvalidRequest"
    existing = rule(dest, ExistingObjectReplication={"Status": "Enabled"})
    assert error_of(lambda: put(s3, source, existing))[:2] == ("NotImplemented", 501)


def test_malformed_bodies(gateway, s3, buckets):
    source = buckets()
    for body in (b"", b"<ReplicationConfiguration>", b"<ReplicationConfiguration/>"):
        resp = signed_request(gateway.endpoint, "PUT", f"/{source}", body=body,
                              query="replication=")
        assert resp.status_code == 400, body
        assert b"<Code>MalformedXML</Code>" in resp.content
    resp = signed_request(
        gateway.endpoint, "PUT", f"/{source}", body=b"<ReplicationConfiguration/>",
        query="replication=", headers={"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="},
    )
    assert resp.status_code == 400 and b"<Code>BadDigest</Code>" in resp.content


def test_versioning_cannot_be_suspended_under_a_configuration(s3, buckets):
    source, dest = buckets(), buckets()
    put(s3, source, rule(dest))
    suspend = lambda: s3.put_bucket_versioning(  # noqa: E731
        Bucket=source, VersioningConfiguration={"Status": "Suspended"})
    assert error_of(suspend)[:2] == ("InvalidBucketState", 409)
    assert s3.get_bucket_versioning(Bucket=source)["Status"] == "Enabled"
    s3.delete_bucket_replication(Bucket=source)
    suspend()
    assert s3.get_bucket_versioning(Bucket=source)["Status"] == "Suspended"


def test_configuration_is_the_owners_business(gateway, s3, buckets):
    source, dest = buckets(), buckets()
    put(s3, source, rule(dest))
    other = other_client(gateway)
    assert error_of(lambda: other.get_bucket_replication(Bucket=source))[0] == "AccessDenied"
    assert error_of(lambda: put(other, source, rule(dest)))[0] == "AccessDenied"
    assert error_of(lambda: other.delete_bucket_replication(Bucket=source))[0] == "AccessDenied"
    assert s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"] == [
        rule(dest)]
    missing = "no-such-bucket-" + uuid.uuid4().hex[:8]
    assert error_of(lambda: s3.get_bucket_replication(Bucket=missing))[0] == "NoSuchBucket"


def test_configuration_goes_with_the_bucket(s3, buckets):
    dest = buckets()
    source = new_bucket(s3)
    put(s3, source, rule(dest))
    s3.delete_bucket(Bucket=source)
    s3.create_bucket(Bucket=source)
    try:
        assert error_of(lambda: s3.get_bucket_replication(Bucket=source))[0] == (
            "ReplicationConfigurationNotFoundError")
    finally:
        s3.delete_bucket(Bucket=source)
