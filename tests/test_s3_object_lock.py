"""Object lock through boto3, on both backends: default retention, GOVERNANCE and its bypass,
COMPLIANCE that nobody can shorten, legal holds, and the errors of buckets without it."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import pytest
from botocore.exceptions import ClientError


def _error(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"][
        "HTTPStatusCode"
    ]


def _later(days: float = 1.0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


@pytest.fixture
def locked(s3):
    name = "lock-" + uuid.uuid4().hex[:14]
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    # Versions under COMPLIANCE retention outlive the test, as they must; the rest goes.
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            with contextlib.suppress(ClientError):
                s3.delete_object(
                    Bucket=name, Key=item["Key"], VersionId=item["VersionId"],
                    BypassGovernanceRetention=True,
                )
    with contextlib.suppress(ClientError):
        s3.delete_bucket(Bucket=name)


def test_a_lock_bucket_is_versioned_and_applies_its_default_retention(s3, locked):
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    s3.put_object_lock_configuration(
        Bucket=locked,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    rule = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]["Rule"]
    assert rule == {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}
    vid = s3.put_object(Bucket=locked, Key="k", Body=b"x")["VersionId"]
    head = s3.head_object(Bucket=locked, Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > _later(0.9)
    assert _error(lambda: s3.delete_object(Bucket=locked, Key="k", VersionId=vid)) == (
        "AccessDenied", 403
    )
    # Without a version id a delete only adds a marker: the version stays.
    assert s3.delete_object(Bucket=locked, Key="k")["DeleteMarker"] is True
    assert s3.get_object(Bucket=locked, Key="k", VersionId=vid)["Body"].read() == b"x"
    # The owner may bypass GOVERNANCE, and only when asking for it.
    s3.delete_object(Bucket=locked, Key="k", VersionId=vid, BypassGovernanceRetention=True)
    assert _error(lambda: s3.head_object(Bucket=locked, Key="k", VersionId=vid))[1] == 404
    assert _error(
        lambda: s3.put_bucket_versioning(
            Bucket=locked, VersioningConfiguration={"Status": "Suspended"}
        )
    ) == ("InvalidBucketState", 409)


def test_compliance_retention_is_never_weakened(s3, locked):
    vid = s3.put_object(
        Bucket=locked, Key="c", Body=b"kept",
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=_later(1),
    )["VersionId"]
    retention = s3.get_object_retention(Bucket=locked, Key="c", VersionId=vid)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    weaker = [
        {"Mode": "COMPLIANCE", "RetainUntilDate": _later(0.5)},
        {"Mode": "GOVERNANCE", "RetainUntilDate": _later(2)},
    ]
    for change in weaker:
        assert _error(
            lambda change=change: s3.put_object_retention(
                Bucket=locked, Key="c", VersionId=vid, Retention=change,
                BypassGovernanceRetention=True,
            )
        ) == ("AccessDenied", 403)
    s3.put_object_retention(
        Bucket=locked, Key="c", VersionId=vid,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": _later(2)},
    )
    assert s3.get_object_retention(Bucket=locked, Key="c", VersionId=vid)["Retention"][
        "RetainUntilDate"
    ] > _later(1.5)
    denied = _error(
        lambda: s3.delete_object(
            Bucket=locked, Key="c", VersionId=vid, BypassGovernanceRetention=True
        )
    )
    assert denied == ("AccessDenied", 403)
    result = s3.delete_objects(
        Bucket=locked, Delete={"Objects": [{"Key": "c", "VersionId": vid}]},
        BypassGovernanceRetention=True,
    )
    assert result["Errors"][0]["Code"] == "AccessDenied" and "Deleted" not in result
    assert s3.get_object(Bucket=locked, Key="c", VersionId=vid)["Body"].read() == b"kept"


def test_legal_hold_blocks_even_the_bypass(s3, locked):
    vid = s3.put_object(Bucket=locked, Key="h", Body=b"x", ObjectLockLegalHoldStatus="ON")[
        "VersionId"
    ]
    hold = s3.get_object_legal_hold(Bucket=locked, Key="h", VersionId=vid)["LegalHold"]
    assert hold == {"Status": "ON"}
    assert s3.head_object(Bucket=locked, Key="h")["ObjectLockLegalHoldStatus"] == "ON"
    assert _error(
        lambda: s3.delete_object(
            Bucket=locked, Key="h", VersionId=vid, BypassGovernanceRetention=True
        )
    ) == ("AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=locked, Key="h", VersionId=vid, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=locked, Key="h", VersionId=vid)
    assert "Versions" not in s3.list_object_versions(Bucket=locked)


def test_bad_retention_changes_nothing(s3, locked):
    vid = s3.put_object(Bucket=locked, Key="b", Body=b"x")["VersionId"]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert _error(
        lambda: s3.put_object_retention(
            Bucket=locked, Key="b", VersionId=vid,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": past},
        )
    )[0] == "InvalidArgument"
    assert _error(lambda: s3.get_object_retention(Bucket=locked, Key="b", VersionId=vid)) == (
        "NoSuchObjectLockConfiguration", 404
    )
    s3.delete_object(Bucket=locked, Key="b", VersionId=vid)  # nothing protected it


def test_buckets_without_object_lock_refuse_it(s3, bucket):
    assert _error(lambda: s3.get_object_lock_configuration(Bucket=bucket)) == (
        "ObjectLockConfigurationNotFoundError", 404
    )
    assert _error(
        lambda: s3.put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
        )
    ) == ("InvalidBucketState", 409)
    assert _error(
        lambda: s3.put_object(
            Bucket=bucket, Key="k", Body=b"x",
            ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=_later(),
        )
    ) == ("InvalidRequest", 400)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert _error(
        lambda: s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})
    ) == ("InvalidRequest", 400)
