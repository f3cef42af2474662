"""The AWS CLI against a running gateway: aws s3 mb / cp / ls / rm, small and multipart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET

AWS = [sys.executable, "-m", "awscli"]


def aws(gateway, *args: str, ok=(0,)) -> str:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    env.pop("AWS_CA_BUNDLE", None)
    proc = subprocess.run(
        [*AWS, "--endpoint-url", gateway.endpoint, *args],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode in ok, proc.stderr
    return proc.stdout


def test_aws_s3_mb_cp_ls_rm(gateway, tmp_path: Path):
    name = "cli-" + uuid.uuid4().hex[:12]
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello from the aws cli\n")
    aws(gateway, "s3", "mb", f"s3://{name}")
    aws(gateway, "s3", "cp", str(small), f"s3://{name}/docs/small.txt")
    listing = aws(gateway, "s3", "ls", f"s3://{name}/docs/")
    assert "small.txt" in listing and str(small.stat().st_size) in listing
    assert name in aws(gateway, "s3", "ls")
    back = tmp_path / "back.txt"
    aws(gateway, "s3", "cp", f"s3://{name}/docs/small.txt", str(back))
    assert back.read_bytes() == small.read_bytes()
    aws(gateway, "s3", "rm", f"s3://{name}/docs/small.txt")
    # aws s3 ls exits 1 when nothing matches.
    assert "small.txt" not in aws(gateway, "s3", "ls", f"s3://{name}/docs/", ok=(1,))
    aws(gateway, "s3", "rb", f"s3://{name}")
    assert name not in aws(gateway, "s3", "ls")


def test_aws_cli_versioning(gateway, tmp_path: Path):
    """put-bucket-versioning, versions of one key, and reading an old one with s3api."""
    name = "cliv-" + uuid.uuid4().hex[:12]
    aws(gateway, "s3", "mb", f"s3://{name}")
    aws(gateway, "s3api", "put-bucket-versioning", "--bucket", name,
        "--versioning-configuration", "Status=Enabled")
    status = json.loads(aws(gateway, "s3api", "get-bucket-versioning", "--bucket", name))
    assert status["Status"] == "Enabled"
    body = tmp_path / "f"
    ids = []
    for text in (b"one", b"two"):
        body.write_bytes(text)
        out = aws(gateway, "s3api", "put-object", "--bucket", name, "--key", "f",
                  "--body", str(body))
        ids.append(json.loads(out)["VersionId"])
    aws(gateway, "s3", "rm", f"s3://{name}/f")  # a delete marker
    listing = json.loads(aws(gateway, "s3api", "list-object-versions", "--bucket", name))
    assert [v["VersionId"] for v in listing["Versions"]] == ids[::-1]
    assert len(listing["DeleteMarkers"]) == 1 and listing["DeleteMarkers"][0]["IsLatest"]
    back = tmp_path / "back"
    aws(gateway, "s3api", "get-object", "--bucket", name, "--key", "f",
        "--version-id", ids[0], str(back))
    assert back.read_bytes() == b"one"
    for item in listing["Versions"] + listing["DeleteMarkers"]:
        aws(gateway, "s3api", "delete-object", "--bucket", name, "--key", "f",
            "--version-id", item["VersionId"])
    aws(gateway, "s3", "rb", f"s3://{name}")
