"""``atonix-cli restore`` against a running gateway: boto3 sees the bucket as it was."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest

from gateway.cli.restore import joined_offsets, parse_instant
from tests.conftest import empty_and_delete as _remove
from tests.support.gateway_process import run_cli


@pytest.fixture
def empty_and_delete(s3):
    """Register buckets to remove, with all their versions, after the test."""
    names: list[str] = []
    yield names.append
    for name in names:
        _remove(s3, name)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _snapshot(s3, bucket: str) -> dict[str, tuple[bytes, str, dict]]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=item["Key"])
            out[item["Key"]] = (got["Body"].read(), got["ContentType"], got["Metadata"])
    return out


def _moment() -> float:
    time.sleep(0.05)
    at = time.time()
    time.sleep(0.05)
    return at


def test_restore_in_place_and_to_a_copy_while_the_gateway_serves(gateway, s3, empty_and_delete):
    bucket = "rs-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=bucket)
    empty_and_delete(bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    big = uuid.uuid4().bytes * 20_000  # chunked, not inline
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"first a", ContentType="text/plain",
                  Metadata={"who": "one"})
    s3.put_object(Bucket=bucket, Key="dir/big.bin", Body=big)
    s3.put_object(Bucket=bucket, Key="dir/gone", Body=b"soon deleted")
    at = _moment()
    expected = _snapshot(s3, bucket)

    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"second a", Metadata={"who": "two"})
    s3.delete_object(Bucket=bucket, Key="dir/gone")
    s3.put_object(Bucket=bucket, Key="new", Body=b"not there before")

    dry = json.loads(run_cli(gateway.options, "restore", bucket, "--at", _iso(at),
                             "--dry-run").stdout)
    assert (dry["created"], dry["overwritten"], dry["deleted"]) == (1, 1, 1)
    assert {(c["action"], c["key"]) for c in dry["changes"]} == {
        ("create", "dir/gone"), ("overwrite", "a.txt"), ("delete", "new")}
    assert dry["bytes"] == len(b"soon deleted") + len(b"first a")

    copy = bucket + "-copy"
    empty_and_delete(copy)
    out = json.loads(run_cli(gateway.options, "restore", bucket, "--at", _iso(at),
                             "--to", copy).stdout)
    assert out["created"] == 3
    assert _snapshot(s3, copy) == expected

    done = json.loads(run_cli(gateway.options, "restore", bucket, "--at", _iso(at)).stdout)
    assert (done["created"], done["overwritten"], done["deleted"]) == (1, 1, 1)
    assert _snapshot(s3, bucket) == expected  # the serving gateway sees it at once
    # History is kept: the overwritten and deleted versions are still there.
    versions = s3.list_object_versions(Bucket=bucket)
    assert sum(1 for v in versions["Versions"] if v["Key"] == "a.txt") == 3
    assert any(m["Key"] == "new" and m["IsLatest"] for m in versions["DeleteMarkers"])
    again = json.loads(run_cli(gateway.options, "restore", bucket, "--at", _iso(at)).stdout)
    assert (again["created"], again["overwritten"], again["deleted"]) == (0, 0, 0)

    # --prefix limits the restore (relative times: test_instants_parse...).
    before = _moment()
    s3.delete_object(Bucket=bucket, Key="dir/big.bin")
    s3.delete_object(Bucket=bucket, Key="a.txt")
    part = json.loads(run_cli(gateway.options, "restore", bucket, "--at", _iso(before),
                              "--prefix", "dir/").stdout)
    assert (part["created"], part["deleted"]) == (1, 0)
    assert s3.get_object(Bucket=bucket, Key="dir/big.bin")["Body"].read() == big
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="a.txt")


def test_restore_refusals_exit_2_and_change_nothing(gateway, s3, empty_and_delete):
    bucket = "rsbad-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    empty_and_delete(bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")

    def refused(*args: str) -> str:
        proc = run_cli(gateway.options, "restore", *args, check=False)
        assert proc.returncode == 2, proc.stderr
        return proc.stderr

    assert "never versioned" in refused(bucket, "--at", "-1s")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert "future" in refused(bucket, "--at", _iso(time.time() + 3600))
    assert "did not exist" in refused(bucket, "--at", "2001-01-01T00:00:00Z")
    assert "ISO 8601" in refused(bucket, "--at", "yesterday")
    assert "NoSuchBucket" in refused("no-such-" + bucket, "--at", "-1s")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


def test_instants_parse_as_iso_8601_or_offsets():
    now = 1_000_000.0
    assert parse_instant("-2h", now) == now - 7200
    assert parse_instant("-30m", now) == now - 1800
    assert parse_instant("-1.5d", now) == now - 129600
    assert parse_instant("2026-12-06T10:00:00Z", now) == dt.datetime(
        2026, 12, 6, 10, tzinfo=dt.UTC).timestamp()
    assert parse_instant("2026-12-06T11:00:00+01:00", now) == parse_instant(
        "2026-12-06T10:00:00", now)
    with pytest.raises(ValueError):
        parse_instant("+2h", now)
    assert joined_offsets(["restore", "b", "--at", "-2h", "--to", "c"]) == [
        "restore", "b", "--at=-2h", "--to", "c"]
