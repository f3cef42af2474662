"""s3fs (fsspec over aiobotocore) against a running gateway: files, directories, copy, rm.

Buckets are created with boto3: s3fs's ``mkdir`` of a bucket sends a LocationConstraint
of its own region, which is not what these tests are about.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clients.conftest import (
    CLIENT_READ_TIMEOUT,
    MULTIPART_SIZE,
    PART_SIZE,
    payload,
    read_tree,
    write_tree,
)
from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET

try:
    import s3fs
except ImportError:  # a missing client fails every test, never skips it
    s3fs = None


@pytest.fixture
def fs(gateway):
    if s3fs is None:
        pytest.fail("s3fs is not installed: pip install -e '.[test]'")
    s3fs.S3FileSystem.clear_instance_cache()
    return s3fs.S3FileSystem(
        key=TEST_ACCESS_KEY,
        secret=TEST_SECRET,
        endpoint_url=gateway.endpoint,
        client_kwargs={"region_name": "us-east-1"},
        config_kwargs={
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 1},
            "connect_timeout": 10,
            "read_timeout": CLIENT_READ_TIMEOUT,
        },
        use_listings_cache=False,
        skip_instance_cache=True,
    )


def test_s3fs_files_and_directories(fs, made_bucket, tmp_path: Path):
    b = made_bucket
    tree = {"a.txt": b"alpha\n", "notes/b.txt": b"bravo\n" * 300,
            "notes/deep/c.bin": payload(90 * 1024, "s3fs-c")}
    fs.pipe(f"{b}/top.txt", b"top level\n")
    with fs.open(f"{b}/docs/written.txt", "wb") as f:
        f.write(b"written through a file object\n")
    write_tree(tmp_path / "src", tree)
    fs.put(str(tmp_path / "src") + "/", f"{b}/tree/", recursive=True)

    assert sorted(fs.ls(b, detail=False)) == [f"{b}/docs", f"{b}/top.txt", f"{b}/tree"]
    assert sorted(fs.ls(f"{b}/tree", detail=False)) == [f"{b}/tree/a.txt", f"{b}/tree/notes"]
    assert fs.isdir(f"{b}/tree/notes") and fs.isfile(f"{b}/tree/a.txt")
    assert sorted(fs.find(f"{b}/tree")) == sorted(f"{b}/tree/{k}" for k in tree)
    assert sorted(fs.glob(f"{b}/tree/**/*.txt")) == [f"{b}/tree/a.txt", f"{b}/tree/notes/b.txt"]
    assert fs.info(f"{b}/tree/notes/deep/c.bin")["size"] == len(tree["notes/deep/c.bin"])
    assert fs.du(f"{b}/tree") == sum(len(v) for v in tree.values())

    assert fs.cat(f"{b}/top.txt") == b"top level\n"
    assert fs.cat_file(f"{b}/tree/notes/deep/c.bin", start=100, end=4196) == (
        tree["notes/deep/c.bin"][100:4196])
    with fs.open(f"{b}/tree/notes/b.txt", "rb", block_size=1024) as f:
        f.seek(600)
        assert f.read(1200) == tree["notes/b.txt"][600:1800]
    fs.get(f"{b}/tree/", str(tmp_path / "back") + "/", recursive=True)
    assert read_tree(tmp_path / "back") == tree

    fs.rm(f"{b}/top.txt")
    fs.rm(f"{b}/tree", recursive=True)
    assert fs.ls(b, detail=False) == [f"{b}/docs"]


def test_s3fs_multipart_write_and_read(fs, made_bucket, boto):
    data = payload(MULTIPART_SIZE, "s3fs-multipart")
    key = f"{made_bucket}/big/big.bin"
    with fs.open(key, "wb", block_size=PART_SIZE) as f:  # one part per filled block
        for off in range(0, len(data), 1024 * 1024):
            f.write(data[off:off + 1024 * 1024])
    head = boto.head_object(Bucket=made_bucket, Key="big/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith(f'-{-(-len(data) // PART_SIZE)}"'), head["ETag"]
    assert fs.cat(key) == data
    with fs.open(key, "rb", block_size=2 * 1024 * 1024) as f:
        f.seek(PART_SIZE - 100)
        assert f.read(200) == data[PART_SIZE - 100:PART_SIZE + 100]


def test_s3fs_copy_and_move(fs, made_bucket):
    b = made_bucket
    data = payload(150 * 1024, "s3fs-copy")
    fs.pipe(f"{b}/src/one.bin", data)
    fs.pipe(f"{b}/src/two.txt", b"two\n")
    fs.copy(f"{b}/src/one.bin", f"{b}/dst/one.bin")
    fs.copy(f"{b}/src/", f"{b}/tree-copy/", recursive=True)
    fs.mv(f"{b}/dst/one.bin", f"{b}/moved.bin")
    assert sorted(fs.find(b)) == sorted([
        f"{b}/moved.bin", f"{b}/src/one.bin", f"{b}/src/two.txt",
        f"{b}/tree-copy/one.bin", f"{b}/tree-copy/two.txt",
    ])
    assert fs.cat(f"{b}/moved.bin") == data
    assert fs.cat(f"{b}/tree-copy/two.txt") == b"two\n"
