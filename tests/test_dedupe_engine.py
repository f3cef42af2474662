"""The object engine's dedupe data path, over HTTP with boto3, on both backends.

Each test module run gets its own gateway over a fresh namespace, with the
background collector off, so the tests drive GC and fsck with the admin CLI
(``atonix-cli gc|fsck|stats``) and can count every chunk in the pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import random
import time
import urllib.request
import uuid

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError

from dedupe import Manifest, ManifestEntry, decode_manifest
from dedupe.packs import holder_oid
from engine import layout
from storage.factory import open_backend
from tests.conftest import backend_options, crash_points, require_backend
from tests.support.gateway_process import GatewayProcess, create_test_user, run_cli

MiB = 1024 * 1024
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class DedupeGateway:
    """A gateway on its own namespace, plus the admin CLI and raw access to its pools."""

    def __init__(self, kind: str, tmp, gc_interval: float = 0) -> None:
        self.kind = kind
        self.options = backend_options(kind, tmp)
        self.config = tmp / "atonix.yaml"
        self.config.write_text(f"gc_interval_seconds: {gc_interval}\ngc_grace_seconds: 0\n")
        create_test_user(self.options)
        self.gw = GatewayProcess(self.options, tmp / "gateway.log", extra_args=self._args())

    def _args(self) -> list[str]:
        return ["--config", str(self.config)]

    def cli(self, *args: str, check: bool = True) -> dict:
        proc = run_cli(self.options, *args, "--config", str(self.config), check=check)
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    def gc_until_stable(self) -> None:
        """Collect (grace 0) until a pass neither marks nor removes anything.

        A chunk goes in two passes (mark, then remove); a delta's base only once
        the delta is gone, so it takes two more.
        """
        for _ in range(8):
            outcomes = self.cli("gc", "--grace", "0")["outcomes"]
            if not outcomes.get("marked") and not outcomes.get("removed"):
                return
        raise AssertionError(f"the collector still finds work after 8 passes: {outcomes}")

    def pools(self, work):
        async def run():
            opts = {k: v for k, v in self.options.items() if k not in ("pool_prefix", "backend")}
            backend = open_backend(self.kind, **opts)
            await backend.connect()
            prefix = self.options.get("pool_prefix", "atonix")
            try:
                return await work(
                    backend.pool(layout.pool_name(prefix, layout.CHUNKS_POOL)),
                    backend.pool(layout.pool_name(prefix, layout.DATA_POOL)),
                    backend.pool(layout.pool_name(prefix, layout.META_POOL)),
                )
            finally:
                await backend.close()

        return asyncio.run(run())

    def chunk_ids(self) -> set[str]:
        """Chunk objects and packs (what holds chunk data and references)."""

        async def work(chunks, _data, _meta):
            return {oid async for oid in chunks.list_objects() if oid[:2] in ("c.", "k.")}

        return self.pools(work)

    def data_objects(self) -> set[str]:
        async def work(_chunks, data, _meta):
            return {oid async for oid in data.list_objects()}

        return self.pools(work)

    def manifests(self) -> dict[str, Manifest]:
        async def work(_chunks, _data, meta):
            return {oid: decode_manifest(await meta.read(oid))
                    async for oid in meta.list_objects(layout.MANIFEST_PREFIX)}

        return self.pools(work)

    def corrupt(self, entry: ManifestEntry) -> None:
        """Flip the last byte of a chunk, in its own object or in its pack."""

        async def work(chunks, _data, _meta):
            oid = holder_oid(entry.holder)
            last = entry.offset + entry.stored_len - 1 if entry.pack else -1
            blob = bytearray(await chunks.read(oid))
            blob[last] ^= 0xFF
            await chunks.write_full(oid, bytes(blob))

        self.pools(work)

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(self.gw.endpoint + "/metrics", timeout=10) as r:
            text = r.read().decode()
        return sum(
            float(line.split()[-1]) for line in text.splitlines()
            if line.startswith(name + " ") or line.startswith(name + "{")
        )


@pytest.fixture(scope="module", params=["local", "rados"])
def dgw(request, tmp_path_factory):
    require_backend(request.param)
    d = DedupeGateway(request.param, tmp_path_factory.mktemp(f"dedupe-{request.param}"))
    d.gw.start()
    yield d
    d.gw.stop()


@pytest.fixture
def s3(dgw):
    return dgw.gw.client()


@pytest.fixture
def bucket(s3):
    name = "dd-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def _get(s3, bucket: str, key: str, **kw) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def _md5(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def _compressible(n: int) -> bytes:
    rnd = random.Random(7)
    words = [os.urandom(4).hex() for _ in range(64)]
    out = bytearray()
    while len(out) < n:
        out += (" ".join(rnd.choice(words) for _ in range(12)) + "\n").encode()
    return bytes(out[:n])


DATASETS = {
    "random": lambda: os.urandom(3 * MiB + 12345),
    "zeros": lambda: bytes(4 * MiB),
    "text": lambda: _compressible(3 * MiB),
    "incompressible_odd": lambda: os.urandom(700_001),
}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_round_trip_and_ranges(s3, bucket, name):
    data = DATASETS[name]()
    put = s3.put_object(Bucket=bucket, Key=name, Body=data)
    assert put["ETag"] == _md5(data)
    assert _get(s3, bucket, name) == data
    for first, last in [(0, 0), (1, 65_536), (len(data) // 2, len(data) // 2 + 300_000),
                        (len(data) - 10, len(data) - 1)]:
        got = _get(s3, bucket, name, Range=f"bytes={first}-{last}")
        assert got == data[first : last + 1]
    assert _get(s3, bucket, name, Range="bytes=-1000") == data[-1000:]
    assert s3.head_object(Bucket=bucket, Key=name)["ContentLength"] == len(data)


def test_small_objects_stay_inline(dgw, s3, bucket):
    before = dgw.chunk_ids()
    s3.put_object(Bucket=bucket, Key="small", Body=b"x" * 1000)
    assert _get(s3, bucket, "small") == b"x" * 1000
    assert dgw.chunk_ids() == before


def test_zeros_and_text_are_stored_small(dgw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="zeros", Body=bytes(8 * MiB))
    s3.put_object(Bucket=bucket, Key="text", Body=_compressible(4 * MiB))
    stats = dgw.cli("stats", bucket)["buckets"][bucket]
    assert stats["chunked_logical_bytes"] == 12 * MiB
    assert stats["stored_chunk_bytes"] < 2 * MiB  # zeros: one chunk; text: compressed
    assert dgw.metric("atonix_dedupe_logical_bytes") >= 12 * MiB
    assert dgw.metric("atonix_compression_saved_bytes") > 0


def test_shifted_content_reuses_chunks(dgw, s3, bucket):
    data = os.urandom(4 * MiB)
    s3.put_object(Bucket=bucket, Key="a", Body=data)
    one = dgw.cli("stats", bucket)["buckets"][bucket]["stored_chunk_bytes"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"!" + data)  # every byte shifted by one
    s3.put_object(Bucket=bucket, Key="c", Body=data[:MiB] + b"edit" + data[MiB:])
    both = dgw.cli("stats", bucket)["buckets"][bucket]
    assert both["chunked_logical_bytes"] == 3 * len(data) + 5
    assert both["stored_chunk_bytes"] < one * 1.1  # a few boundary chunks, not 3 copies
    assert _get(s3, bucket, "b") == b"!" + data
    assert _get(s3, bucket, "c") == data[:MiB] + b"edit" + data[MiB:]


def test_identical_uploads_at_once_store_one_set(dgw, s3, bucket):
    data = os.urandom(2 * MiB)
    s3.put_object(Bucket=bucket, Key="first", Body=data)
    after_one = dgw.chunk_ids()
    clients = [dgw.gw.client() for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: clients[i].put_object(Bucket=bucket, Key=f"k{i}", Body=data),
                      range(8)))
    assert dgw.chunk_ids() == after_one
    for i in range(8):
        assert _get(s3, bucket, f"k{i}") == data


def test_multipart_parts_and_part_number_reads(dgw, s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail" * 1000]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=n + 1,
                            Body=body)["ETag"] for n, body in enumerate(parts)]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]},
    )
    assert _get(s3, bucket, "mp") == b"".join(parts)
    assert _get(s3, bucket, "mp", PartNumber=2) == parts[1]
    assert _get(s3, bucket, "mp", Range=f"bytes={5 * MiB - 5}-{5 * MiB + 4}") == (
        parts[0][-5:] + parts[1][:5]
    )
    s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    assert _get(s3, bucket, "mp-copy") == b"".join(parts)
    assert dgw.data_objects() == set()  # nothing went to stripes


def test_overwrite_delete_abort_release_and_gc_reclaims(dgw, s3):
    name = "gc-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    base = dgw.chunk_ids()

    def added(since: set[str]) -> set[str]:
        return dgw.chunk_ids() - since

    s3.put_object(Bucket=name, Key="k", Body=os.urandom(2 * MiB))
    first = added(base)
    s3.put_object(Bucket=name, Key="k", Body=os.urandom(2 * MiB))  # overwrite
    kept = os.urandom(MiB)
    s3.put_object(Bucket=name, Key="kept", Body=kept)
    up = s3.create_multipart_upload(Bucket=name, Key="m")["UploadId"]
    mark = dgw.chunk_ids()
    s3.upload_part(Bucket=name, Key="m", UploadId=up, PartNumber=1, Body=os.urandom(MiB))
    old_part = added(mark)
    s3.upload_part(Bucket=name, Key="m", UploadId=up, PartNumber=1, Body=os.urandom(MiB))
    dgw.gc_until_stable()
    live = dgw.chunk_ids()
    assert first and not first & live  # the overwritten object's chunks are gone
    assert old_part and not old_part & live  # so are the replaced part's
    s3.abort_multipart_upload(Bucket=name, Key="m", UploadId=up)
    s3.delete_object(Bucket=name, Key="k")
    dgw.gc_until_stable()
    assert _get(s3, name, "kept") == kept
    s3.delete_object(Bucket=name, Key="kept")
    dgw.gc_until_stable()
    assert dgw.chunk_ids() - base == set()
    s3.delete_bucket(Bucket=name)
    report = dgw.cli("fsck")
    assert report["clean"], report


def test_background_collector_reclaims(backend_kind, tmp_path):
    d = DedupeGateway(backend_kind, tmp_path, gc_interval=0.2)
    d.gw.start()
    try:
        s3 = d.gw.client()
        s3.create_bucket(Bucket="bg-gc")
        s3.put_object(Bucket="bg-gc", Key="k", Body=os.urandom(MiB))
        assert d.chunk_ids()
        s3.delete_object(Bucket="bg-gc", Key="k")
        deadline = time.monotonic() + 60

        def reclaimed() -> bool:
            # The pass counts its bytes after its last removal: both are awaited, since
            # the pool can look empty a moment before the gateway has counted them.
            return not d.chunk_ids() and d.metric("atonix_gc_reclaimed_bytes_total") > 0

        while not reclaimed() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert d.chunk_ids() == set()
        assert d.metric("atonix_gc_reclaimed_bytes_total") > 0
    finally:
        d.gw.stop()


def test_bucket_policy_off_and_compression_level(dgw, s3, bucket):
    text = _compressible(2 * MiB)
    dgw.cli("bucket", "set-dedupe", bucket, "on", "--compression-level", "0")
    s3.put_object(Bucket=bucket, Key="raw", Body=text)
    raw = dgw.cli("stats", bucket)["buckets"][bucket]
    assert raw["stored_chunk_bytes"] >= len(text)  # stored uncompressed
    dgw.cli("bucket", "set-dedupe", bucket, "off")
    assert dgw.cli("bucket", "show-dedupe", bucket)["enabled"] is False
    before = dgw.data_objects()
    s3.put_object(Bucket=bucket, Key="striped", Body=text)
    assert dgw.data_objects() - before  # written as stripes
    assert _get(s3, bucket, "striped") == text
    assert _get(s3, bucket, "raw") == text
    stats = dgw.cli("stats", bucket)["buckets"][bucket]
    assert stats["stripe_bytes"] == len(text)
    s3.delete_object(Bucket=bucket, Key="striped")
    assert dgw.data_objects() == before


def test_corrupt_chunk_is_reported_and_never_served(dgw, s3):
    name = "bad-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    data = {key: os.urandom(MiB) for key in ("early", "late")}
    victims = {}
    for key, body in data.items():
        before = dgw.manifests().keys()
        s3.put_object(Bucket=name, Key=key, Body=body)
        [manifest] = [m for oid, m in dgw.manifests().items() if oid not in before]
        at = 0 if key == "early" else len(manifest.entries) // 2
        victims[key] = manifest.entries[at].fingerprint
        dgw.corrupt(manifest.entries[at])
    report = dgw.cli("fsck", check=False)
    assert not report["clean"], (report, victims)
    assert sorted(c[1] for c in report["corrupt"]) == sorted(fp.hex() for fp in victims.values())
    errors = dgw.metric("atonix_integrity_errors_total")
    client = dgw.gw.client(read_timeout=20)
    # The first chunk is bad: the request fails before any header is sent.
    with pytest.raises(ClientError) as err:
        _get(client, name, "early")
    assert err.value.response["Error"]["Code"] == "InternalError"
    # A later chunk is bad: the headers are out, so the connection is cut.
    with pytest.raises((ConnectionError, ProtocolError, ResponseStreamingError)) as cut:
        _get(client, name, "late")
    assert not isinstance(cut.value, ReadTimeoutError)  # cut at once, not left hanging
    assert dgw.metric("atonix_integrity_errors_total") >= errors + 2
    # Repair quarantines the chunks; re-uploads of the same bytes heal the objects.
    dgw.cli("fsck", "--repair")
    for key, body in data.items():
        s3.put_object(Bucket=name, Key=key + "-again", Body=body)
    report = dgw.cli("fsck", "--repair")
    assert report["missing"] == [] and report["corrupt"] == []
    for key, body in data.items():
        assert _get(s3, name, key) == body
        s3.delete_object(Bucket=name, Key=key)
        s3.delete_object(Bucket=name, Key=key + "-again")
    s3.delete_bucket(Bucket=name)


CRASH_POINTS = [
    "writer.chunk_stored",  # some chunks and references stored
    "pack.after_write",  # a pack written with its reference, not in the index yet
    "engine.before_manifest",  # every chunk referenced, no manifest
    "engine.before_index",  # manifest written, no index entry
    "engine.before_manifest_remove",  # overwrite committed, references partly dropped
]


@pytest.mark.parametrize("backend_kind,point", crash_points(*CRASH_POINTS),
                         indirect=["backend_kind"])
def test_kill_mid_put_loses_nothing_acknowledged(backend_kind, tmp_path, point, monkeypatch):
    d = DedupeGateway(backend_kind, tmp_path)
    d.gw.start()
    s3 = d.gw.client()
    s3.create_bucket(Bucket="crash")
    acked = {f"k{i}": os.urandom(MiB + i) for i in range(3)}
    for key, body in acked.items():
        s3.put_object(Bucket="crash", Key=key, Body=body)
    d.gw.stop()
    monkeypatch.setenv("ATONIX_FAILPOINTS", f"{point}=exit")
    d.gw.start()
    monkeypatch.delenv("ATONIX_FAILPOINTS")
    new = os.urandom(2 * MiB)
    key = "k0" if point == "engine.before_manifest_remove" else "new"
    with pytest.raises(Exception):  # noqa: B017 - the connection drops: any client error
        s3.put_object(Bucket="crash", Key=key, Body=new)
    assert d.gw.proc is not None and d.gw.proc.wait(timeout=30) == 137
    d.gw.proc = None
    d.gw.start()
    d.cli("fsck", "--repair", "--stale-after", "0")
    d.gc_until_stable()
    report = d.cli("fsck")
    assert report["clean"] and report["orphan_manifests"] == [], report
    assert report["orphans"] == 0
    for k, body in acked.items():
        got = _get(s3, "crash", k)
        # The interrupted write is wholly visible or not at all.
        assert got == body or (k == key and got == new)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket="crash").get("Contents", [])}
    assert listed in (set(acked), set(acked) | {key})
    if key in listed:
        assert _get(s3, "crash", key) in (new, acked.get(key))
    d.gw.stop()


def test_burst_of_gets_reads_each_cold_chunk_once(dgw, s3, bucket):
    data = os.urandom(MiB)
    before = dgw.manifests().keys()
    s3.put_object(Bucket=bucket, Key="hot", Body=data)
    [manifest] = [m for oid, m in dgw.manifests().items() if oid not in before]
    chunks = len({e.fingerprint for e in manifest.entries})
    misses = dgw.metric("atonix_cache_misses_total")
    hits = dgw.metric("atonix_cache_hits_total")
    clients = [dgw.gw.client() for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda c: _get(c, bucket, "hot"), clients))
    assert bodies == [data] * 8
    # One miss per distinct chunk and one for the manifest: the burst shares them.
    assert dgw.metric("atonix_cache_misses_total") - misses == chunks + 1
    assert dgw.metric("atonix_cache_hits_total") - hits == 7 * (len(manifest.entries) + 1)
    assert dgw.metric("atonix_cache_bytes") > 0


def test_gc_compacts_a_pack_a_small_object_keeps_alive(dgw, s3):
    name = "compact-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    big = os.urandom(3 * MiB)  # incompressible: one pack of about 3 MiB
    before = dgw.manifests().keys()
    s3.put_object(Bucket=name, Key="big", Body=big)
    [m_big] = [m for oid, m in dgw.manifests().items() if oid not in before]
    [pack] = {e.pack for e in m_big.entries}
    small = big[: m_big.ends[3]]  # its first four chunks: stored nowhere else
    s3.put_object(Bucket=name, Key="small", Body=small)
    s3.delete_object(Bucket=name, Key="big")
    assert holder_oid(pack) in dgw.chunk_ids()  # the small object keeps the whole pack
    assert _get(s3, name, "small") == small  # the gateway caches its manifest
    # The delete releases big's references in the background (the release queue), and
    # the gateway's own collector may compact the pack before the CLI's pass does: what
    # must hold is that collector passes leave the pack gone, and the small object whole.
    for _ in range(40):
        dgw.cli("gc", "--grace", "0")
        if holder_oid(pack) not in dgw.chunk_ids():
            break
        time.sleep(0.25)
    assert holder_oid(pack) not in dgw.chunk_ids()
    dgw.gc_until_stable()
    assert _get(s3, name, "small") == small  # the cached manifest names the removed pack
    report = dgw.cli("fsck")
    assert report["clean"] and report["orphans"] == 0, report
    s3.delete_object(Bucket=name, Key="small")
    s3.delete_bucket(Bucket=name)
