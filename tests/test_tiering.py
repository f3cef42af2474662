"""Tiering end to end, on both backends: a policy file, a gateway and boto3, and
``atonix-cli tier plan | apply | explain | status`` run as processes that live
days ahead (ATONIX_CLOCK_OFFSET), so the policy's transitions come due."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import backend_options, crash_points
from tests.support.gateway_process import GatewayProcess, create_test_user, run_cli
from tests.support.moto import MOTO_KEY, MOTO_SECRET

MiB = 1024 * 1024
DAY = 86400

POLICY = """\
tiers:
  hot: {cost_per_gb_month: 0.023}
  warm: {zstd_level: 9, cost_per_gb_month: 0.0125}
  cold: {endpoint: "%(endpoint)s", bucket: %(bucket)s, flavour: archive,
         access_key: %(key)s, secret_key: %(secret)s, cost_per_gb_month: 0.004}
rules:
  - {name: keep-hot, match: {prefix: "keep/"}, pin: hot}
  - name: age
    transitions: [{days: 30, to: warm}, {days: 365, to: cold}]
"""


@pytest.fixture
def deployment(backend_kind, tmp_path, moto_server):
    options = backend_options(backend_kind, tmp_path)
    policy = tmp_path / "tiering.yaml"
    policy.write_text(POLICY % {"endpoint": moto_server.endpoint, "key": MOTO_KEY,
                                "secret": MOTO_SECRET, "bucket": "cold-" + uuid.uuid4().hex[:8]})
    options["tiering"] = str(policy)
    create_test_user(options)
    gw = GatewayProcess(options, tmp_path / "gw.log").start()
    yield options, gw
    gw.stop()


def tier(options: dict, *args: str, days: float = 0, check: bool = True) -> dict:
    env_offset = {"ATONIX_CLOCK_OFFSET": str(days * DAY)} if days else {}
    old = {k: os.environ.get(k) for k in env_offset}
    os.environ.update(env_offset)
    try:
        proc = run_cli(options, "tier", *args, check=check)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return json.loads(proc.stdout) if proc.stdout.strip() else {"rc": proc.returncode}


def classes(s3, bucket: str) -> dict[str, str]:
    return {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}


def test_a_policy_moves_data_and_every_command_tells_the_truth(deployment):
    options, gw = deployment
    s3 = gw.client()
    s3.create_bucket(Bucket="aging")
    bodies = {"old/a": os.urandom(MiB), "keep/b": os.urandom(MiB), "small": b"tiny"}
    for key, body in bodies.items():
        s3.put_object(Bucket="aging", Key=key, Body=body)
    ia = os.urandom(MiB)
    s3.put_object(Bucket="aging", Key="ia", Body=ia, StorageClass="STANDARD_IA")
    assert s3.head_object(Bucket="aging", Key="ia")["StorageClass"] == "STANDARD_IA"
    assert classes(s3, "aging") == {
        "old/a": "STANDARD", "keep/b": "STANDARD", "small": "STANDARD", "ia": "STANDARD_IA",
    }
    assert tier(options, "plan", "aging")["moves"] == {}  # nothing is 30 days old yet

    plan = tier(options, "plan", "aging", days=40)
    assert plan["moves"] == {"age: hot -> warm": {"objects": 2, "bytes": MiB + 4}}
    assert plan["bytes_after"] == {"hot": MiB, "warm": 2 * MiB + 4}
    assert plan["monthly_cost_after"] < plan["monthly_cost_before"]
    before = tier(options, "explain", "aging", "old/a", days=40)
    assert (before["tier"], before["belongs_on"], before["rule"]) == ("hot", "warm", "age")
    assert before["data"] == {"hot": MiB} and before["moves_now"]
    assert before["next"]["tier"] == "cold"

    applied = tier(options, "apply", "aging", days=40)
    assert applied["moved_objects"] == 2 and applied["moved_bytes"] == MiB
    assert applied["changed_only"] == 1 and applied["failed"] == []
    for key, body in {**bodies, "ia": ia}.items():
        assert s3.get_object(Bucket="aging", Key=key)["Body"].read() == body
    assert classes(s3, "aging") == {
        "old/a": "STANDARD_IA", "keep/b": "STANDARD", "small": "STANDARD_IA",
        "ia": "STANDARD_IA",
    }
    after = tier(options, "explain", "aging", "old/a", days=40)
    assert after["tier"] == "warm" and after["data"] == {"warm": MiB}
    assert not after["moves_now"]
    assert tier(options, "explain", "aging", "keep/b", days=400)["why"] == "pinned to hot"
    assert tier(options, "status", "aging") == {
        "aging": {"hot": {"objects": 1, "bytes": MiB}, "warm": {"objects": 3, "bytes": 2 * MiB + 4}}
    }
    assert tier(options, "plan", "aging", days=40)["moves"] == {}
    # A year on, the policy wants cold (an archive tier on moto_server): archived objects
    # answer InvalidObjectState until a RestoreObject brings them back for some days.
    later = tier(options, "plan", "aging", days=400)
    assert later["moves"]["age: warm -> cold"] == {"objects": 3, "bytes": 2 * MiB + 4}
    assert tier(options, "apply", "aging", days=400)["failed"] == []
    assert classes(s3, "aging")["old/a"] == "GLACIER"
    assert tier(options, "explain", "aging", "old/a", days=400)["data"] == {"cold": MiB}
    for key in ("old/a", "small"):
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="aging", Key=key)
        assert e.value.response["Error"]["Code"] == "InvalidObjectState"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    head = s3.head_object(Bucket="aging", Key="old/a")
    assert head["StorageClass"] == "GLACIER" and "Restore" not in head
    with pytest.raises(ClientError) as e:  # a hot object has nothing to restore
        s3.restore_object(Bucket="aging", Key="keep/b", RestoreRequest={"Days": 1})
    assert e.value.response["Error"]["Code"] == "InvalidObjectState"
    answer = s3.restore_object(Bucket="aging", Key="old/a", RestoreRequest={"Days": 2})
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert 'ongoing-request="false"' in s3.head_object(Bucket="aging", Key="old/a")["Restore"]
    assert s3.get_object(Bucket="aging", Key="old/a")["Body"].read() == bodies["old/a"]
    again = s3.restore_object(Bucket="aging", Key="old/a", RestoreRequest={"Days": 3})
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200

    run_cli(options, "gc", "--grace", "0")
    run_cli(options, "gc", "--grace", "0")
    report = json.loads(run_cli(options, "fsck").stdout)
    assert report["clean"] and report["orphan_manifests"] == [], report


@pytest.mark.parametrize(
    "backend_kind,point",
    crash_points("transition.after_copy", "transition.before_switch", "transition.after_switch"),
    indirect=["backend_kind"],
)
def test_kill_mid_move_leaves_every_object_readable(deployment, point, monkeypatch):
    options, gw = deployment
    s3 = gw.client()
    s3.create_bucket(Bucket="crash")
    bodies = {f"k{i}": os.urandom(MiB + i) for i in range(3)}
    for key, body in bodies.items():
        s3.put_object(Bucket="crash", Key=key, Body=body)
    monkeypatch.setenv("ATONIX_FAILPOINTS", f"{point}=exit@1")  # dies on the second move
    killed = tier(options, "apply", "crash", days=40, check=False)
    assert killed == {"rc": 137}
    monkeypatch.delenv("ATONIX_FAILPOINTS")
    for key, body in bodies.items():
        assert s3.get_object(Bucket="crash", Key=key)["Body"].read() == body
    # The lease of the killed mover lapses; the next apply finishes the job.
    resumed = tier(options, "apply", "crash", days=40 + 1)
    assert resumed["failed"] == []
    assert set(classes(s3, "crash").values()) == {"STANDARD_IA"}
    for key, body in bodies.items():
        assert s3.get_object(Bucket="crash", Key=key)["Body"].read() == body
    run_cli(options, "fsck", "--repair", "--stale-after", "0")
    for _ in range(3):
        run_cli(options, "gc", "--grace", "0")
    report = json.loads(run_cli(options, "fsck").stdout)
    assert report["clean"] and report["orphan_manifests"] == [], report
    assert report["orphans"] == 0


def test_bad_policies_and_classes_are_refused(deployment, tmp_path):
    options, gw = deployment
    s3 = gw.client()
    s3.create_bucket(Bucket="refuse")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="refuse", Key="k", Body=b"x" * 100, StorageClass="GLACIER_IR")
    assert e.value.response["Error"]["Code"] == "InvalidStorageClass"
    assert "Contents" not in s3.list_objects_v2(Bucket="refuse")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers:\n  hot: {}\nrules:\n  - {name: a, pin: tepid}\n")
    proc = run_cli({**options, "tiering": str(bad)}, "tier", "plan", check=False)
    assert proc.returncode == 2
    assert f"{bad}:4: rules[0].pin: unknown tier 'tepid'" in proc.stderr
    start = GatewayProcess({**options, "tiering": str(bad)}, tmp_path / "bad.log")
    with pytest.raises(RuntimeError, match="unknown tier 'tepid'"):
        start.start(timeout=20)  # a broken policy: the gateway does not start at all


def test_multipart_and_copy_write_to_the_tier_of_their_class(deployment):
    options, gw = deployment
    s3 = gw.client()
    s3.create_bucket(Bucket="classes")
    parts = [os.urandom(5 * MiB), os.urandom(MiB)]
    up = s3.create_multipart_upload(Bucket="classes", Key="mp", StorageClass="STANDARD_IA")
    etags = [
        s3.upload_part(Bucket="classes", Key="mp", UploadId=up["UploadId"], PartNumber=n + 1,
                       Body=body)["ETag"]
        for n, body in enumerate(parts)
    ]
    s3.complete_multipart_upload(
        Bucket="classes", Key="mp", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]},
    )
    assert s3.head_object(Bucket="classes", Key="mp")["StorageClass"] == "STANDARD_IA"
    assert tier(options, "explain", "classes", "mp")["data"] == {"warm": 6 * MiB}
    # A copy takes the class its request asks for (STANDARD when none), not the source's.
    s3.copy_object(Bucket="classes", Key="plain", CopySource={"Bucket": "classes", "Key": "mp"})
    s3.copy_object(Bucket="classes", Key="ia", CopySource={"Bucket": "classes", "Key": "mp"},
                   StorageClass="STANDARD_IA")
    assert classes(s3, "classes") == {"ia": "STANDARD_IA", "mp": "STANDARD_IA", "plain": "STANDARD"}
    assert tier(options, "explain", "classes", "plain")["data"] == {"hot": 6 * MiB}
    # The IA copy's chunks are the hot copy's: shared, they stay in the hotter tier.
    assert tier(options, "explain", "classes", "ia")["data"] == {"hot": 6 * MiB}
    whole = b"".join(parts)
    for key in ("mp", "plain", "ia"):
        assert s3.get_object(Bucket="classes", Key=key)["Body"].read() == whole


def test_the_gateways_move_data_by_themselves(deployment, tmp_path, monkeypatch):
    options, gw = deployment
    s3 = gw.client()
    s3.create_bucket(Bucket="auto")
    bodies = {"a": os.urandom(MiB), "b": os.urandom(2 * MiB)}
    for key, body in bodies.items():
        s3.put_object(Bucket="auto", Key=key, Body=body)
    gw.stop()
    # The same deployment 40 days on, with the mover passing every half second (its
    # clock is ahead, so signed requests from here would be refused as skewed).
    config = tmp_path / "mover.yaml"
    config.write_text("tier_interval_seconds: 0.5\n")
    monkeypatch.setenv("ATONIX_CLOCK_OFFSET", str(40 * DAY))
    later = GatewayProcess(options, tmp_path / "later.log", extra_args=["--config", str(config)])
    later.start()
    try:
        deadline = time.monotonic() + 60
        while "warm" not in tier(options, "status", "auto")["auto"]:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        status = tier(options, "status", "auto")
        assert status == {"auto": {"warm": {"objects": 2, "bytes": 3 * MiB}}}
        samples = dict(
            line.rsplit(" ", 1)
            for line in requests.get(later.endpoint + "/metrics", timeout=10).text.splitlines()
            if line.startswith("atonix_tier_move")
        )
        assert float(samples['atonix_tier_moves_total{from="hot",to="warm"}']) == 2
        assert float(samples["atonix_tier_move_bytes_total"]) == 3 * MiB
    finally:
        later.stop()
    monkeypatch.delenv("ATONIX_CLOCK_OFFSET")
    gw.start()
    s3 = gw.client()
    assert classes(s3, "auto") == {"a": "STANDARD_IA", "b": "STANDARD_IA"}
    for key, body in bodies.items():
        assert s3.get_object(Bucket="auto", Key=key)["Body"].read() == body


LIFECYCLE = {
    "Rules": [
        {
            "ID": "age-logs",
            "Filter": {"Prefix": "logs/"},
            "Status": "Enabled",
            "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
            "Expiration": {"Days": 90},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
        },
        {
            "ID": "uploads",
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
    ]
}


def test_lifecycle_configurations_through_boto3_run_on_the_mover(deployment):
    options, gw = deployment
    s3 = gw.client()
    s3.create_bucket(Bucket="life")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket="life")
    assert e.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    glacier = {"Rules": [{"ID": "g", "Filter": {}, "Status": "Enabled",
                          "Transitions": [{"Days": 1, "StorageClass": "GLACIER_IR"}]}]}
    with pytest.raises(ClientError) as e:  # no instant cold tier: no rule that could never run
        s3.put_bucket_lifecycle_configuration(Bucket="life", LifecycleConfiguration=glacier)
    assert e.value.response["Error"]["Code"] == "InvalidStorageClass"
    s3.put_bucket_lifecycle_configuration(Bucket="life", LifecycleConfiguration=LIFECYCLE)
    got = s3.get_bucket_lifecycle_configuration(Bucket="life")["Rules"]
    assert [r["ID"] for r in got] == ["age-logs", "uploads"]
    assert got[0]["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert got[1]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}

    s3.put_bucket_versioning(Bucket="life", VersioningConfiguration={"Status": "Enabled"})
    old, new, other = os.urandom(MiB), os.urandom(MiB), os.urandom(MiB)
    s3.put_object(Bucket="life", Key="logs/a", Body=old)
    s3.put_object(Bucket="life", Key="logs/a", Body=new)
    s3.put_object(Bucket="life", Key="data/b", Body=other)
    upload = s3.create_multipart_upload(Bucket="life", Key="big")["UploadId"]

    plan = tier(options, "plan", "life", days=40)
    assert plan["moves"] == {  # the bucket's rule for logs/, the policy file's for the rest
        "lifecycle age-logs: hot -> warm": {"objects": 1, "bytes": MiB},
        "age: hot -> warm": {"objects": 1, "bytes": MiB},
    }
    assert plan["expirations"] == {"lifecycle age-logs: expire": {"objects": 1, "bytes": MiB}}
    applied = tier(options, "apply", "life", days=40)
    assert (applied["moved_objects"], applied["expired"], applied["aborted_uploads"]) == (2, 1, 1)
    assert applied["failed"] == []
    versions = s3.list_object_versions(Bucket="life", Prefix="logs/").get("Versions", [])
    assert [(v["IsLatest"], v["StorageClass"]) for v in versions] == [(True, "STANDARD_IA")]
    assert s3.get_object(Bucket="life", Key="logs/a")["Body"].read() == new
    assert s3.head_object(Bucket="life", Key="data/b")["StorageClass"] == "STANDARD_IA"
    assert s3.list_multipart_uploads(Bucket="life").get("Uploads", []) == []
    with pytest.raises(ClientError):
        s3.abort_multipart_upload(Bucket="life", Key="big", UploadId=upload)

    applied = tier(options, "apply", "life", days=100)  # the current version expires too
    assert applied["expired"] == 1
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="life", Key="logs/a")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"  # a delete marker, as on AWS
    assert s3.get_object(Bucket="life", Key="data/b")["Body"].read() == other

    s3.delete_bucket_lifecycle(Bucket="life")
    with pytest.raises(ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket="life")


def test_glacier_writes_need_a_restore_to_be_read_or_copied(deployment):
    options, gw = deployment
    s3 = gw.client()
    s3.create_bucket(Bucket="vault")
    body = os.urandom(3 * MiB)
    s3.put_object(Bucket="vault", Key="deep", Body=body, StorageClass="DEEP_ARCHIVE")
    assert s3.head_object(Bucket="vault", Key="deep")["StorageClass"] == "DEEP_ARCHIVE"
    assert tier(options, "explain", "vault", "deep")["data"] == {"cold": 3 * MiB}
    refusals = [
        lambda: s3.get_object(Bucket="vault", Key="deep"),
        lambda: s3.get_object(Bucket="vault", Key="deep", Range="bytes=0-9"),
        lambda: s3.copy_object(Bucket="vault", Key="copy", CopySource="vault/deep"),
    ]
    for call in refusals:
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "InvalidObjectState"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="vault")["Contents"]] == ["deep"]
    with pytest.raises(ClientError) as e:
        s3.restore_object(Bucket="vault", Key="deep", RestoreRequest={})
    assert e.value.response["Error"]["Code"] == "MalformedXML"
    s3.restore_object(Bucket="vault", Key="deep",
                      RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}})
    assert s3.get_object(Bucket="vault", Key="deep", Range="bytes=5-9")["Body"].read() == body[5:10]
    s3.copy_object(Bucket="vault", Key="copy", CopySource="vault/deep")
    copied = s3.head_object(Bucket="vault", Key="copy")
    assert "StorageClass" not in copied and "Restore" not in copied  # STANDARD, its own
    assert s3.get_object(Bucket="vault", Key="copy")["Body"].read() == body
    # Two days on, the restore has expired: the mover drops the copy, reads are refused.
    assert tier(options, "apply", "vault", days=2)["failed"] == []
    assert "Restore" not in s3.head_object(Bucket="vault", Key="deep")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="vault", Key="deep")
    assert e.value.response["Error"]["Code"] == "InvalidObjectState"
    run_cli(options, "gc", "--grace", "0")
    run_cli(options, "gc", "--grace", "0")
    report = json.loads(run_cli(options, "fsck").stdout)
    assert report["clean"] and report["orphan_manifests"] == [], report


def test_an_edited_policy_is_reloaded_and_a_broken_one_reported(backend_kind, tmp_path):
    policy, gw = _reloading_gateway(backend_options(backend_kind, tmp_path), tmp_path)
    try:
        s3 = gw.client()
        s3.create_bucket(Bucket="reload")
        s3.put_object(Bucket="reload", Key="ia", Body=b"x" * 100_000, StorageClass="STANDARD_IA")
        policy.write_text("tiers:\n  hot: {}\nrules:\n  - {name: a, pin: tepid}\n")
        health = _health_until(gw, lambda h: h["status"] == "degraded")
        assert f"{policy}:4: rules[0].pin: unknown tier 'tepid'" in health["tiering"]
        # The last good policy stays in force: warm is still served.
        s3.put_object(Bucket="reload", Key="ia2", Body=b"y" * 100_000, StorageClass="STANDARD_IA")
        policy.write_text("tiers:\n  hot: {}\n")  # warm dropped: new IA writes are refused
        _health_until(gw, lambda h: h["status"] == "ok")
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket="reload", Key="ia3", Body=b"z" * 100_000,
                          StorageClass="STANDARD_IA")
        assert e.value.response["Error"]["Code"] == "InvalidStorageClass"
        assert s3.get_object(Bucket="reload", Key="ia")["Body"].read() == b"x" * 100_000
    finally:
        gw.stop()


@pytest.mark.parametrize("kind", ["local", "rados-ec"])
def test_a_warm_tier_turned_erasure_coded_keeps_every_object(kind, tmp_path, request):
    """Through a gateway and boto3: objects written to a replicated warm tier stay
    readable once the policy makes it erasure-coded, new ones go to the coded pool,
    and the collector and fsck agree with both."""
    options = backend_options("local", tmp_path)
    if kind == "rados-ec":
        options = {"backend": "rados", "ceph_conf": request.getfixturevalue("three_osd_ceph"),
                   "pool_prefix": "t" + uuid.uuid4().hex[:10]}
    policy, gw = _reloading_gateway(options, tmp_path)
    before, after = os.urandom(3 * MiB), os.urandom(3 * MiB)
    try:
        s3 = gw.client()
        s3.create_bucket(Bucket="coded")
        s3.put_object(Bucket="coded", Key="before", Body=before, StorageClass="STANDARD_IA")
        policy.write_text("tiers:\n  hot: {}\n  warm:\n    zstd_level: 9\n"
                          "    replicated: false\n    erasure: {k: 2, m: 1, failure_domain: osd}\n")
        time.sleep(1.0)  # the watcher looks every 0.2 s
        assert _health_until(gw, lambda h: h["status"] == "ok")["status"] == "ok"
        s3.put_object(Bucket="coded", Key="after", Body=after, StorageClass="STANDARD_IA")
        assert s3.get_object(Bucket="coded", Key="before")["Body"].read() == before
        got = s3.get_object(Bucket="coded", Key="after")
        assert got["Body"].read() == after and got["StorageClass"] == "STANDARD_IA"
        explained = tier(options, "explain", "coded", "after")
        assert explained["data"] == {"warm": len(after)}, explained
        if kind == "rados-ec":  # the new object's packs are in the erasure-coded pool
            listed = subprocess.run(
                ["rados", "-c", options["ceph_conf"], "-p",
                 f"{options['pool_prefix']}.chunks.warm.ec", "ls"],
                capture_output=True, text=True, timeout=30, check=True).stdout.split()
            assert listed and all(name.startswith("k.") for name in listed), listed
        s3.delete_object(Bucket="coded", Key="before")
        run_cli(options, "gc", "--grace", "0")
        report = json.loads(run_cli(options, "fsck").stdout)
        assert report["clean"], report
        assert s3.get_object(Bucket="coded", Key="after")["Body"].read() == after
    finally:
        gw.stop()


def _reloading_gateway(options: dict, tmp_path) -> tuple:
    """A gateway whose policy (hot, replicated warm) is re-read every 0.2 s."""
    policy = tmp_path / "tiering.yaml"
    policy.write_text("tiers:\n  hot: {}\n  warm: {zstd_level: 9}\n")
    config = tmp_path / "gateway.yaml"
    config.write_text("tier_reload_seconds: 0.2\n")
    options.update(tiering=str(policy), config=str(config))
    create_test_user(options)
    return policy, GatewayProcess(options, tmp_path / "gw.log").start()


def _health_until(gw: GatewayProcess, done, timeout: float = 30.0) -> dict:
    """/health once ``done`` holds for it (the watcher looks every 0.2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        health = requests.get(gw.endpoint + "/health", timeout=5).json()
        if done(health) or time.monotonic() > deadline:
            return health
        time.sleep(0.1)
