"""The AWS SDK for JavaScript v3 (client-s3, lib-storage) against a running gateway.

The scenarios live in ``js/scenario.mjs``; its dependencies are pinned by
``js/package-lock.json`` and installed by ``scripts/install.sh --full``
(``npm ci --prefix tests/clients/js``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.conftest import (
    MULTIPART_SIZE,
    PART_SIZE,
    client_env,
    require_tool,
    run_tool,
)

JS_DIR = Path(__file__).parent / "js"


@pytest.fixture
def node(gateway):
    exe = require_tool("node")
    if not (JS_DIR / "node_modules" / "@aws-sdk" / "client-s3").is_dir():
        pytest.fail(f"the JS SDK is not installed: npm ci --prefix {JS_DIR}")

    def run(scenario: str, bucket: str) -> str:
        env = client_env(
            S3_ENDPOINT=gateway.endpoint,
            S3_BUCKET=bucket,
            PART_SIZE=str(PART_SIZE),
            MULTIPART_SIZE=str(MULTIPART_SIZE),
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        return run_tool([exe, "scenario.mjs", scenario], env, cwd=JS_DIR).stdout

    return run


def test_js_sdk_basic(node, bucket_name, boto):
    assert node("basic", bucket_name).strip() == "ok basic"
    assert bucket_name not in [b["Name"] for b in boto.list_buckets()["Buckets"]]


def test_js_sdk_multipart(node, bucket_name, boto):
    assert node("multipart", bucket_name).strip() == "ok multipart"
    head = boto.head_object(Bucket=bucket_name, Key="big/upload.bin")
    assert head["ContentLength"] == MULTIPART_SIZE


def test_js_sdk_copy(node, bucket_name, boto):
    assert node("copy", bucket_name).strip() == "ok copy"
    keys = sorted(o["Key"] for o in boto.list_objects_v2(Bucket=bucket_name)["Contents"])
    assert keys == ["dst/big.bin", "dst/replaced.bin", "dst/small.bin", "src/big.bin",
                    "src/small.bin"]
