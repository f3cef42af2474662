"""Replication between regions, on both backends: two deployments (separate data
folders or pool prefixes), each served by its own gateway, whose shippers talk S3 to
each other. Version ids, ETags (multipart ones too) and metadata arrive intact; two
regions writing one key at once converge; a region that is down is caught up with
after it returns, and the shipper backs off meanwhile instead of spinning."""

from __future__ import annotations

import datetime
import json
import random
import signal
import time

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.conftest import backend_options
from tests.support.gateway_process import (
    GatewayProcess,
    create_test_user,
    free_port,
    run_cli,
)
from tests.support.moto import MOTO_KEY, MOTO_SECRET
from tests.support.partition_proxy import PartitionProxy
from tests.support.replication import Region, paired, rules, until, versions


@pytest.fixture
def regions(backend_kind, tmp_path):
    east_port, west_port = free_port(), free_port()
    east = Region("east", backend_kind, tmp_path, east_port, "west", west_port).start()
    west = Region("west", backend_kind, tmp_path, west_port, "east", east_port).start()
    paired(east, west)
    yield east, west
    east.stop()
    west.stop()


def test_versions_travel_to_the_other_region_intact(regions):
    east, west = regions
    src, dst = east.s3(), west.s3()
    put = src.put_object(Bucket="photos", Key="a.jpg", Body=b"jpeg" * 10000,
                         Metadata={"camera": "x100"}, Tagging="trip=alps", ACL="public-read")
    upload = src.create_multipart_upload(Bucket="photos", Key="big.bin")
    parts = [src.upload_part(Bucket="photos", Key="big.bin", UploadId=upload["UploadId"],
                             PartNumber=n, Body=bytes([n]) * (5 * 1024 * 1024))["ETag"]
             for n in (1, 2)]
    src.complete_multipart_upload(
        Bucket="photos", Key="big.bin", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(parts, 1)]})
    src.delete_object(Bucket="photos", Key="a.jpg")
    assert until(lambda: versions(dst, "photos-dr") == versions(src, "photos"), 30, every=0.2)
    head = dst.head_object(Bucket="photos-dr", Key="a.jpg", VersionId=put["VersionId"])
    assert head["ReplicationStatus"] == "REPLICA" and head["Metadata"] == {"camera": "x100"}
    assert dst.get_object_tagging(Bucket="photos-dr", Key="a.jpg",
                                  VersionId=put["VersionId"])["TagSet"] == [
        {"Key": "trip", "Value": "alps"}]
    grants = dst.get_object_acl(Bucket="photos-dr", Key="a.jpg", VersionId=put["VersionId"])
    assert {(g["Grantee"].get("URI", "").rsplit("/", 1)[-1], g["Permission"])
            for g in grants["Grants"]} >= {("AllUsers", "READ")}
    big = dst.get_object(Bucket="photos-dr", Key="big.bin")
    assert big["Body"].read() == bytes([1]) * (5 << 20) + bytes([2]) * (5 << 20)
    assert big["ETag"].endswith('-2"')
    assert until(lambda: src.head_object(Bucket="photos", Key="big.bin").get(
        "ReplicationStatus") == "COMPLETED", 30, every=0.2)


def test_a_region_that_was_down_is_caught_up_with(regions):
    east, west = regions
    src = east.s3()
    west.stop(signal.SIGKILL)
    made = [src.put_object(Bucket="photos", Key=f"k{i}", Body=b"x" * i)["VersionId"]
            for i in range(20)]
    time.sleep(2.0)  # the shipper fails and backs off meanwhile
    status = json.loads(run_cli(east.options, "replication", "status").stdout)
    assert status["photos"]["west:photos-dr"]["backlog_objects"] == 20
    assert status["photos"]["west:photos-dr"]["backlog_bytes"] == sum(range(20))
    metrics = until(lambda: "atonix_replication_failures_total{" in _metrics(east), 10,
                    every=0.2)
    assert metrics
    assert 'atonix_replication_backlog_bytes{destination="west:photos-dr"} 190.0' in _metrics(
        east)
    west.start()
    dst = west.s3()
    assert until(lambda: {v[1] for v in versions(dst, "photos-dr")} == set(made), 90, every=0.2)
    assert until(lambda: json.loads(run_cli(east.options, "replication", "status").stdout)[
        "photos"]["west:photos-dr"]["backlog_objects"] == 0, 30, every=0.2)


