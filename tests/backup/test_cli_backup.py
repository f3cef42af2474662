"""``atonix-cli backup`` end to end: to a bucket of the same deployment, to moto_server and
to a second gateway, restores back through the CLI, and scheduled runs by the gateways."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
import urllib.request
import uuid

import pytest

from tests.conftest import backend_options, create_test_user, empty_and_delete
from tests.support.gateway_process import (
    CLI,
    TEST_ACCESS_KEY,
    TEST_SECRET,
    GatewayProcess,
    backend_args,
    run_cli,
)
from tests.support.moto import MOTO_KEY, MOTO_SECRET, MotoServer

PART = 5 * 1024 * 1024


def _cli(options: dict, *args: str, env: dict | None = None) -> dict | list:
    proc = subprocess.run([*CLI, *args, *backend_args(options)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _fill(s3, bucket: str) -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="small.txt", Body=b"hello", ContentType="text/plain",
                  Metadata={"k": "v"})
    s3.put_object(Bucket=bucket, Key="dir/mid.bin", Body=uuid.uuid4().bytes * 4000)
    up = s3.create_multipart_upload(Bucket=bucket, Key="dir/multi.bin")
    parts = []
    for n, fill in ((1, b"a"), (2, b"b")):
        body = fill * PART if n == 1 else fill * 1000
        got = s3.upload_part(Bucket=bucket, Key="dir/multi.bin", UploadId=up["UploadId"],
                             PartNumber=n, Body=body)
        parts.append({"PartNumber": n, "ETag": got["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="dir/multi.bin", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": parts})


def _snapshot(s3, bucket: str) -> dict:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=item["Key"])
            out[item["Key"]] = (got["Body"].read(), got["ContentType"], got["Metadata"])
    return out


@pytest.fixture
def cleanup(s3):
    names: list[str] = []
    yield names.append
    for name in names:
        empty_and_delete(s3, name)


def test_backup_to_a_bucket_here_then_restore(gateway, s3, cleanup):
    src, vault = "bsrc-" + uuid.uuid4().hex[:8], "bvault-" + uuid.uuid4().hex[:8]
    for name in (src, vault, src + "-back"):
        cleanup(name)
    _fill(s3, src)
    s3.create_bucket(Bucket=vault)
    first = _cli(gateway.options, "backup", "run", src, "--to", vault)
    assert (first["status"], first["objects"], first["copied"], first["verified"]) == (
        "succeeded", 3, 3, 3)
    state1 = _snapshot(s3, src)
    shown = _cli(gateway.options, "backup", "show", first["run_id"])
    assert sorted(e["key"] for e in shown["catalog"]) == sorted(state1)

    s3.put_object(Bucket=src, Key="small.txt", Body=b"changed")
    s3.delete_object(Bucket=src, Key="dir/mid.bin")
    second = _cli(gateway.options, "backup", "run", src, "--to", vault)
    assert (second["objects"], second["copied"], second["base_run"]) == (
        2, 1, first["run_id"])
    listed = _cli(gateway.options, "backup", "list", src)
    assert [r["run_id"] for r in listed] == [first["run_id"], second["run_id"]]

    back = _cli(gateway.options, "backup", "restore", first["run_id"], "--to", src + "-back")
    assert back["restored"] == 3
    assert _snapshot(s3, src + "-back") == state1
    in_place = _cli(gateway.options, "backup", "restore", first["run_id"])
    assert (in_place["restored"], in_place["unchanged"]) == (2, 1)
    assert _snapshot(s3, src) == state1

    bad = run_cli(gateway.options, "backup", "show", "no-such-run", check=False)
    assert bad.returncode == 2 and "no backup run" in bad.stderr
    missing = run_cli(gateway.options, "backup", "run", src, "--to", "no-such-vault-x",
                      check=False)
    assert missing.returncode == 2 and "NoSuchBucket" in missing.stderr


def test_backup_to_moto_with_lock_days_then_restore(gateway, s3, cleanup, tmp_path):
    moto = MotoServer(tmp_path / "moto.log").start()
    try:
        remote = moto.client()
        remote.create_bucket(Bucket="offsite", ObjectLockEnabledForBucket=True)
        src = "bmoto-" + uuid.uuid4().hex[:8]
        cleanup(src)
        cleanup(src + "-back")
        _fill(s3, src)
        env = {"AWS_ACCESS_KEY_ID": MOTO_KEY, "AWS_SECRET_ACCESS_KEY": MOTO_SECRET}
        run = _cli(gateway.options, "backup", "run", src, "--to", "s3://offsite",
                   "--endpoint-url", moto.endpoint, "--lock-days", "2", env=env)
        assert (run["status"], run["copied"], run["verified"]) == ("succeeded", 3, 3)
        assert run["target"] == f"{moto.endpoint}/offsite"
        for item in _cli(gateway.options, "backup", "show", run["run_id"])["catalog"]:
            head = remote.head_object(Bucket="offsite", Key=item["target_key"],
                                      VersionId=item["target_version"])
            assert head["ObjectLockMode"] == "COMPLIANCE"
            assert head["ObjectLockRetainUntilDate"].timestamp() == pytest.approx(
                run["lock_until"], abs=2)
        again = _cli(gateway.options, "backup", "run", src, "--to", "s3://offsite",
                     "--endpoint-url", moto.endpoint, env=env)
        assert again["copied"] == 0, "nothing changed: nothing sent"
        expected = _snapshot(s3, src)
        back = _cli(gateway.options, "backup", "restore", run["run_id"], "--to", src + "-back",
                    env=env)
        assert back["restored"] == 3
        assert _snapshot(s3, src + "-back") == expected
        nokeys = run_cli(gateway.options, "backup", "run", src, "--to", "s3://offsite",
                         check=False)
        assert nokeys.returncode == 2 and "no S3 endpoint" in nokeys.stderr
    finally:
        moto.stop()


def test_backup_to_a_second_gateway(gateway, s3, cleanup, tmp_path):
    other_opts = backend_options("local", tmp_path / "other")
    create_test_user(other_opts)
    other = GatewayProcess(other_opts, tmp_path / "other.log").start()
    try:
        other.client().create_bucket(Bucket="far-vault")
        src = "bgw-" + uuid.uuid4().hex[:8]
        cleanup(src)
        _fill(s3, src)
        env = {"ATONIX_BACKUP_ACCESS_KEY": TEST_ACCESS_KEY,
               "ATONIX_BACKUP_SECRET_KEY": TEST_SECRET}
        run = _cli(gateway.options, "backup", "run", src, "--to", "s3://far-vault",
                   "--endpoint-url", other.endpoint, env=env)
        assert run["verified"] == 3
        expected = _snapshot(s3, src)
        for key in list(expected):
            s3.delete_object(Bucket=src, Key=key)
        back = _cli(gateway.options, "backup", "restore", run["run_id"], env=env)
        assert back["restored"] == 3
        assert _snapshot(s3, src) == expected
    finally:
        other.stop()


def test_gateways_run_scheduled_backups_one_at_a_time(backend_kind, tmp_path):
    options = backend_options(backend_kind, tmp_path)
    create_test_user(options)
    config = tmp_path / "atonix.yaml"
    config.write_text(
        "backups:\n  - {bucket: sched-src, to: sched-vault, every: 2s}\n"
        "backup_check_seconds: 0.5\n"
    )
    # The buckets exist before any scheduled gateway starts: a run of a missing bucket
    # fails, and a failed schedule waits minutes before it tries again.
    plain = GatewayProcess(options, tmp_path / "plain.log").start()
    try:
        plain.client().create_bucket(Bucket="sched-vault")
        _fill(plain.client(), "sched-src")
    finally:
        plain.stop()
    gateways = [GatewayProcess(options, tmp_path / f"g{i}.log",
                               extra_args=["--config", str(config)]).start() for i in range(2)]
    try:
        deadline = time.monotonic() + 60
        runs: list = []
        while time.monotonic() < deadline:
            runs = [r for r in _cli(options, "backup", "list", "sched-src")
                    if r["status"] == "succeeded"]
            if len(runs) >= 3:
                break
            time.sleep(0.5)
        assert len(runs) >= 3, runs
        spans = sorted((r["started"], r["finished"]) for r in runs)
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end, "two runs overlapped: the lease let two gateways run"
        assert [r["copied"] for r in runs] == [3] + [0] * (len(runs) - 1), "incremental"
        seen = ""
        for gw in gateways:
            with urllib.request.urlopen(gw.endpoint + "/metrics", timeout=5) as resp:
                seen += resp.read().decode()
        assert 'atonix_backup_last_success_timestamp_seconds{bucket="sched-src"}' in seen
    finally:
        for gw in gateways:
            gw.stop()
