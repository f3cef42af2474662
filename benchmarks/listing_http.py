"""Listing through HTTP: ListObjectsV2 pages of 1000 keys from our gateway and from
Ceph RGW on the same cluster, in one run.

``benchmarks.listing`` times the engine's listing in-process; this times what a
client sees: a presigned GET of ``?list-type=2`` over one keep-alive connection,
the body read to the end. Per bucket size it reports the first page (median of
``REPEAT``), the first page with delimiter ``/`` (1000 common prefixes) and a
full scan (keys/s over every page, continuation token after token; signing the
next URL is not timed).

Filling: our buckets go through the engine's bulk loader in this process
(``BucketIndex.put_many``: the gateway serving them sees the keys at once), so
10^6 keys take about a minute. RGW has no bulk loader: its keys are empty PUTs
over HTTP, so its sizes stop at ``RGW_MAX_KEYS``.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.listing import DIRS, fill_index, key_for
from benchmarks.scenarios import client_for
from benchmarks.targets import Target
from engine.assembly import EngineSettings, ObjectEngine
from storage.factory import open_backend

REPEAT = 20
RGW_MAX_KEYS = 10**5
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")
_KEYS = re.compile(rb"<Key>")


async def _fill_engine(kind: str, where: dict, bucket: str, n: int) -> None:
    backend = open_backend(kind, data_dir=where.get("data_dir"), ceph_conf=where.get("ceph_conf"))
    engine = ObjectEngine(backend, EngineSettings(pool_prefix=where.get("pool_prefix", "atonix")))
    await backend.connect()
    try:
        await fill_index(engine, (await engine.buckets.get(bucket)).bucket_id, n)
    finally:
        await backend.close()
        engine.close()


def fill(target: Target, bucket: str, n: int, engine_at: dict | None) -> float:
    """Create ``bucket`` with n keys (dir<NNNN>/obj<NNNNNNN>); seconds it took."""
    s3 = client_for(target)
    s3.create_bucket(Bucket=bucket)
    started = time.perf_counter()
    if engine_at is not None:
        asyncio.run(_fill_engine(engine_at["kind"], engine_at, bucket, n))
    else:
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=key_for(i, n), Body=b""),
                          range(n)))
    return time.perf_counter() - started


class PageClient:
    """Presigned ListObjectsV2 GETs over one keep-alive HTTP connection."""

    def __init__(self, target: Target, bucket: str) -> None:
        self.s3, self.bucket = client_for(target), bucket
        parts = urlsplit(target.endpoint)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)

    def url(self, **params) -> str:
        url = self.s3.generate_presigned_url(
            "list_objects_v2", Params={"Bucket": self.bucket, "MaxKeys": 1000, **params},
            ExpiresIn=3600,
        )
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}"

    def get(self, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        seconds = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"ListObjectsV2 answered {response.status}: {body[:300]!r}")
        return seconds, body

    def page_ms(self, **params) -> tuple[float, int]:
        """Median ms of REPEAT identical pages, and the items on one."""
        path = self.url(**params)
        times, body = [], b""
        for _ in range(REPEAT):
            seconds, body = self.get(path)
            times.append(seconds)
        items = len(_KEYS.findall(body)) + body.count(b"<CommonPrefixes>")
        return statistics.median(times) * 1000, items

    def scan(self) -> tuple[int, float, int]:
        """(keys, seconds spent in HTTP, pages) for the whole bucket."""
        keys = pages = 0
        spent, token = 0.0, None
        while True:
            path = self.url(**({"ContinuationToken": token} if token else {}))
            seconds, body = self.get(path)
            spent += seconds
            pages += 1
            keys += len(_KEYS.findall(body))
            found = _TOKEN.search(body)
            if found is None:
                return keys, spent, pages
            token = found.group(1).decode()

    def close(self) -> None:
        self.conn.close()


def measure(target: Target, n: int, engine_at: dict | None) -> dict:
    bucket = f"lhttp-{n}"
    fill_s = fill(target, bucket, n, engine_at)
    client = PageClient(target, bucket)
    try:
        first_ms, first_items = client.page_ms()
        delim_ms, delim_items = client.page_ms(Delimiter="/")
        keys, seconds, pages = client.scan()
    finally:
        client.close()
    # (a delimiter page may hold fewer than 1000 items: RGW caps its internal reads)
    if keys != n or first_items != min(n, 1000) or not 0 < delim_items <= min(DIRS, n):
        raise RuntimeError(f"{target.name}: listed {keys}/{n} keys, pages of "
                           f"{first_items} and {delim_items} items")
    return {"keys": n, "fill_s": round(fill_s, 1), "first_ms": round(first_ms, 2),
            "first_delim_ms": round(delim_ms, 2), "scan_keys_per_s": round(keys / seconds),
            "scan_pages": pages, "scan_s": round(seconds, 2)}


def engine_location(target: Target, ceph_conf: str | None) -> dict:
    """Where a started atonix target keeps its pools (see targets.start_atonix)."""
    if target.name == "atonix-local":
        assert target.workdir is not None
        return {"kind": "local", "data_dir": Path(target.workdir) / "data"}
    return {"kind": "rados", "ceph_conf": ceph_conf, "pool_prefix": target.pool_prefix}

