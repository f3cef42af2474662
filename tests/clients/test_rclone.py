"""rclone (Debian's package) against a running gateway: mkdir, copy, lsf, check, cat, purge."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.conftest import (
    MULTIPART_SIZE,
    PART_SIZE,
    MiB,
    client_env,
    payload,
    read_tree,
    require_tool,
    run_tool,
    write_tree,
)
from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET

TREE = {
    "a.txt": b"alpha\n",
    "notes/b.txt": b"bravo\n" * 500,
    "notes/deep/c.bin": payload(100 * 1024, "rclone-c"),
    "empty.dat": b"",
}


@pytest.fixture
def rclone(gateway, tmp_path: Path):
    """Run rclone with the remote ``gw:`` configured only through RCLONE_CONFIG_* variables."""
    exe = require_tool("rclone")
    conf = tmp_path / "rclone.conf"
    conf.write_text("")  # empty: the environment is the whole configuration
    env = client_env(
        RCLONE_CONFIG=str(conf),
        RCLONE_CONFIG_GW_TYPE="s3",
        RCLONE_CONFIG_GW_PROVIDER="Other",
        RCLONE_CONFIG_GW_ENDPOINT=gateway.endpoint,
        RCLONE_CONFIG_GW_ACCESS_KEY_ID=TEST_ACCESS_KEY,
        RCLONE_CONFIG_GW_SECRET_ACCESS_KEY=TEST_SECRET,
        RCLONE_CONFIG_GW_REGION="us-east-1",
        RCLONE_CONFIG_GW_FORCE_PATH_STYLE="true",
        # Small parts so a 12 MiB file is a real multipart upload (and copy).
        RCLONE_S3_UPLOAD_CUTOFF=f"{PART_SIZE // MiB}M",
        RCLONE_S3_CHUNK_SIZE=f"{PART_SIZE // MiB}M",
        RCLONE_S3_COPY_CUTOFF=f"{PART_SIZE // MiB}M",
        RCLONE_LOW_LEVEL_RETRIES="1",
        RCLONE_RETRIES="1",
    )

    def run(*args: str, ok=(0,)) -> str:
        return run_tool([exe, *args], env, ok=ok).stdout

    return run


def lines(output: str) -> list[str]:
    return sorted(line for line in output.splitlines() if line)


def test_rclone_tree_lifecycle(rclone, bucket_name, boto, tmp_path: Path):
    src, back = tmp_path / "src", tmp_path / "back"
    write_tree(src, TREE)
    rclone("mkdir", f"gw:{bucket_name}")
    assert f"{bucket_name}/" in lines(rclone("lsf", "gw:"))
    rclone("copy", str(src), f"gw:{bucket_name}/tree")

    # lsf without -R lists one level: a delimiter listing of objects and prefixes.
    assert lines(rclone("lsf", f"gw:{bucket_name}")) == ["tree/"]
    assert lines(rclone("lsf", f"gw:{bucket_name}/tree")) == ["a.txt", "empty.dat", "notes/"]
    assert lines(rclone("lsf", f"gw:{bucket_name}/tree/notes")) == ["b.txt", "deep/"]
    assert lines(rclone("lsf", "-R", "--files-only", f"gw:{bucket_name}/tree")) == sorted(TREE)
    rclone("check", str(src), f"gw:{bucket_name}/tree")  # sizes and MD5 hashes agree

    rclone("copy", f"gw:{bucket_name}/tree", str(back))
    assert read_tree(back) == TREE
    assert rclone("cat", f"gw:{bucket_name}/tree/notes/b.txt").encode() == TREE["notes/b.txt"]

    rclone("delete", f"gw:{bucket_name}/tree/notes")
    assert lines(rclone("lsf", "-R", "--files-only", f"gw:{bucket_name}")) == [
        "tree/a.txt", "tree/empty.dat"]
    rclone("purge", f"gw:{bucket_name}")
    assert f"{bucket_name}/" not in lines(rclone("lsf", "gw:"))


def test_rclone_multipart_upload_download(rclone, bucket_name, boto, tmp_path: Path):
    data = payload(MULTIPART_SIZE, "rclone-multipart")
    up = tmp_path / "up"
    write_tree(up, {"big.bin": data})
    rclone("mkdir", f"gw:{bucket_name}")
    rclone("copyto", str(up / "big.bin"), f"gw:{bucket_name}/big/big.bin")
    head = boto.head_object(Bucket=bucket_name, Key="big/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith(f'-{-(-len(data) // PART_SIZE)}"'), head["ETag"]
    rclone("copyto", f"gw:{bucket_name}/big/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data
    rclone("check", "--download", str(up), f"gw:{bucket_name}/big")


def test_rclone_server_side_copy_and_move(rclone, bucket_name, boto, tmp_path: Path):
    small = payload(64 * 1024 + 5, "rclone-copy-small")
    big = payload(MULTIPART_SIZE, "rclone-copy-big")
    boto.create_bucket(Bucket=bucket_name)
    boto.put_object(Bucket=bucket_name, Key="src/small.bin", Body=small)
    boto.put_object(Bucket=bucket_name, Key="src/big.bin", Body=big)
    rclone("copyto", f"gw:{bucket_name}/src/small.bin", f"gw:{bucket_name}/dst/small.bin")
    # Above --s3-copy-cutoff rclone copies in parts (UploadPartCopy).
    rclone("copyto", f"gw:{bucket_name}/src/big.bin", f"gw:{bucket_name}/dst/big.bin")
    rclone("moveto", f"gw:{bucket_name}/dst/small.bin", f"gw:{bucket_name}/moved.bin")
    keys = sorted(o["Key"] for o in boto.list_objects_v2(Bucket=bucket_name)["Contents"])
    assert keys == ["dst/big.bin", "moved.bin", "src/big.bin", "src/small.bin"]
    assert boto.get_object(Bucket=bucket_name, Key="moved.bin")["Body"].read() == small
    assert boto.get_object(Bucket=bucket_name, Key="dst/big.bin")["Body"].read() == big
