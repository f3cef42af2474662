"""Named HTTP scenarios: the same workload, the same client, against every target.

Each scenario prepares its objects with boto3 (not measured), presigns the
URLs it will replay, warms up, then measures with wrk. Scenarios that are not
HTTP load (listing, dedupe) plug in through ``EXTRA_SCENARIOS``: a name mapped
to a callable that returns result rows, so later capabilities (tier latency,
replication lag, NFS throughput) add themselves without touching the runner.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
from botocore.config import Config

from benchmarks.loadgen import LoadResult, run_wrk
from benchmarks.targets import Target

KiB, MiB = 1024, 1024 * 1024


@dataclass(frozen=True)
class Phase:
    operation: str  # GET | PUT | MIXED
    size: int  # bytes per object (MIXED: the largest)
    connections: int


@dataclass(frozen=True)
class Scenario:
    name: str
    phases: tuple[Phase, ...]
    objects: int  # distinct keys per phase
    sizes: tuple[int, ...] = ()  # MIXED: size distribution (uniform over these)
    # Written with this x-amz-storage-class to the gateway (peers keep STANDARD: RGW's
    # default placement has no other class), so the GETs read that tier.
    storage_class: str = "STANDARD"


SCENARIOS: dict[str, Scenario] = {
    # 256 keys: a hot working set (fits the gateway's hot cache).
    "s3-small": Scenario("s3-small", (Phase("GET", 4 * KiB, 32), Phase("PUT", 4 * KiB, 32)), 256),
    # 20,000 keys read in a cycle: more than a 64 MiB hot cache holds (~14.5k 4 KiB
    # objects), so an LRU serves none of them: every GET goes to the backend.
    "s3-cold": Scenario("s3-cold", (Phase("GET", 4 * KiB, 32), Phase("GET", 4 * KiB, 8)), 20_000),
    # 16 keys, each PUT again with its own body: after the first round every PUT
    # carries content the store already holds (the dedupe hit path).
    "s3-large": Scenario("s3-large", (Phase("GET", 4 * MiB, 8), Phase("PUT", 4 * MiB, 8)), 16),
    # 256 distinct random bodies (1 GiB): new data in every request of a run that
    # sends fewer than 256 PUTs (the report's request count says; ~40 s at RGW's rate).
    "s3-large-new": Scenario("s3-large-new", (Phase("PUT", 4 * MiB, 8),), 256),
    # The warm tier (its own pool, zstd 9): 4 KiB objects stay inline in the index
    # whatever their class, 4 MiB ones are read from the warm pool.
    "s3-warm": Scenario(
        "s3-warm", (Phase("GET", 4 * KiB, 8), Phase("GET", 4 * MiB, 8)), 64,
        storage_class="STANDARD_IA",
    ),
    "s3-mixed": Scenario(
        "s3-mixed", (Phase("MIXED", 1 * MiB, 16),), 64, sizes=(4 * KiB, 64 * KiB, 1 * MiB)
    ),
}

# name -> callable(options) -> list of result rows; filled by plug-in scenarios.
EXTRA_SCENARIOS: dict[str, Callable[[dict], list[dict]]] = {}


def client_for(target: Target):
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name="us-east-1",
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 3}, max_pool_connections=16),
    )


def _path_of(url: str, endpoint: str) -> str:
    return url[len(endpoint):]


_PREPARED: set[tuple[str, str, str, int]] = set()  # (endpoint, bucket, first key, count)


def ensure_bucket(target: Target, bucket: str) -> None:
    s3 = client_for(target)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)


def prepare(
    target: Target, bucket: str, keys: list[str], sizes: list[int], storage_class: str = "STANDARD"
) -> None:
    done = (target.endpoint, bucket, keys[0] if keys else "", len(keys))
    if done in _PREPARED:  # a second phase over the same keys
        return
    s3 = client_for(target)
    ensure_bucket(target, bucket)
    payloads = {size: os.urandom(size) for size in set(sizes)}
    extra = {"StorageClass": storage_class} if target.name.startswith("atonix") else {}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(
            lambda ks: s3.put_object(Bucket=bucket, Key=ks[0], Body=payloads[ks[1]], **extra),
            zip(keys, sizes, strict=True),
        ))
    _PREPARED.add(done)


def presign(target: Target, bucket: str, method: str, key: str) -> str:
    s3 = client_for(target)
    op = "get_object" if method == "GET" else "put_object"
    url = s3.generate_presigned_url(op, Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
    return _path_of(url, target.endpoint)


def _requests_for(target, bucket, scenario, phase, rng) -> tuple[list, list[bytes]]:
    if phase.operation in ("GET", "PUT"):
        keys = [f"{scenario.name}/{phase.size}/{i:05d}" for i in range(scenario.objects)]
        if phase.operation == "GET":
            prepare(target, bucket, keys, [phase.size] * len(keys), scenario.storage_class)
            return [("GET", presign(target, bucket, "GET", k), 0) for k in keys], []
        # Each key gets its own body (distinct objects, as real uploads are): one
        # body for every PUT would make all clients write the very same chunks.
        ensure_bucket(target, bucket)  # a PUT-only scenario has no GET phase to create it
        put_keys = [k + ".put" for k in keys]
        return ([("PUT", presign(target, bucket, "PUT", k), i + 1)
                 for i, k in enumerate(put_keys)],
                [os.urandom(phase.size) for _ in put_keys])
    # MIXED: 70% GET / 30% PUT over the size distribution.
    sizes = [rng.choice(scenario.sizes) for _ in range(scenario.objects)]
    keys = [f"{scenario.name}/mixed/{i:05d}" for i in range(scenario.objects)]
    prepare(target, bucket, keys, sizes)
    bodies = [os.urandom(s) for s in scenario.sizes]
    reqs = []
    for key, size in zip(keys, sizes, strict=True):
        if rng.random() < 0.7:
            reqs.append(("GET", presign(target, bucket, "GET", key), 0))
        else:
            reqs.append(("PUT", presign(target, bucket, "PUT", key + ".put"),
                         scenario.sizes.index(size) + 1))
    rng.shuffle(reqs)
    return reqs, bodies


def run_phase(
    target: Target, scenario: Scenario, phase: Phase, *, seconds: float, warmup: float
) -> tuple[LoadResult, float]:
    """Measure one phase; returns the wrk result and the target's CPU (cores busy)."""
    rng = random.Random(7)
    bucket = "bench-" + scenario.name.replace("s3-", "")
    requests, bodies = _requests_for(target, bucket, scenario, phase, rng)
    if warmup > 0:
        run_wrk(target.endpoint, requests, connections=phase.connections, seconds=warmup,
                bodies=bodies)
    cpu_before = target.cpu_seconds()
    result = run_wrk(target.endpoint, requests, connections=phase.connections,
                     seconds=seconds, bodies=bodies)
    cpu = (target.cpu_seconds() - cpu_before) / max(result.seconds, 1e-9)
    return result, cpu


def mean_size(scenario: Scenario, phase: Phase) -> float:
    if phase.operation == "MIXED":
        return sum(scenario.sizes) / len(scenario.sizes)
    return phase.size
