"""s3cmd (Debian's package) against a running gateway: mb, put, ls, get, cp, del, rb."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.clients.conftest import (
    MULTIPART_SIZE,
    PART_SIZE,
    MiB,
    client_env,
    payload,
    require_tool,
    run_tool,
)
from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET


@pytest.fixture
def s3cmd(gateway, tmp_path: Path):
    """Run s3cmd with a config file of its own (path-style, SigV4, plain http)."""
    exe = require_tool("s3cmd")
    host = urlsplit(gateway.endpoint).netloc
    cfg = tmp_path / "s3cmd.cfg"
    cfg.write_text(
        "[default]\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"  # no %(bucket)s: path-style requests
        f"access_key = {TEST_ACCESS_KEY}\n"
        f"secret_key = {TEST_SECRET}\n"
        "use_https = False\n"
        "signature_v2 = False\n"
        "bucket_location = us-east-1\n"
        f"multipart_chunk_size_mb = {PART_SIZE // MiB}\n"
        "progress_meter = False\n"
    )

    def run(*args: str, ok=(0,)) -> str:
        env = client_env(HOME=str(tmp_path))
        return run_tool([exe, "-c", str(cfg), *args], env, ok=ok).stdout

    return run


def listed_urls(output: str) -> list[str]:
    """The s3:// column of ``s3cmd ls`` (``DIR`` lines and object lines alike)."""
    return [word for line in output.splitlines() for word in line.split() if "s3://" in word]


def test_s3cmd_basic_lifecycle(s3cmd, bucket_name, boto, tmp_path: Path):
    files = {"docs/a.txt": b"alpha\n", "docs/sub/b.txt": b"bravo\n" * 100, "top.bin": payload(
        70 * 1024, "s3cmd-top")}
    s3cmd("mb", f"s3://{bucket_name}")
    assert f"s3://{bucket_name}" in s3cmd("ls")
    for key, data in files.items():
        src = tmp_path / key.replace("/", "_")
        src.write_bytes(data)
        s3cmd("put", str(src), f"s3://{bucket_name}/{key}")

    root = listed_urls(s3cmd("ls", f"s3://{bucket_name}/"))
    assert sorted(root) == [f"s3://{bucket_name}/docs/", f"s3://{bucket_name}/top.bin"]
    docs = listed_urls(s3cmd("ls", f"s3://{bucket_name}/docs/"))
    assert sorted(docs) == [f"s3://{bucket_name}/docs/a.txt", f"s3://{bucket_name}/docs/sub/"]
    everything = listed_urls(s3cmd("ls", "--recursive", f"s3://{bucket_name}"))
    assert sorted(everything) == sorted(f"s3://{bucket_name}/{k}" for k in files)

    for key, data in files.items():
        dst = tmp_path / ("back-" + key.replace("/", "_"))
        s3cmd("get", f"s3://{bucket_name}/{key}", str(dst))
        assert dst.read_bytes() == data, key
    info = s3cmd("info", f"s3://{bucket_name}/top.bin")
    assert str(len(files["top.bin"])) in info

    s3cmd("del", f"s3://{bucket_name}/top.bin")
    s3cmd("del", "--recursive", f"s3://{bucket_name}/docs/")
    assert boto.list_objects_v2(Bucket=bucket_name)["KeyCount"] == 0
    s3cmd("rb", f"s3://{bucket_name}")
    assert f"s3://{bucket_name}" not in s3cmd("ls")


def test_s3cmd_multipart_put_get(s3cmd, bucket_name, boto, tmp_path: Path):
    data = payload(MULTIPART_SIZE, "s3cmd-multipart")
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    s3cmd("mb", f"s3://{bucket_name}")
    s3cmd("put", str(src), f"s3://{bucket_name}/big/big.bin")
    head = boto.head_object(Bucket=bucket_name, Key="big/big.bin")
    assert head["ContentLength"] == len(data)
    parts = -(-len(data) // PART_SIZE)
    assert head["ETag"].endswith(f'-{parts}"'), head["ETag"]  # really went multipart
    back = tmp_path / "back.bin"
    s3cmd("get", f"s3://{bucket_name}/big/big.bin", str(back))
    assert back.read_bytes() == data
    s3cmd("del", f"s3://{bucket_name}/big/big.bin")
    s3cmd("rb", f"s3://{bucket_name}")


def test_s3cmd_copy_and_move(s3cmd, bucket_name, boto, tmp_path: Path):
    data = payload(200 * 1024, "s3cmd-copy")
    src = tmp_path / "orig.bin"
    src.write_bytes(data)
    s3cmd("mb", f"s3://{bucket_name}")
    s3cmd("put", str(src), f"s3://{bucket_name}/orig.bin")
    s3cmd("cp", f"s3://{bucket_name}/orig.bin", f"s3://{bucket_name}/copies/copy.bin")
    s3cmd("mv", f"s3://{bucket_name}/copies/copy.bin", f"s3://{bucket_name}/moved.bin")
    keys = sorted(o["Key"] for o in boto.list_objects_v2(Bucket=bucket_name)["Contents"])
    assert keys == ["moved.bin", "orig.bin"]
    back = tmp_path / "back.bin"
    s3cmd("get", f"s3://{bucket_name}/moved.bin", str(back))
    assert back.read_bytes() == data
