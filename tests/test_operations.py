"""Operations endpoints: /health, /metrics, the structured access log, worker processes."""

from __future__ import annotations

import json

import requests

from tests.conftest import backend_options
from tests.support.gateway_process import GatewayProcess, create_test_user


def test_health(gateway):
    resp = requests.get(gateway.endpoint + "/health", timeout=10)
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
    assert resp.headers["Server"]


def test_metrics_count_requests(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="m", Body=b"x" * 1000)
    s3.get_object(Bucket=bucket, Key="m")["Body"].read()
    text = requests.get(gateway.endpoint + "/metrics", timeout=10).text
    assert 'atonix_s3_requests_total{operation="PutObject",status="200"}' in text
    assert "atonix_s3_request_seconds_bucket" in text
    assert "atonix_s3_bytes_in_total" in text
    assert "atonix_backend_op_seconds_bucket" in text
    puts = [ln for ln in text.splitlines()
            if ln.startswith('atonix_s3_requests_total{operation="PutObject",status="200"}')]
    assert float(puts[0].split()[-1]) >= 1


def test_signed_get_health_is_a_bucket(gateway, s3):
    """A bucket may be named health; signed requests reach S3, unsigned ones the probe."""
    try:
        s3.create_bucket(Bucket="health")
        s3.put_object(Bucket="health", Key="k", Body=b"x")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="health")["Contents"]] == ["k"]
        assert requests.get(gateway.endpoint + "/health", timeout=10).json()["status"] == "ok"
    finally:
        s3.delete_object(Bucket="health", Key="k")
        s3.delete_bucket(Bucket="health")


def test_json_access_log_and_workers(tmp_path, monkeypatch):
    options = backend_options("local", tmp_path)
    create_test_user(options)
    scratch = tmp_path / "scratch"  # where the supervisor makes its shared metrics directory
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    gw = GatewayProcess(options, tmp_path / "gw.log", workers=2,
                        extra_args=["--log-format", "json"]).start()
    try:
        s3 = gw.client()
        s3.create_bucket(Bucket="logged")
        for i in range(20):
            s3.put_object(Bucket="logged", Key=f"k{i}", Body=b"x")
        text = requests.get(gw.endpoint + "/metrics", timeout=10).text
        puts = [ln for ln in text.splitlines()
                if ln.startswith('atonix_s3_requests_total{operation="PutObject",status="200"}')]
        assert sum(float(ln.split()[-1]) for ln in puts) == 20  # merged across both workers
        assert [p.name[:12] for p in scratch.iterdir()] == ["atonix-prom-"]
    finally:
        gw.stop()
    assert list(scratch.iterdir()) == []  # removed when the workers stopped
    records = []
    for line in (tmp_path / "gw.log").read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    access = [r for r in records if r.get("logger") == "atonix.access"]
    puts = [r for r in access if r["operation"] == "PutObject"]
    assert len(puts) == 20
    assert {"status", "ms", "request_id", "user", "bytes_in"} <= set(puts[0])
    assert puts[0]["user"] == "tester"
    assert len({r["request_id"] for r in access}) == len(access)
