"""Failover between two regions, on both backends, through real gateways and boto3.

East is the primary of a bucket that west holds a passive copy of (rules both
ways, so whichever is primary ships to the other); west fails over by itself
once east has not answered for ``auto_failover_seconds``. Measured here: the
RTO (east killed -> west takes a client's write) and the RPO (writes east
acknowledged that west lacks after the failover). A partition shows the
fencing: east, cut off and still taking writes, cannot overwrite what west wrote
after taking over; once the link heals it learns it was replaced, turns
passive, and its stranded writes stay with it, FAILED."""

from __future__ import annotations

import json
import signal
import time

import pytest
from botocore.exceptions import ClientError

from tests.support.gateway_process import free_port, run_cli
from tests.support.partition_proxy import PartitionProxy
from tests.support.replication import Region, paired, rules, until

AUTO_FAILOVER_S = 2.0


def role(region: Region, bucket: str) -> dict:
    return json.loads(run_cli(region.options, "replication", "role", bucket).stdout)


def refused(s3, bucket: str, key: str) -> str | None:
    """The error code of a client's PUT, or None if it was taken."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"probe")
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return None


@pytest.fixture
def linked(backend_kind, tmp_path):
    """East (primary) and west (passive, fails over by itself), each seeing the other
    through a proxy that can partition the link."""
    east_port, west_port = free_port(), free_port()
    to_west, to_east = PartitionProxy(west_port), PartitionProxy(east_port)
    east = Region("east", backend_kind, tmp_path, east_port, "west", to_west.port,
                  region_name="east")
    west = Region("west", backend_kind, tmp_path, west_port, "east", to_east.port,
                  {"auto_failover_seconds": AUTO_FAILOVER_S, "timeout_seconds": 2},
                  region_name="west")
    east.start()
    west.start()
    paired(east, west)
    west.s3().put_bucket_replication(
        Bucket="photos-dr", ReplicationConfiguration=rules("arn:aws:s3:east::photos"))
    wrong = run_cli(east.options, "replication", "failover", "photos", "--to", "west",
                    check=False)
    assert wrong.returncode != 0 and "this deployment is region east" in wrong.stderr
    made = json.loads(run_cli(east.options, "replication", "failover", "photos", "--to",
                              "east").stdout)
    assert made == {"bucket": "photos", "primary": "east", "epoch": 1}
    # East's gateway learns of the CLI's failover within its 5 s cache of the bucket's
    # state; its first shipment after that tells west, which turns passive.
    first = ""

    def told() -> bool:
        nonlocal first
        first = east.s3().put_object(Bucket="photos", Key="first", Body=b"1")["VersionId"]
        return until(lambda: role(west, "photos-dr")["primary"] == "east", 1.0, every=0.2)

    assert until(told, 30, every=0.1)
    assert until(lambda: _has(west.s3(), "photos-dr", "first", first), 30, every=0.2)
    yield east, west, to_west, to_east
    east.stop()
    west.stop()
    to_west.close()
    to_east.close()


def _has(s3, bucket: str, key: str, vid: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key, VersionId=vid)
    except ClientError:
        return False
    return True


def test_west_takes_over_when_east_is_killed(linked):
    east, west, _, _ = linked
    src, dst = east.s3(), west.s3()
    assert refused(dst, "photos-dr", "early") == "InvalidBucketState"  # passive: no writes
    assert role(west, "photos-dr") == {"bucket": "photos-dr", "region": "west",
                                       "primary": "east", "epoch": 1, "writable": False}
    acked: list[tuple[str, str, float]] = []
    for i in range(40):  # about 2 s of writes at ~20/s, then east dies
        put = src.put_object(Bucket="photos", Key=f"k{i:03d}", Body=b"v" * 100)
        acked.append((f"k{i:03d}", put["VersionId"], time.monotonic()))
        time.sleep(0.05)
    east.stop(signal.SIGKILL)
    killed = time.monotonic()
    while refused(dst, "photos-dr", "after") is not None:
        assert time.monotonic() - killed < 60, "west never took over"
        time.sleep(0.1)
    rto = time.monotonic() - killed
    missing = [(k, t) for k, vid, t in acked if not _has(dst, "photos-dr", k, vid)]
    rpo = killed - min((t for _, t in missing), default=killed)
    print(f"RTO {rto:.2f} s (auto failover after {AUTO_FAILOVER_S} s); "
          f"RPO {len(missing)} acknowledged writes, {rpo:.2f} s")
    assert rpo < 30  # far inside the 15-minute floor: shipping is continuous
    assert role(west, "photos-dr")["primary"] == "west"
    assert role(west, "photos-dr")["epoch"] == 2

    east.start()  # back, still believing it is the primary at epoch 1
    back = east.s3()
    assert until(lambda: role(east, "photos")["primary"] == "west", 60, every=0.2)
    assert until(lambda: refused(back, "photos", "late") == "InvalidBucketState", 30, every=0.2)
    after = dst.head_object(Bucket="photos-dr", Key="after")["VersionId"]
    assert until(lambda: _has(back, "photos", "after", after), 30, every=0.2)


def test_a_partitioned_old_primary_is_fenced_off(linked):
    east, west, to_west, to_east = linked
    src, dst = east.s3(), west.s3()
    to_west.cut()
    to_east.cut()  # a partition: each region alone, both alive
    assert until(lambda: role(west, "photos-dr")["primary"] == "west", 60, every=0.2)
    assert until(lambda: refused(dst, "photos-dr", "warmup") is None, 30, every=0.2)
    newer = dst.put_object(Bucket="photos-dr", Key="doc", Body=b"west, after taking over")
    time.sleep(0.05)
    stale = src.put_object(Bucket="photos", Key="doc", Body=b"east, cut off")  # split brain
    to_west.heal()
    to_east.heal()
    assert until(lambda: role(east, "photos")["primary"] == "west", 60, every=0.2)
    assert until(lambda: src.head_object(Bucket="photos", Key="doc", VersionId=stale[
        "VersionId"]).get("ReplicationStatus") == "FAILED", 60, every=0.2)
    assert refused(src, "photos", "again") == "InvalidBucketState"
    # West's data stands: east's later write never reached it, whatever its clock said.
    assert dst.get_object(Bucket="photos-dr", Key="doc")["Body"].read() == (
        b"west, after taking over")
    assert not _has(dst, "photos-dr", "doc", stale["VersionId"])
    assert until(lambda: _has(src, "photos", "doc", newer["VersionId"]), 30, every=0.2)
