"""Bytes on the inter-region link for a large object changed by 1%: what dedupe-aware
transfer (engine.chunk_transfer) saves.

    python -m benchmarks.chunk_transfer [--backend local|rados] [--ceph-conf F] [--quick]

Two regions, one gateway each, east shipping to west through
``benchmarks.delay_proxy`` (50 ms each way), which counts the bytes that cross
it. One object of 1 GiB (64 MiB with --quick) of random bytes is PUT into east
and shipped whole; then a new version with 1% of it (one contiguous run in the
middle) replaced. Reported: the bytes the second version put on the link as a
share of the object, and how long each version took to arrive.
"""

from __future__ import annotations

import asyncio
import os
import time

from benchmarks import tiering
from benchmarks.delay_proxy import DelayProxy
from benchmarks.replication_lag import replicated, s3_client
from benchmarks.targets import ACCESS_KEY, SECRET, Target, free_port, start_atonix

SIZE, SIZE_QUICK = 1 << 30, 64 << 20
DELAY_S = 0.05


def _setup(east: Target, west: Target) -> None:
    replicated(east, "images", west, "images-copy", "west")


def _put_and_wait(east: Target, west: Target, body: bytes, versions: int) -> float:
    """PUT ``body`` into east; seconds until west holds ``versions`` versions of it."""
    start = time.monotonic()
    s3_client(east).put_object(Bucket="images", Key="disk.img", Body=body)
    copies = s3_client(west)
    while len(copies.list_object_versions(Bucket="images-copy").get("Versions", [])) < versions:
        if time.monotonic() - start > 1800:
            raise RuntimeError("the version never arrived in west")
        time.sleep(0.2)
    return time.monotonic() - start


async def measure(kind: str, quick: bool = False, ceph_conf: str | None = None) -> list[dict]:
    size = SIZE_QUICK if quick else SIZE
    west = start_atonix(kind, 1, ceph_conf, config={"replication_interval_seconds": 0.25})
    link = await DelayProxy(int(west.endpoint.rsplit(":", 1)[1]), DELAY_S).start()
    east = start_atonix(kind, 1, ceph_conf, port=free_port(), config={
        "replication_interval_seconds": 0.25,
        "regions": {"west": {"endpoints": [f"http://127.0.0.1:{link.port}"],
                             "access_key": ACCESS_KEY, "secret_key": SECRET}}})
    try:
        await asyncio.to_thread(_setup, east, west)
        first = bytearray(os.urandom(size))
        whole = await asyncio.to_thread(_put_and_wait, east, west, bytes(first), 1)
        before = link.sent
        first[size // 2:size // 2 + size // 100] = os.urandom(size // 100)
        changed = await asyncio.to_thread(_put_and_wait, east, west, bytes(first), 2)
        sent = link.sent - before
        return [{"operation": "transfer-1pct", "size": size, "link_bytes": sent,
                 "percent_sent": round(100 * sent / size, 2),
                 "first_version_s": round(whole, 2), "changed_version_s": round(changed, 2)}]
    finally:
        await link.stop()
        east.stop()
        west.stop()


if __name__ == "__main__":
    tiering.main(measure, __doc__)
