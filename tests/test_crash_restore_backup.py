"""kill -9 (a failpoint ends the CLI with status 137) in the middle of a point-in-time
restore and of a backup run, while a gateway serves the bucket: no acknowledged version is
lost, running the command again finishes the job exactly, and after fsck --repair and the
collector nothing is left over."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
import uuid

import pytest

from tests.conftest import crash_points
from tests.support.gateway_process import CLI, backend_args
from tests.test_crash_http import _repair_and_check_clean
from tests.test_dedupe_engine import DedupeGateway

POINTS = ["store.after_add_ref@2", "clone.after_manifest@3"]


def _killed(d: DedupeGateway, point: str, *args: str) -> None:
    env = {**os.environ, "ATONIX_FAILPOINTS": point.replace("@", "=exit@")}
    proc = subprocess.run([*CLI, *args, *backend_args(d.options), "--config", str(d.config)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 137, proc.stderr


def _versions(s3, bucket: str) -> set[tuple[str, str]]:
    got = s3.list_object_versions(Bucket=bucket)
    items = got.get("Versions", []) + got.get("DeleteMarkers", [])
    return {(v["Key"], v["VersionId"]) for v in items}


def _snapshot(s3, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def _history(s3, bucket: str) -> tuple[str, dict[str, bytes]]:
    """Objects (a few chunked), then the instant, then overwrites and deletes."""
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(12):
        body = os.urandom(200_000) if i % 3 == 0 else b"%d" % i
        s3.put_object(Bucket=bucket, Key=f"k{i:02d}", Body=body)
    time.sleep(0.05)
    at = dt.datetime.now(dt.UTC).isoformat()
    expected = _snapshot(s3, bucket)
    time.sleep(0.05)
    for i in range(12):
        if i % 2:
            s3.delete_object(Bucket=bucket, Key=f"k{i:02d}")
        else:  # chunked (past the inline limit): a backup clones manifests
            s3.put_object(Bucket=bucket, Key=f"k{i:02d}", Body=os.urandom(150_000))
    return at, expected


@pytest.mark.parametrize("backend_kind,point", crash_points(*POINTS),
                         indirect=["backend_kind"])
def test_kill_mid_restore_then_resume(backend_kind, tmp_path, point):
    d = DedupeGateway(backend_kind, tmp_path)
    d.gw.start()
    try:
        s3 = d.gw.client()
        at, expected = _history(s3, "pit")
        before = _versions(s3, "pit")
        _killed(d, point, "restore", "pit", "--at", at)
        assert before <= _versions(s3, "pit"), "an acknowledged version was lost"
        d.cli("restore", "pit", "--at", at)
        assert _snapshot(s3, "pit") == expected
        assert before <= _versions(s3, "pit")
        _repair_and_check_clean(d)
        assert _snapshot(s3, "pit") == expected
    finally:
        d.gw.stop()


@pytest.mark.parametrize("backend_kind,point", crash_points(*POINTS),
                         indirect=["backend_kind"])
def test_kill_mid_backup_run_then_run_again(backend_kind, tmp_path, point):
    d = DedupeGateway(backend_kind, tmp_path)
    d.gw.start()
    try:
        s3 = d.gw.client()
        _, _ = _history(s3, "src")
        s3.create_bucket(Bucket="vault")
        before = _versions(s3, "src")
        current = _snapshot(s3, "src")
        _killed(d, point, "backup", "run", "src", "--to", "vault")
        assert before == _versions(s3, "src")
        run = d.cli("backup", "run", "src", "--to", "vault")
        assert run["status"] == "succeeded" and run["verified"] == len(current)
        restored = "restored-" + uuid.uuid4().hex[:6]
        d.cli("backup", "restore", run["run_id"], "--to", restored)
        assert _snapshot(s3, restored) == current
        _repair_and_check_clean(d)
        assert _snapshot(s3, restored) == current
    finally:
        d.gw.stop()
