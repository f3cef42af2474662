"""ListBuckets with AWS's paging and filters: max-buckets, continuation-token, prefix, region."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import empty_and_delete
from tests.support.gateway_process import create_test_user
from tests.support.signing import signed_request


@pytest.fixture
def named_buckets(s3):
    stem = "lb-" + uuid.uuid4().hex[:8]
    names = [f"{stem}-{i}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    yield stem, names
    for name in names:
        empty_and_delete(s3, name)


def test_pages_with_continuation_tokens(s3, named_buckets):
    stem, names = named_buckets
    first = s3.list_buckets(MaxBuckets=2, Prefix=stem)
    assert [b["Name"] for b in first["Buckets"]] == names[:2]
    assert first["Prefix"] == stem
    assert first["Owner"]["ID"] == "tester"
    assert first["ContinuationToken"]
    token = first["ContinuationToken"]
    second = s3.list_buckets(MaxBuckets=2, Prefix=stem, ContinuationToken=token)
    assert [b["Name"] for b in second["Buckets"]] == names[2:4]
    token = second["ContinuationToken"]
    third = s3.list_buckets(MaxBuckets=2, Prefix=stem, ContinuationToken=token)
    assert [b["Name"] for b in third["Buckets"]] == names[4:]
    assert "ContinuationToken" not in third


def test_paginator_and_region(s3, named_buckets):
    stem, names = named_buckets
    pages = s3.get_paginator("list_buckets").paginate(
        Prefix=stem, PaginationConfig={"PageSize": 3}
    )
    seen = [b["Name"] for page in pages for b in page["Buckets"]]
    assert seen == names
    every = s3.list_buckets(Prefix=stem)
    assert [b["Name"] for b in every["Buckets"]] == names
    assert {b["BucketRegion"] for b in every["Buckets"]} == {"us-east-1"}
    assert "ContinuationToken" not in every
    assert len(s3.list_buckets(Prefix=stem, BucketRegion="us-east-1")["Buckets"]) == 5
    assert s3.list_buckets(Prefix=stem, BucketRegion="eu-west-1")["Buckets"] == []


def test_only_the_callers_buckets(gateway, s3, named_buckets):
    stem, _ = named_buckets
    uid = "lister" + uuid.uuid4().hex[:6]
    key = "AKLIST" + uuid.uuid4().hex[:14].upper()
    create_test_user(gateway.options, uid, access_key=key, secret="secret-" + uid)
    stranger = gateway.client(access_key=key, secret="secret-" + uid)
    resp = stranger.list_buckets(Prefix=stem)
    assert resp["Buckets"] == [] and resp["Owner"]["ID"] == uid


@pytest.mark.parametrize(
    "params, name",
    [
        ({"MaxBuckets": 10001}, "max-buckets"),
        ({"ContinuationToken": "not-a-token"}, "continuation-token"),
    ],
)
def test_bad_paging_arguments(s3, params, name):
    with pytest.raises(ClientError) as e:
        s3.list_buckets(**params)
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    assert e.value.response["Error"]["ArgumentName"] == name


@pytest.mark.parametrize("value", ["0", "abc", "-1"])
def test_max_buckets_out_of_range(gateway, value):
    resp = signed_request(gateway.endpoint, "GET", "/", query=f"max-buckets={value}")
    assert resp.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in resp.content
    assert b"<ArgumentName>max-buckets</ArgumentName>" in resp.content
