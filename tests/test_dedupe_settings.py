"""Data-path settings from the config file reach the write path: chunk sizes, the
compression margin and per-bucket policies (``bucket_dedupe:``)."""

from __future__ import annotations

import os
import random
import uuid

import pytest

from dedupe import Codec
from tests.conftest import require_backend
from tests.test_dedupe_engine import DedupeGateway

KiB = 1024
CONFIG = """\
gc_interval_seconds: 0
chunk_min_size: 2048
chunk_avg_size: 4096
chunk_max_size: 16384
compression_min_saving: 0.5
bucket_dedupe:
  {striped}: {{enabled: false}}
  {raw}: {{compression_level: 0}}
"""


@pytest.fixture(scope="module", params=["local", "rados"])
def configured(request, tmp_path_factory):
    require_backend(request.param)
    d = DedupeGateway(request.param, tmp_path_factory.mktemp(f"dd-settings-{request.param}"))
    d.names = {k: f"{k}-{uuid.uuid4().hex[:10]}" for k in ("plain", "striped", "raw")}
    d.config.write_text(CONFIG.format(**d.names))
    d.gw.start()
    s3 = d.gw.client()
    for name in d.names.values():
        s3.create_bucket(Bucket=name)
    yield d
    d.gw.stop()


def _new_manifests(d: DedupeGateway, put) -> list:
    before = set(d.manifests())
    put()
    return [m for oid, m in d.manifests().items() if oid not in before]


def test_chunk_sizes_come_from_the_config_file(configured):
    s3, bucket = configured.gw.client(), configured.names["plain"]
    data = os.urandom(512 * KiB)
    put = lambda: s3.put_object(Bucket=bucket, Key="k", Body=data)  # noqa: E731
    [manifest] = _new_manifests(configured, put)
    lengths = [e.length for e in manifest.entries]
    assert sum(lengths) == len(data)
    assert max(lengths) <= 16 * KiB and min(lengths[:-1]) >= 2 * KiB
    assert len(lengths) > 512 // 16  # far more than the default ~32 KiB chunks would give
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


def test_compression_margin_comes_from_the_config_file(configured):
    s3, bucket = configured.gw.client(), configured.names["plain"]
    # zstd saves about 30% of any chunk: below the configured 50% margin -> raw. Each period
    # ends in random bytes so the tail chunk (which may be short) can't be mostly zeros.
    rng = random.Random(5)
    middling = b"".join(bytes(300) + rng.randbytes(700) for _ in range(256))
    text = b"GET /index.html HTTP/1.1 200 user-agent=curl\n" * 6000  # saves > 90%
    [m1] = _new_manifests(configured, lambda: s3.put_object(Bucket=bucket, Key="m", Body=middling))
    [m2] = _new_manifests(configured, lambda: s3.put_object(Bucket=bucket, Key="t", Body=text))
    assert {e.codec for e in m1.entries} == {Codec.RAW}
    assert Codec.RAW not in {e.codec for e in m2.entries[:-1]}
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == middling


def test_bucket_policies_come_from_the_config_file(configured):
    s3 = configured.gw.client()
    text = b"a log line that compresses very well\n" * 8000
    striped, raw = configured.names["striped"], configured.names["raw"]
    stripes_before = configured.data_objects()
    put = lambda: s3.put_object(Bucket=striped, Key="s", Body=text)  # noqa: E731
    assert _new_manifests(configured, put) == []
    assert configured.data_objects() - stripes_before  # written as fixed stripes
    [manifest] = _new_manifests(configured, lambda: s3.put_object(Bucket=raw, Key="r", Body=text))
    assert {e.codec for e in manifest.entries} == {Codec.RAW}  # level 0: no compression
    for bucket, key in ((striped, "s"), (raw, "r")):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == text


def test_an_edited_version_is_stored_as_deltas_and_outlives_the_original(configured):
    """Through S3: a second version with a small edit stores the edited chunks as
    deltas of the first version's chunks; deleting the first keeps what they need."""
    s3, bucket = configured.gw.client(), configured.names["plain"]
    v1 = random.Random(21).randbytes(400 * KiB)
    v2 = v1[: 200 * KiB] + b"an edit in the middle" + v1[200 * KiB + 21 :]
    s3.put_object(Bucket=bucket, Key="v1", Body=v1)
    [m2] = _new_manifests(configured, lambda: s3.put_object(Bucket=bucket, Key="v2", Body=v2))
    assert Codec.ZSTD_DELTA in {e.codec for e in m2.entries}
    s3.delete_object(Bucket=bucket, Key="v1")
    configured.gc_until_stable()
    assert s3.get_object(Bucket=bucket, Key="v2")["Body"].read() == v2
    assert configured.cli("fsck", "--stale-after", "0")["clean"]
    s3.delete_object(Bucket=bucket, Key="v2")
