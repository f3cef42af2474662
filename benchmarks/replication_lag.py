"""Replication lag between two regions under a fixed PUT rate, with 50 ms added one-way
delay between them.

    python -m benchmarks.replication_lag [--backend local|rados] [--ceph-conf F] [--quick]

Two deployments (``east``, ``west``: separate data folders, or pool prefixes
of one Ceph cluster), one gateway each; east's shipper reaches west through
``benchmarks.delay_proxy`` (50 ms each way). An open-loop load generator
(requests fired on schedule whatever the earlier ones are doing, from
presigned URLs: no signing during the run) PUTs 4 KiB objects into east at
each rate. Lag is the shipper's own measure, ``atonix_replication_lag_seconds``
(from a change's commit in east to west's acknowledgement of it), read as
histogram deltas from east's /metrics: p50 and p99 interpolated within a
bucket, max as the upper bound of the highest bucket reached. Each row also
reports the rate achieved, errors and the CPU the load generator used (to
show it was not the limit on this two-core machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.request

import aiohttp
import boto3
import psutil
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import tiering
from benchmarks.delay_proxy import DelayProxy
from benchmarks.targets import ACCESS_KEY, SECRET, Target, free_port, start_atonix

RATES, RATES_QUICK = (50, 100, 200, 250, 300), (50, 200)
SECONDS, SECONDS_QUICK = 20, 5
DELAY_S = 0.05
BODY = os.urandom(4096)
DESTINATION = "west:lag-copies"


def s3_client(target: Target):
    return boto3.client("s3", endpoint_url=target.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET, region_name="us-east-1",
                        config=Config(signature_version="s3v4",
                                      s3={"addressing_style": "path"}))


def replicated(source: Target, bucket: str, target: Target, copy: str, region: str,
               markers: bool = False) -> None:
    """Versioned ``bucket`` in ``source`` shipping every key to versioned ``copy`` in
    ``target``, which is region ``region`` of the source's config."""
    for where, name in ((source, bucket), (target, copy)):
        s3 = s3_client(where)
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=name)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3_client(source).put_bucket_replication(Bucket=bucket, ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/replication",
        "Rules": [{"ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
                   "DeleteMarkerReplication": {"Status": "Enabled" if markers else "Disabled"},
                   "Destination": {"Bucket": f"arn:aws:s3:{region}::{copy}"}}]})


def _setup(east: Target, west: Target) -> None:
    replicated(east, "lag-originals", west, "lag-copies", "west")


def lag_histogram(target: Target) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of east's lag histogram for the destination."""
    with urllib.request.urlopen(target.endpoint + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    out = []
    for family in text_string_to_metric_families(text):
        if family.name != "atonix_replication_lag_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("destination") == DESTINATION:
                out.append((float(sample.labels["le"]), sample.value))
    return sorted(out)


def quantiles(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> dict:
    """p50, p99 and max (ms) of the observations made between two scrapes."""
    old = dict(before)
    counts = [(le, n - old.get(le, 0.0)) for le, n in after]
    total = counts[-1][1] if counts else 0.0
    if total <= 0:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "shipped": 0}

    def at(q: float) -> float:
        goal, lower, below = q * total, 0.0, 0.0
        for le, n in counts:
            if n >= goal:
                bound = le if le != float("inf") else lower
                span = n - below
                return lower + (bound - lower) * ((goal - below) / span if span else 1.0)
            lower, below = le, n
        return lower

    top = next(le for le, n in counts if n >= total)
    return {"p50_ms": round(at(0.5) * 1000, 1), "p99_ms": round(at(0.99) * 1000, 1),
            "max_ms": round(top * 1000, 1) if top != float("inf") else None,
            "shipped": int(total)}


async def _open_loop(urls: list[str], rate: int) -> tuple[float, int, float]:
    """Fire one PUT per URL on schedule; (seconds taken, errors, load generator cores)."""
    errors = 0
    me = psutil.Process()
    cpu0, start = sum(me.cpu_times()[:2]), time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def one(url: str) -> None:
            nonlocal errors
            try:
                async with session.put(url, data=BODY) as answer:
                    await answer.read()
                    errors += answer.status != 200
            except aiohttp.ClientError:
                errors += 1

        tasks = []
        for i, url in enumerate(urls):
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(url)))
        await asyncio.gather(*tasks)
    took = time.monotonic() - start
    return took, errors, (sum(me.cpu_times()[:2]) - cpu0) / took


def _drained(east: Target, before: list, wanted: int, timeout: float = 180.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        after = lag_histogram(east)
        shipped = (after[-1][1] if after else 0) - (dict(before).get(float("inf"), 0.0))
        if shipped >= wanted or time.monotonic() > deadline:
            return after
        time.sleep(0.5)


async def measure(kind: str, quick: bool = False, ceph_conf: str | None = None) -> list[dict]:
    interval = {"replication_interval_seconds": 0.25}
    west = start_atonix(kind, 1, ceph_conf, config=interval)
    proxy = await DelayProxy(int(west.endpoint.rsplit(":", 1)[1]), DELAY_S).start()
    regions = {"west": {"endpoints": [f"http://127.0.0.1:{proxy.port}"],
                        "access_key": ACCESS_KEY, "secret_key": SECRET}}
    east = start_atonix(kind, 1, ceph_conf, config={**interval, "regions": regions},
                        port=free_port())
    rows = []
    try:
        await asyncio.to_thread(_setup, east, west)
        s3 = s3_client(east)
        # Warm-up: the first change waits for a gateway to take the new bucket's shard
        # lease (up to a second); measured rates start once shipping runs.
        before = await asyncio.to_thread(lag_histogram, east)
        await asyncio.to_thread(s3.put_object, Bucket="lag-originals", Key="warm-up", Body=BODY)
        await asyncio.to_thread(_drained, east, before, 1)
        for rate in RATES_QUICK if quick else RATES:
            n = rate * (SECONDS_QUICK if quick else SECONDS)
            urls = [s3.generate_presigned_url("put_object", Params={
                "Bucket": "lag-originals", "Key": f"r{rate}/{i:06d}"}) for i in range(n)]
            before = await asyncio.to_thread(lag_histogram, east)
            cpu0 = (east.cpu_seconds(), west.cpu_seconds())
            took, errors, loadgen = await _open_loop(urls, rate)
            after = await asyncio.to_thread(_drained, east, before, n - errors)
            cpu = (east.cpu_seconds() - cpu0[0], west.cpu_seconds() - cpu0[1])
            rows.append({"operation": "lag", "rate": rate, "achieved": round(n / took, 1),
                         "errors": errors, "loadgen_cpu": round(loadgen, 2),
                         "east_cpu": round(cpu[0] / took, 2), "west_cpu": round(cpu[1] / took, 2),
                         **quantiles(before, after)})
    finally:
        await proxy.stop()
        east.stop()
        west.stop()
    return rows


if __name__ == "__main__":
    tiering.main(measure, __doc__)
