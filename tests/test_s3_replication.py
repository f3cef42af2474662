"""Same-region replication end to end, on both backends: boto3 against a real gateway
whose replication service ships the change log; status headers, delete markers, the
CLI's status, and kill -9 of the gateway with changes not yet shipped."""

from __future__ import annotations

import hashlib
import json
import signal

import pytest
import requests
from botocore.exceptions import ClientError

from engine import frame
from tests.conftest import backend_options
from tests.support.gateway_process import GatewayProcess, create_test_user, run_cli
from tests.support.replication import until, versions
from tests.support.signing import sign_headers

RULES = {
    "Role": "arn:aws:iam::123456789012:role/replication",
    "Rules": [{
        "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        "Destination": {"Bucket": "arn:aws:s3:::copies"},
    }],
}


@pytest.fixture
def deployment(backend_kind, tmp_path):
    options = backend_options(backend_kind, tmp_path)
    config = tmp_path / "gateway.yaml"
    # A short lease: a gateway started after a kill -9 takes the dead one's over soon.
    config.write_text("replication_interval_seconds: 0.1\nreplication_lease_seconds: 3\n")
    options["config"] = str(config)
    create_test_user(options)
    gw = GatewayProcess(options, tmp_path / "gw.log").start()
    s3 = gw.client()
    for name in ("originals", "copies"):
        s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket="originals", ReplicationConfiguration=RULES)
    yield options, gw, tmp_path
    gw.stop()


def drained(options: dict) -> dict | None:
    """``replication status`` once the change log is empty (None before)."""
    status = json.loads(run_cli(options, "replication", "status").stdout)
    return status if status["originals"]["copies"]["backlog_objects"] == 0 else None


def test_writes_appear_in_the_destination_with_their_version_ids(deployment):
    options, gw, _ = deployment
    s3 = gw.client()
    put = s3.put_object(Bucket="originals", Key="docs/a.txt", Body=b"hello " * 5000,
                        Metadata={"team": "blue"})
    copied = until(lambda: versions(s3, "copies"), 20)
    assert copied == [("docs/a.txt", put["VersionId"], put["ETag"], True)]
    head = s3.head_object(Bucket="copies", Key="docs/a.txt")
    assert head["ReplicationStatus"] == "REPLICA" and head["Metadata"] == {"team": "blue"}
    assert s3.get_object(Bucket="copies", Key="docs/a.txt")["Body"].read() == b"hello " * 5000
    assert until(lambda: s3.head_object(Bucket="originals", Key="docs/a.txt").get(
        "ReplicationStatus") == "COMPLETED", 20)
    s3.delete_object(Bucket="originals", Key="docs/a.txt")  # a delete marker, replicated
    assert until(lambda: versions(s3, "copies") == versions(s3, "originals"), 20)
    status = until(lambda: drained(options), 20)  # shipped, then trimmed at the pass's end
    assert status == {"originals": {"copies": {"backlog_objects": 0, "backlog_bytes": 0,
                                               "lag_seconds": 0.0}}}
    verdict = json.loads(run_cli(options, "replication", "verify", "originals").stdout)
    assert verdict["copies"]["differences"] == 0
    s3.put_object(Bucket="copies", Key="stray", Body=b"written to the copy itself")
    unequal = run_cli(options, "replication", "verify", "originals", check=False)
    assert unequal.returncode == 1 and json.loads(unequal.stdout)["copies"]["keys"] == ["stray"]


def test_changes_logged_before_a_kill_are_shipped_after_the_restart(deployment):
    options, gw, tmp_path = deployment
    s3 = gw.client()
    made = [s3.put_object(Bucket="originals", Key=f"k{i % 7}", Body=f"v{i}".encode())
            for i in range(40)]
    gw.stop(signal.SIGKILL)  # whatever was not shipped yet stays in the change log
    again = GatewayProcess(options, tmp_path / "gw2.log").start()
    try:
        s3 = again.client()
        assert until(lambda: versions(s3, "copies") == versions(s3, "originals"), 30)
        ids = {v[1] for v in versions(s3, "copies")}
        assert {m["VersionId"] for m in made} <= ids
        assert until(lambda: drained(options), 20)  # shipped, then trimmed at the pass's end
    finally:
        again.stop()


def test_replica_headers_need_a_signature_that_covers_them(deployment):
    _, gw, _ = deployment
    s3 = gw.client()
    vid = s3.put_object(Bucket="copies", Key="k", Body=b"original")["VersionId"]
    stamp = str((1 << 64) - 1 - int(vid[:16], 16))
    forged = {"x-atonix-replica-version-id": vid, "x-atonix-replica-stamp": stamp,
              "x-atonix-replica-mtime": "1700000000.0"}
    presigned = gw.client().generate_presigned_url(
        "put_object", Params={"Bucket": "copies", "Key": "k"})
    answer = requests.put(presigned, data=b"tampered", headers=forged, timeout=10)
    assert answer.status_code == 403 and b"Replica headers must be signed" in answer.content

    def add(headers):
        def hook(request, **_):
            for name, value in headers.items():
                request.headers[name] = value
        return hook

    signer = gw.client()
    signer.meta.events.register("before-sign.s3.PutObject",
                                add({**forged, "x-atonix-replica-stamp": "12345"}))
    with pytest.raises(ClientError) as refused:
        signer.put_object(Bucket="copies", Key="k", Body=b"tampered")
    assert refused.value.response["Error"]["Code"] == "InvalidArgument"
    assert s3.get_object(Bucket="copies", Key="k", VersionId=vid)["Body"].read() == b"original"


def test_chunk_questions_and_frames_are_checked(deployment):
    """The receiving half of a chunk-wise transfer answers only a shipper's signed
    question, and a frame stream naming a chunk this copy does not hold writes nothing."""
    _, gw, _ = deployment
    s3 = gw.client()
    vid = s3.put_object(Bucket="copies", Key="k", Body=b"original")["VersionId"]
    asked = hashlib.sha256(b"a chunk no one has").digest() * 3
    plain = sign_headers(gw.endpoint, "POST", "/copies/k", asked, "x-atonix-chunks")
    answer = requests.post(f"{gw.endpoint}/copies/k?x-atonix-chunks", data=asked,
                           headers=plain, timeout=10)
    assert answer.status_code == 403
    shipper = sign_headers(gw.endpoint, "POST", "/copies/k", asked, "x-atonix-chunks",
                           headers={"x-atonix-replica-primacy": "0"})
    answer = requests.post(f"{gw.endpoint}/copies/k?x-atonix-chunks", data=asked,
                           headers=shipper, timeout=10)
    assert answer.status_code == 200 and answer.content == b"000"

    stamp = (1 << 64) - 1 - int(vid[:16], 16) + 1000
    other = f"{(1 << 64) - 1 - stamp:016x}{vid[16:]}"
    body = frame(hashlib.sha256(b"not held").digest(), 8, None)
    put = sign_headers(gw.endpoint, "PUT", "/copies/k", body, headers={
        "x-atonix-replica-version-id": other, "x-atonix-replica-stamp": str(stamp),
        "x-atonix-replica-mtime": "1700000000.0", "x-atonix-replica-primacy": "0",
        "x-atonix-replica-encoding": "chunks", "x-atonix-replica-size": "8"})
    answer = requests.put(f"{gw.endpoint}/copies/k", data=body, headers=put, timeout=10)
    assert answer.status_code == 400 and b"<Code>InvalidRequest</Code>" in answer.content
    listed = s3.list_object_versions(Bucket="copies", Prefix="k")["Versions"]
    assert [v["VersionId"] for v in listed] == [vid]
