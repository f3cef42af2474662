"""The MinIO Python SDK against a running gateway: buckets, objects, listings, copy, presign."""

from __future__ import annotations

import io
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.clients.conftest import CLIENT_READ_TIMEOUT, MULTIPART_SIZE, PART_SIZE, payload
from tests.support.gateway_process import TEST_ACCESS_KEY, TEST_SECRET

try:
    import urllib3
    from minio import Minio
    from minio.commonconfig import ComposeSource, CopySource
    from minio.deleteobjects import DeleteObject
except ImportError:  # a missing client fails every test, never skips it
    Minio = None


@pytest.fixture
def mc(gateway):
    if Minio is None:
        pytest.fail("minio is not installed: pip install -e '.[test]'")
    return Minio(
        urlsplit(gateway.endpoint).netloc,
        access_key=TEST_ACCESS_KEY,
        secret_key=TEST_SECRET,
        secure=False,
        region="us-east-1",
        # One attempt and a bounded wait, like the other clients here (the SDK's default
        # retries 5xx five times with a 5-minute read timeout).
        http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=CLIENT_READ_TIMEOUT),
            retries=urllib3.Retry(total=0),
        ),
    )


def names(objects) -> list[str]:
    return sorted(o.object_name for o in objects)


def test_minio_basic_lifecycle(mc, bucket_name):
    files = {"docs/a.txt": b"alpha\n", "docs/sub/b.txt": b"bravo\n" * 1000,
             "top.bin": payload(80 * 1024, "minio-top")}
    mc.make_bucket(bucket_name)
    assert mc.bucket_exists(bucket_name)
    assert bucket_name in [b.name for b in mc.list_buckets()]
    for key, data in files.items():
        mc.put_object(bucket_name, key, io.BytesIO(data), len(data),
                      content_type="text/plain", metadata={"x-amz-meta-origin": "minio"})

    stat = mc.stat_object(bucket_name, "docs/a.txt")
    assert stat.size == len(files["docs/a.txt"])
    assert stat.content_type == "text/plain"
    assert stat.metadata.get("x-amz-meta-origin") == "minio"

    for v1 in (False, True):
        assert names(mc.list_objects(bucket_name, use_api_v1=v1)) == ["docs/", "top.bin"]
        assert names(mc.list_objects(bucket_name, prefix="docs/", use_api_v1=v1)) == [
            "docs/a.txt", "docs/sub/"]
        assert names(mc.list_objects(bucket_name, recursive=True, use_api_v1=v1)) == sorted(
            files)

    for key, data in files.items():
        resp = mc.get_object(bucket_name, key)
        try:
            assert resp.read() == data, key
        finally:
            resp.close()
            resp.release_conn()
    ranged = mc.get_object(bucket_name, "top.bin", offset=1000, length=5000)
    assert ranged.read() == files["top.bin"][1000:6000]
    ranged.close()
    ranged.release_conn()

    url = mc.presigned_get_object(bucket_name, "docs/sub/b.txt", expires=timedelta(minutes=5))
    with urllib.request.urlopen(url) as r:
        assert r.read() == files["docs/sub/b.txt"]

    mc.remove_object(bucket_name, "top.bin")
    errors = list(mc.remove_objects(bucket_name, [DeleteObject(k) for k in files]))
    assert errors == []
    assert names(mc.list_objects(bucket_name, recursive=True)) == []
    mc.remove_bucket(bucket_name)
    assert not mc.bucket_exists(bucket_name)


def test_minio_multipart_stream_and_file(mc, bucket_name, tmp_path: Path):
    data = payload(MULTIPART_SIZE, "minio-multipart")
    parts = -(-len(data) // PART_SIZE)
    mc.make_bucket(bucket_name)
    # Unknown length: the SDK must stream it in parts.
    streamed = mc.put_object(bucket_name, "big/stream.bin", io.BytesIO(data), -1,
                             part_size=PART_SIZE)
    assert streamed.etag.endswith(f"-{parts}")
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    filed = mc.fput_object(bucket_name, "big/file.bin", str(src), part_size=PART_SIZE)
    assert filed.etag == streamed.etag  # same bytes, same part size: same multipart ETag

    for key in ("big/stream.bin", "big/file.bin"):
        assert mc.stat_object(bucket_name, key).size == len(data)
        back = tmp_path / key.replace("/", "_")
        mc.fget_object(bucket_name, key, str(back))
        assert back.read_bytes() == data, key
    tail = mc.get_object(bucket_name, "big/stream.bin", offset=len(data) - PART_SIZE - 10)
    assert tail.read() == data[-PART_SIZE - 10:]  # a range across the last part boundary
    tail.close()
    tail.release_conn()


def test_minio_copy_and_compose(mc, bucket_name, boto):
    small = payload(70 * 1024, "minio-copy")
    big = payload(MULTIPART_SIZE, "minio-compose")
    mc.make_bucket(bucket_name)
    # Sources go in with single PUTs, so this test needs copy and nothing else new.
    boto.put_object(Bucket=bucket_name, Key="src/small.bin", Body=small,
                    Metadata={"color": "blue"})
    boto.put_object(Bucket=bucket_name, Key="src/big.bin", Body=big)

    mc.copy_object(bucket_name, "dst/small.bin", CopySource(bucket_name, "src/small.bin"))
    assert mc.stat_object(bucket_name, "dst/small.bin").metadata.get("x-amz-meta-color") == "blue"
    resp = mc.get_object(bucket_name, "dst/small.bin")
    assert resp.read() == small
    resp.close()
    resp.release_conn()

    # compose_object is a multipart upload whose parts are UploadPartCopy of ranges.
    mc.compose_object(bucket_name, "dst/composed.bin", [
        ComposeSource(bucket_name, "src/big.bin", offset=0, length=PART_SIZE),
        ComposeSource(bucket_name, "src/small.bin"),
    ])
    resp = mc.get_object(bucket_name, "dst/composed.bin")
    assert resp.read() == big[:PART_SIZE] + small
    resp.close()
    resp.release_conn()
