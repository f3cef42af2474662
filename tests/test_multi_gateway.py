"""Gateways share nothing: two processes over one backend see each other's writes at once."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def test_read_and_list_after_write_across_gateways(two_gateways):
    a, b = (g.client() for g in two_gateways)
    name = "mg-" + uuid.uuid4().hex[:12]
    a.create_bucket(Bucket=name)
    assert name in [x["Name"] for x in b.list_buckets()["Buckets"]]
    for i in range(20):
        a.put_object(Bucket=name, Key=f"k{i:02d}", Body=b"v%d" % i)
        assert b.get_object(Bucket=name, Key=f"k{i:02d}")["Body"].read() == b"v%d" % i
        keys = [o["Key"] for o in b.list_objects_v2(Bucket=name)["Contents"]]
        assert keys[-1] == f"k{i:02d}" and len(keys) == i + 1
    b.put_object(Bucket=name, Key="k00", Body=b"overwritten by b")
    assert a.get_object(Bucket=name, Key="k00")["Body"].read() == b"overwritten by b"
    b.delete_object(Bucket=name, Key="k01")
    with pytest.raises(ClientError):
        a.head_object(Bucket=name, Key="k01")


def test_bucket_recreated_elsewhere_is_not_stale(two_gateways):
    """A's cached bucket record must not let it write into B's deleted-and-recreated bucket."""
    a, b = (g.client() for g in two_gateways)
    name = "mg-" + uuid.uuid4().hex[:12]
    a.create_bucket(Bucket=name)
    a.put_object(Bucket=name, Key="old", Body=b"1")  # A caches the bucket record
    a.delete_object(Bucket=name, Key="old")
    b.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        a.put_object(Bucket=name, Key="ghost", Body=b"x")
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    b.create_bucket(Bucket=name)
    a.put_object(Bucket=name, Key="new", Body=b"2")
    assert [o["Key"] for o in b.list_objects_v2(Bucket=name)["Contents"]] == ["new"]


def test_racing_bucket_creates_make_one_bucket(two_gateways):
    import concurrent.futures

    clients = [g.client() for g in two_gateways] * 4
    name = "race-" + uuid.uuid4().hex[:12]

    def create(c):
        try:
            c.create_bucket(Bucket=name)
            return "ok"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, clients))
    # The owner creating its own bucket again is answered 200 (us-east-1, RGW): all succeed,
    # and there is one bucket.
    assert results == ["ok"] * len(clients)
    names = [b["Name"] for b in clients[0].list_buckets()["Buckets"]]
    assert names.count(name) == 1
