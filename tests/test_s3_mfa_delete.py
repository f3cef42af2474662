"""MFA delete through boto3: enabling it needs the owner's TOTP code, and then so does every
permanent delete of a version and every change of the versioning state; codes are single-use.
Devices are made with ``atonix-cli user mfa-create`` (as ``radosgw-admin mfa create``)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from engine import totp_code
from engine.mfa import match_step, parse_mfa_header
from tests.support.gateway_process import run_cli


def _device(gateway) -> tuple[str, bytes]:
    serial = "dev-" + uuid.uuid4().hex[:8]
    out = json.loads(run_cli(gateway.options, "user", "mfa-create", "tester",
                             "--serial", serial).stdout)
    assert out["otpauth"].startswith("otpauth://totp/")
    return serial, base64.b32decode(out["seed"])


def _mfa(gateway) -> str:
    """A fresh device's current code: every MFA request below uses its own device, so no
    test waits for the next 30-second step (a code is accepted once)."""
    serial, seed = _device(gateway)
    return f"{serial} {totp_code(seed, int(time.time() // 30))}"


def _denied(call) -> ClientError:
    with pytest.raises(ClientError) as exc:
        call()
    assert exc.value.response["Error"]["Code"] == "AccessDenied"
    return exc.value


def test_mfa_delete_guards_version_deletes_and_versioning_changes(gateway, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # Turning MFA delete on needs a code.
    _denied(lambda: s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}))
    _denied(lambda: s3.put_bucket_versioning(
        Bucket=bucket, MFA="no-such-device 123456",
        VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"}))
    code = _mfa(gateway)
    s3.put_bucket_versioning(Bucket=bucket, MFA=code, VersioningConfiguration={
        "Status": "Enabled", "MFADelete": "Enabled"})
    try:
        _mfa_delete_on(gateway, s3, bucket)
    finally:  # the bucket fixture removes versions: only without MFA delete
        s3.put_bucket_versioning(Bucket=bucket, MFA=_mfa(gateway), VersioningConfiguration={
            "Status": "Enabled", "MFADelete": "Disabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["MFADelete"] == "Disabled"
    v3 = s3.put_object(Bucket=bucket, Key="k", Body=b"three")["VersionId"]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v3)


def _mfa_delete_on(gateway, s3, bucket: str) -> None:
    got = s3.get_bucket_versioning(Bucket=bucket)
    assert (got["Status"], got["MFADelete"]) == ("Enabled", "Enabled")

    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    # A plain DELETE (a delete marker) needs nothing; removing a version does.
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    _denied(lambda: s3.delete_object(Bucket=bucket, Key="k", VersionId=v1))
    serial, seed = _device(gateway)
    good = f"{serial} {totp_code(seed, int(time.time() // 30))}"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1, MFA=good)
    # The same code again: refused (single use), and nothing is removed.
    _denied(lambda: s3.delete_object(Bucket=bucket, Key="k", VersionId=v2, MFA=good))
    ids = {v["VersionId"] for v in s3.list_object_versions(Bucket=bucket).get("Versions", [])}
    assert ids == {v2}

    # DeleteObjects naming a version without a code fails as a whole (as on AWS) ...
    s3.put_object(Bucket=bucket, Key="other", Body=b"x")
    _denied(lambda: s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "k", "VersionId": v2}, {"Key": "other"}]}))
    assert s3.get_object(Bucket=bucket, Key="other")["Body"].read() == b"x"
    # ... and so does any request with a bad code, versions named or not.
    _denied(lambda: s3.delete_objects(Bucket=bucket, MFA=f"{serial} 0000000", Delete={
        "Objects": [{"Key": "other"}]}))
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "other"}]})
    assert [d["Key"] for d in res["Deleted"]] == ["other"]
    res = s3.delete_objects(Bucket=bucket, MFA=_mfa(gateway), Delete={"Objects": [
        {"Key": "k", "VersionId": v2}, {"Key": "k", "VersionId": marker}]})
    assert not res.get("Errors") and len(res["Deleted"]) == 2

    # Suspending versioning while MFA delete is on needs a code too.
    _denied(lambda: s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}))
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_mfa_devices_from_the_cli(gateway):
    serial, _ = _device(gateway)
    assert serial in json.loads(run_cli(gateway.options, "user", "mfa-list", "tester").stdout)
    run_cli(gateway.options, "user", "mfa-remove", "tester", serial)
    assert serial not in json.loads(run_cli(gateway.options, "user", "mfa-list",
                                            "tester").stdout)
    again = run_cli(gateway.options, "user", "mfa-create", "tester", "--serial", serial,
                    check=False)
    assert again.returncode == 0, "removed: the serial may be used again"
    dup = run_cli(gateway.options, "user", "mfa-create", "tester", "--serial", serial,
                  check=False)
    assert dup.returncode == 2 and "already has" in dup.stderr
    bad = run_cli(gateway.options, "user", "mfa-create", "tester", "--serial", "x",
                  "--seed", "not base32!", check=False)
    assert bad.returncode == 2 and "base32" in bad.stderr
    nobody = run_cli(gateway.options, "user", "mfa-create", "nobody-" + uuid.uuid4().hex[:6],
                     "--serial", "x", check=False)
    assert nobody.returncode != 0


def test_totp_matches_rfc_6238_and_windows():
    seed = b"12345678901234567890"
    # RFC 6238 appendix B (SHA-1), the last 6 of the 8 digits given there.
    assert totp_code(seed, 59 // 30) == "287082"
    assert totp_code(seed, 1111111109 // 30) == "081804"
    assert totp_code(seed, 1234567890 // 30) == "005924"
    now = 1234567890.0
    step = int(now // 30)
    assert match_step(seed, totp_code(seed, step - 1), now, 0) == step - 1
    assert match_step(seed, totp_code(seed, step + 2), now, 0) is None
    assert match_step(seed, totp_code(seed, step), now, step) is None, "used already"
    assert match_step(seed, "12345", now, 0) is None
    assert parse_mfa_header("arn:aws:iam::1:mfa/dev 123456") == ("arn:aws:iam::1:mfa/dev",
                                                                  "123456")
