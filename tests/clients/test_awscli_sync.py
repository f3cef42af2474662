"""The AWS CLI beyond the basics: sync of a directory tree, multipart cp, s3api calls.

``tests/test_awscli.py`` covers mb/cp/ls/rm of one small file; this module covers what
people do next: sync a tree both ways (with --delete), multipart-sized files through
``aws s3 cp`` (and a few ``aws s3api`` calls), and s3-to-s3 copies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.clients.conftest import (
    MULTIPART_SIZE,
    PART_SIZE,
    MiB,
    client_env,
    payload,
    read_tree,
    run_tool,
    write_tree,
)

TREE = {
    "index.html": b"<h1>hello</h1>\n",
    "css/site.css": b"body { color: black }\n" * 50,
    "img/logo.bin": payload(120 * 1024, "awscli-logo"),
    "img/icons/a.bin": payload(3000, "awscli-icon-a"),
    "img/icons/b.bin": payload(70 * 1024, "awscli-icon-b"),
    "docs/readme.txt": b"read me\n",
}


@pytest.fixture
def aws(gateway, tmp_path: Path):
    """Run ``python -m awscli`` with 5 MiB multipart threshold and part size."""
    try:
        import awscli  # noqa: F401
    except ImportError:
        pytest.fail("awscli is not installed: pip install -e '.[test]'")
    config = tmp_path / "aws-config"
    config.write_text(
        "[default]\n"
        "region = us-east-1\n"
        "s3 =\n"
        f"  multipart_threshold = {PART_SIZE // MiB}MB\n"
        f"  multipart_chunksize = {PART_SIZE // MiB}MB\n"
        "  addressing_style = path\n"
        "retry_mode = standard\n"
        "max_attempts = 1\n"
    )
    env = client_env(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE="/dev/null")

    def run(*args: str, ok=(0,)) -> str:
        cmd = [sys.executable, "-m", "awscli", "--endpoint-url", gateway.endpoint, *args]
        return run_tool(cmd, env, ok=ok).stdout

    return run


def ls_names(output: str) -> list[str]:
    """Last column of ``aws s3 ls``: ``PRE name/`` lines and object lines alike."""
    return sorted(line.split()[-1] for line in output.splitlines() if line.strip())


def keys_of(boto, bucket: str, prefix: str = "") -> list[str]:
    """Checked with boto3: every CLI start costs a second or two of interpreter time."""
    listing = boto.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_awscli_sync_tree_both_ways(aws, bucket_name, boto, tmp_path: Path):
    src, back = tmp_path / "site", tmp_path / "back"
    write_tree(src, TREE)
    aws("s3", "mb", f"s3://{bucket_name}")
    out = aws("s3", "sync", str(src), f"s3://{bucket_name}/site")
    assert out.count("upload:") == len(TREE)
    assert keys_of(boto, bucket_name) == sorted(f"site/{k}" for k in TREE)

    assert ls_names(aws("s3", "ls", f"s3://{bucket_name}/site/")) == [
        "css/", "docs/", "img/", "index.html"]
    listing = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket_name,
                             "--prefix", "site/img/", "--delimiter", "/"))
    assert [p["Prefix"] for p in listing["CommonPrefixes"]] == ["site/img/icons/"]
    assert [o["Key"] for o in listing["Contents"]] == ["site/img/logo.bin"]

    # A second sync finds nothing to do: sizes and times from the listing match.
    assert "upload:" not in aws("s3", "sync", str(src), f"s3://{bucket_name}/site")

    aws("s3", "sync", f"s3://{bucket_name}/site", str(back))
    assert read_tree(back) == TREE

    # Change one file, drop another: sync --delete mirrors exactly that.
    (src / "css/site.css").write_bytes(b"body { color: blue }\n")
    (src / "docs/readme.txt").unlink()
    out = aws("s3", "sync", "--delete", str(src), f"s3://{bucket_name}/site")
    assert "upload:" in out and "site/css/site.css" in out
    assert "delete:" in out and "site/docs/readme.txt" in out
    assert keys_of(boto, bucket_name) == sorted(
        f"site/{k}" for k in TREE if k != "docs/readme.txt")
    aws("s3", "sync", "--delete", f"s3://{bucket_name}/site", str(back))
    assert read_tree(back) == read_tree(src)

    aws("s3", "rm", "--recursive", f"s3://{bucket_name}/site")
    assert keys_of(boto, bucket_name) == []
    aws("s3", "rb", f"s3://{bucket_name}")


def test_awscli_multipart_cp_and_s3api(aws, bucket_name, boto, tmp_path: Path):
    data = payload(MULTIPART_SIZE, "awscli-multipart")
    big = tmp_path / "big.bin"
    big.write_bytes(data)
    aws("s3", "mb", f"s3://{bucket_name}")
    aws("s3", "cp", str(big), f"s3://{bucket_name}/big/cp.bin")
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket_name, "--key", "big/cp.bin"))
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith(f'-{-(-len(data) // PART_SIZE)}"'), head["ETag"]
    aws("s3", "cp", f"s3://{bucket_name}/big/cp.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data
    ranged = tmp_path / "ranged.bin"
    aws("s3api", "get-object", "--bucket", bucket_name, "--key", "big/cp.bin",
        "--range", f"bytes={PART_SIZE - 5}-{PART_SIZE + 4}", str(ranged))
    assert ranged.read_bytes() == data[PART_SIZE - 5:PART_SIZE + 5]

    # An abandoned upload is listed, then aborted and gone.
    key = ["--bucket", bucket_name, "--key", "big/abandoned.bin"]
    upload_id = json.loads(aws("s3api", "create-multipart-upload", *key))["UploadId"]
    uploads = json.loads(aws("s3api", "list-multipart-uploads", "--bucket", bucket_name))
    assert [u["UploadId"] for u in uploads["Uploads"]] == [upload_id]
    aws("s3api", "abort-multipart-upload", *key, "--upload-id", upload_id)
    assert boto.list_multipart_uploads(Bucket=bucket_name).get("Uploads", []) == []
    assert keys_of(boto, bucket_name) == ["big/cp.bin"]


def test_awscli_s3_to_s3_copy_and_move(aws, bucket_name, boto, tmp_path: Path):
    small = payload(40 * 1024, "awscli-copy-small")
    big = payload(MULTIPART_SIZE, "awscli-copy-big")
    boto.create_bucket(Bucket=bucket_name)
    # Sources go in with single PUTs, so this test needs copy and nothing else new.
    boto.put_object(Bucket=bucket_name, Key="src/small.bin", Body=small,
                    Metadata={"color": "green"}, ContentType="text/x-test")
    boto.put_object(Bucket=bucket_name, Key="src/big.bin", Body=big)

    aws("s3", "cp", f"s3://{bucket_name}/src/small.bin", f"s3://{bucket_name}/dst/small.bin")
    head = boto.head_object(Bucket=bucket_name, Key="dst/small.bin")
    assert head["Metadata"] == {"color": "green"} and head["ContentType"] == "text/x-test"
    # Above the multipart threshold the CLI copies in parts (UploadPartCopy).
    aws("s3", "cp", f"s3://{bucket_name}/src/big.bin", f"s3://{bucket_name}/dst/big.bin")
    aws("s3", "mv", f"s3://{bucket_name}/dst/small.bin", f"s3://{bucket_name}/moved.bin")
    aws("s3api", "copy-object", "--bucket", bucket_name, "--key", "api-copy.bin",
        "--copy-source", f"{bucket_name}/src/small.bin",
        "--metadata-directive", "REPLACE", "--metadata", "color=red")
    assert keys_of(boto, bucket_name) == [
        "api-copy.bin", "dst/big.bin", "moved.bin", "src/big.bin", "src/small.bin"]
    replaced = boto.head_object(Bucket=bucket_name, Key="api-copy.bin")
    assert replaced["Metadata"] == {"color": "red"}
    assert boto.get_object(Bucket=bucket_name, Key="moved.bin")["Body"].read() == small
    assert boto.get_object(Bucket=bucket_name, Key="dst/big.bin")["Body"].read() == big
    aws("s3", "sync", f"s3://{bucket_name}/src", f"s3://{bucket_name}/mirror")
    assert keys_of(boto, bucket_name, "mirror/") == ["mirror/big.bin", "mirror/small.bin"]