def test_two_regions_writing_one_key_converge(regions):
    east, west = regions
    west.s3().put_bucket_replication(
        Bucket="photos-dr", ReplicationConfiguration=rules("arn:aws:s3:east::photos"))
    for i in range(10):  # interleaved writes of one key in both regions
        east.s3().put_object(Bucket="photos", Key="shared", Body=f"east {i}".encode())
        west.s3().put_object(Bucket="photos-dr", Key="shared", Body=f"west {i}".encode())
    assert until(lambda: versions(east.s3(), "photos") == versions(west.s3(), "photos-dr")
                 and len(versions(east.s3(), "photos")) == 20, 60, every=0.2)
    winner = {r.s3().get_object(Bucket=b, Key="shared")["Body"].read()
              for r, b in ((east, "photos"), (west, "photos-dr"))}
    assert len(winner) == 1


def _metrics(region: Region) -> str:
    import urllib.request

    assert region.gw is not None
    with urllib.request.urlopen(region.gw.endpoint + "/metrics", timeout=5) as answer:
        return answer.read().decode()


def test_a_plain_s3_endpoint_gets_whole_objects(backend_kind, tmp_path, moto_server):
    """Multi-cloud copies: moto_server stands in for AWS; no Atonix headers there, large
    objects go by multipart, metadata and tags travel."""
    options = backend_options(backend_kind, tmp_path)
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "replication_interval_seconds": 0.1,
        "regions": {"aws": {"endpoints": [moto_server.endpoint], "access_key": MOTO_KEY,
                            "secret_key": MOTO_SECRET, "plain": True,
                            "multipart_bytes": 8 * 1024 * 1024}}}))
    options["config"] = str(config)
    create_test_user(options)
    gw = GatewayProcess(options, tmp_path / "gw.log").start()
    remote = moto_server.client()
    target = "copies-" + str(free_port())
    remote.create_bucket(Bucket=target)
    remote.put_bucket_versioning(Bucket=target, VersioningConfiguration={"Status": "Enabled"})
    try:
        s3 = gw.client()
        s3.create_bucket(Bucket="local-data")
        s3.put_bucket_versioning(Bucket="local-data",
                                 VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_replication(Bucket="local-data",
                                  ReplicationConfiguration=rules(f"arn:aws:s3:aws::{target}"))
        small = s3.put_object(Bucket="local-data", Key="small.txt", Body=b"tiny",
                              Metadata={"owner": "ops"}, Tagging="keep=yes")
        big = bytes(range(256)) * (20 * 4096)  # 20 MiB: multipart there
        s3.put_object(Bucket="local-data", Key="big.bin", Body=big)
        assert until(lambda: {o["Key"] for o in remote.list_objects_v2(Bucket=target).get(
            "Contents", [])} == {"small.txt", "big.bin"}, 60, every=0.2)
        got = remote.get_object(Bucket=target, Key="small.txt")
        assert got["Body"].read() == b"tiny"
        assert got["Metadata"] == {"owner": "ops", "atonix-version-id": small["VersionId"]}
        assert remote.get_object_tagging(Bucket=target, Key="small.txt")["TagSet"] == [
            {"Key": "keep", "Value": "yes"}]
        copy = remote.get_object(Bucket=target, Key="big.bin")
        assert copy["Body"].read() == big and copy["ETag"].endswith('-2"')
        s3.delete_object(Bucket="local-data", Key="small.txt")  # a marker there too
        assert until(lambda: remote.list_object_versions(Bucket=target, Prefix="small.txt").get(
            "DeleteMarkers"), 30, every=0.2)
    finally:
        gw.stop()


def test_only_the_chunks_the_other_region_lacks_travel(backend_kind, tmp_path):
    """A large version that differs from the previous one by 1% sends about 1% of its
    bytes (counted on the link); the copy is byte for byte the source's."""
    east_port, west_port = free_port(), free_port()
    link = PartitionProxy(west_port)
    east = Region("east", backend_kind, tmp_path, east_port, "west", link.port).start()
    west = Region("west", backend_kind, tmp_path, west_port, "east", east_port).start()
    try:
        paired(east, west)
        src, dst = east.s3(), west.s3()
        size = 16 << 20
        first = bytearray(random.Random(7).randbytes(size))
        src.put_object(Bucket="photos", Key="disk.img", Body=bytes(first))
        assert until(lambda: len(versions(dst, "photos-dr")) == 1, 60, every=0.2)
        before = link.sent
        assert before > size  # the first version went whole
        second = bytearray(first)
        second[size // 2:size // 2 + size // 100] = random.Random(8).randbytes(size // 100)
        put = src.put_object(Bucket="photos", Key="disk.img", Body=bytes(second))
        assert until(lambda: len(versions(dst, "photos-dr")) == 2, 60, every=0.2)
        sent = link.sent - before
        print(f"1% changed of {size >> 20} MiB: {sent} bytes on the link "
              f"({100 * sent / size:.2f}% of the object)")
        assert sent < size // 10
        copy = dst.get_object(Bucket="photos-dr", Key="disk.img", VersionId=put["VersionId"])
        assert copy["ETag"] == put["ETag"] and copy["Body"].read() == bytes(second)
    finally:
        east.stop()
        west.stop()
        link.close()


def test_verify_across_regions_finds_and_repairs_differences(regions):
    east, west = regions
    src, dst = east.s3(), west.s3()
    made = {f"k{i:03d}": src.put_object(Bucket="photos", Key=f"k{i:03d}", Body=b"v" * i)[
        "VersionId"] for i in range(60)}
    assert until(lambda: len(versions(dst, "photos-dr")) == 60, 60, every=0.2)

    def verify(*extra: str) -> dict:
        done = run_cli(east.options, "replication", "verify", "photos", "--to", "west",
                       *extra, check=False)
        return json.loads(done.stdout)["west:photos-dr"] | {"rc": done.returncode}

    clean = verify()
    assert clean == {"differences": 0, "keys": [], "exchanges": 3, "repaired": 0, "rc": 0}
    dst.delete_object(Bucket="photos-dr", Key="k007", VersionId=made["k007"])  # lost there
    dst.put_object(Bucket="photos-dr", Key="k042", Body=b"written in west itself")
    found = verify()
    assert found["keys"] == ["k007", "k042"] and found["rc"] == 1
    assert found["exchanges"] < 3 + 2 * 4 * 3  # narrowed down, not listed
    repaired = verify("--repair")
    assert repaired["repaired"] == 2 and repaired["rc"] == 0
    assert dst.get_object(Bucket="photos-dr", Key="k007", VersionId=made["k007"])[
        "Body"].read() == b"v" * 7
    assert verify()["keys"] == ["k042"]  # an extra version there is left alone


def test_retention_and_legal_holds_travel_to_locked_buckets(regions):
    east, west = regions
    src, dst = east.s3(), west.s3()
    for s3, bucket in ((src, "vault"), (dst, "vault-dr")):
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    src.put_bucket_replication(Bucket="vault",
                               ReplicationConfiguration=rules("arn:aws:s3:west::vault-dr"))
    until_date = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    put = src.put_object(Bucket="vault", Key="ledger", Body=b"entries",
                         ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until_date,
                         ObjectLockLegalHoldStatus="ON")
    vid = put["VersionId"]
    assert until(lambda: len(versions(dst, "vault-dr")) == 1, 30, every=0.2)
    kept = dst.get_object_retention(Bucket="vault-dr", Key="ledger", VersionId=vid)["Retention"]
    assert kept["Mode"] == "GOVERNANCE"
    assert abs(kept["RetainUntilDate"].timestamp() - until_date.timestamp()) < 1
    hold = dst.get_object_legal_hold(Bucket="vault-dr", Key="ledger", VersionId=vid)
    assert hold["LegalHold"]["Status"] == "ON"
    with pytest.raises(ClientError):  # protected there as here
        dst.delete_object(Bucket="vault-dr", Key="ledger", VersionId=vid)
