"""User and key administration through atonix-cli, against a running gateway."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support.gateway_process import run_cli


def test_user_lifecycle_while_gateway_runs(gateway):
    uid = "u-" + uuid.uuid4().hex[:8]
    key = "AKCLI" + uuid.uuid4().hex[:15].upper()
    secret = "cli-secret-" + uuid.uuid4().hex
    out = json.loads(run_cli(gateway.options, "user", "create", uid, "--display-name", "CLI",
                             "--email", "cli@example.com", "--access-key", key,
                             "--secret", secret).stdout)
    assert out["keys"][0]["access_key"] == key
    client = gateway.client(access_key=key, secret=secret)
    client.list_buckets()  # works at once

    listed = json.loads(run_cli(gateway.options, "user", "list").stdout)
    assert uid in listed and "tester" in listed

    extra = json.loads(run_cli(gateway.options, "user", "key-add", uid).stdout)
    client2 = gateway.client(access_key=extra["access_key"], secret=extra["secret_key"])
    client2.list_buckets()
    shown = json.loads(run_cli(gateway.options, "user", "show", uid).stdout)
    assert {k["access_key"] for k in shown["keys"]} == {key, extra["access_key"]}

    dup = run_cli(gateway.options, "user", "create", uid, "--display-name", "x", check=False)
    assert dup.returncode != 0 and "exists" in dup.stderr
    dup_key = run_cli(gateway.options, "user", "create", uid + "b", "--display-name", "x",
                      "--access-key", key, check=False)
    assert dup_key.returncode != 0

    run_cli(gateway.options, "user", "key-remove", uid, extra["access_key"])
    run_cli(gateway.options, "user", "delete", uid)
    assert uid not in json.loads(run_cli(gateway.options, "user", "list").stdout)
    # The gateway caches key lookups for a few seconds at most.
    import time

    deadline = time.monotonic() + 15
    while True:
        try:
            client.list_buckets()
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidAccessKeyId"
            break
        assert time.monotonic() < deadline, "deleted key still accepted"
        time.sleep(0.5)


def test_admin_credentials_are_stable(tmp_path):
    opts = {"backend": "local", "data_dir": str(tmp_path / "d")}
    first = json.loads(run_cli(opts, "admin-credentials").stdout)
    second = json.loads(run_cli(opts, "admin-credentials").stdout)
    assert first == second and first["user"] == "admin" and len(first["secret_key"]) >= 30


def test_config_file_and_bad_options(tmp_path):
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(f"backend: local\ndata-dir: {tmp_path / 'cfgdata'}\n")
    out = run_cli({"config": str(cfg)}, "admin-credentials")
    assert json.loads(out.stdout)["user"] == "admin"
    assert (tmp_path / "cfgdata").exists()
    bad = run_cli({"backend": "rados"}, "user", "list", check=False)
    assert bad.returncode == 2 and "ceph-conf" in bad.stderr
    cfg.write_text("nonsense_setting: 1\n")
    bad = run_cli({"config": str(cfg)}, "user", "list", check=False)
    assert bad.returncode == 2 and "nonsense_setting" in bad.stderr


@pytest.mark.parametrize("args", [["user"], ["user", "create"], ["bogus"]])
def test_cli_usage_errors(args):
    proc = run_cli({}, *args, check=False)
    assert proc.returncode == 2
