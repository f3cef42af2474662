"""GET latency per tier, moves into the cold tier and archive restores, measured through
the engine in this process.

    python -m benchmarks.tier_latency [--backend local|rados] [--ceph-conf F] [--quick]

The deployment has four tiers: hot, warm (zstd 9, its own pool), cold instant
and cold archive, both in a bucket of a moto_server started here on loopback
(the stand-in for a remote S3 endpoint: a real one adds its network's round
trips). The chunk cache, the hot cache and the cold tier's block cache are
off or bypassed, so every GET reads its tier; each object is read once.

A fifth, ``warm-ec`` (ONEZONE_IA), is the warm tier erasure-coded (k=2, m=1,
failure domain osd: the bytes in an erasure-coded pool, the references in a
replicated catalog); on RADOS only when the cluster has three OSDs up
(``CEPH_OSDS=3 scripts/dev-cluster up``), on the embedded backend always (its
data pool is a plain one there: the row is the split's own cost).

- ``get-<tier>`` rows: for each tier and size (4 KiB, 4 MiB), OBJECTS distinct
  objects written with the tier's storage class, each read whole once
  (HEAD plus body, sequentially): p50/p99 in ms. A 4 KiB object is stored
  inline in the index whatever its class, so its figure is an index read.
- ``move-cold``: the 4 MiB hot objects moved to cold instant one by one
  (read, packed, uploaded, read back and compared, switched): MB/s.
- ``restore``: archived 4 MiB objects restored (copied back to hot): seconds each.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import tiering
from benchmarks.clock import Clock
from benchmarks.targets import Target, start_moto
from engine import (
    DEFAULT_TIERS,
    Engine,
    EngineSettings,
    ErasureCode,
    Operation,
    Principal,
    PutRequest,
    RemoteSettings,
    TierSettings,
    layout,
)
from storage.factory import open_backend

KiB, MiB = 1024, 1024 * 1024
OBJECTS, OBJECTS_QUICK = 48, 8
SIZES = (4 * KiB, 4 * MiB)
OWNER = Principal.user("bench")
CLASSES = {"hot": "STANDARD", "warm": "STANDARD_IA", "warm-ec": "ONEZONE_IA",
           "cold": "GLACIER_IR"}


def tiers(endpoint: str, bucket: str, erasure: bool) -> tuple[TierSettings, ...]:
    def remote(prefix: str) -> RemoteSettings:
        return RemoteSettings(endpoint, bucket, prefix=prefix, access_key="bench",
                              secret_key="bench")

    hot, warm = DEFAULT_TIERS
    ec = ()
    if erasure:
        ec = (TierSettings("warm-ec", zstd_level=warm.zstd_level, reported_class="ONEZONE_IA",
                           storage_classes=("ONEZONE_IA",), erasure=ErasureCode(2, 1, "osd")),)
    return (
        hot,
        TierSettings(warm.name, zstd_level=warm.zstd_level, storage_classes=("STANDARD_IA",),
                     reported_class=warm.reported_class),
        *ec,
        TierSettings("cold", storage_classes=("GLACIER_IR",), reported_class="GLACIER_IR",
                     remote=remote("instant/")),
        TierSettings("archive", storage_classes=("GLACIER",), reported_class="GLACIER",
                     remote=remote("archive/"), archive=True),
    )


async def _body(data: bytes):
    yield data


def _ms(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(p99 * 1000, 2), "samples": len(ordered)}


class TierLatencyBench:
    def __init__(self, kind: str, moto: Target, ceph_conf: str | None = None) -> None:
        self.kind = kind
        self.prefix = "bench" + uuid.uuid4().hex[:8]
        self.data_dir = Path(tempfile.mkdtemp(prefix="atonix-tierlat-"))
        self.backend = open_backend(kind, data_dir=self.data_dir / "data", ceph_conf=ceph_conf)
        self.erasure = kind == "local" or _osds_up(ceph_conf) >= 3
        settings = EngineSettings(
            pool_prefix=self.prefix, tiers=tiers(moto.endpoint, self.prefix, self.erasure),
            cache_bytes=0, hot_cache_bytes=0,
        )
        self.engine = Engine.over(self.backend, settings)

    async def _bucket(self, name: str):
        await self.engine.create_bucket(OWNER, name, "us-east-1")
        return await self.engine.bucket(OWNER, name, Operation.PUT_OBJECT)

    async def _write(self, bucket, keys: list[str], size: int, storage_class: str) -> None:
        for key in keys:
            data = os.urandom(size)
            await bucket.put(key, PutRequest(body=_body(data), size=size,
                                             storage_class=storage_class))

    async def _get(self, name: str, key: str) -> float:
        start = time.perf_counter()
        reader = await self.engine.bucket(OWNER, name, Operation.GET_OBJECT, key=key)
        entry = await reader.head(key)
        async for _ in reader.read(entry).body():
            pass
        return time.perf_counter() - start

    async def gets(self, n: int) -> list[dict]:
        out = []
        for tier, storage_class in CLASSES.items():
            if tier == "warm-ec" and not self.erasure:
                continue
            bucket = await self._bucket(f"get-{tier}")
            for size in SIZES:
                keys = [f"s{size}-{i:04d}" for i in range(n)]
                await self._write(bucket, keys, size, storage_class)
                self._drop_remote_blocks()
                samples = [await self._get(f"get-{tier}", k) for k in keys]
                out.append({"operation": f"get-{tier}", "size": size, **_ms(samples)})
        return out

    async def move_to_cold(self, n: int) -> dict:
        bucket = await self.engine.bucket(OWNER, "get-hot", Operation.PUT_OBJECT)
        keys = [f"s{4 * MiB}-{i:04d}" for i in range(n)]
        clock = Clock()
        clock.start()
        moved = 0
        for key in keys:
            moved += (await bucket.transition(key, "cold")).moved_bytes
        seconds = clock.stop()
        return {"operation": "move-cold", "objects": n, "bytes": moved,
                "seconds": round(seconds, 2), "mb_per_s": round(moved / MiB / seconds, 1),
                "cpu": round(clock.cores, 2)}

    async def restores(self, n: int) -> dict:
        bucket = await self._bucket("archived")
        keys = [f"a{i:04d}" for i in range(n)]
        await self._write(bucket, keys, 4 * MiB, "GLACIER")
        self._drop_remote_blocks()
        samples = []
        for key in keys:
            start = time.perf_counter()
            await bucket.restore(key, 1)
            samples.append(time.perf_counter() - start)
        return {"operation": "restore", "size": 4 * MiB, **_ms(samples)}

    def _drop_remote_blocks(self) -> None:
        """Every read is a first read: nothing from the writes stays in a block cache."""
        for pool in self.engine._services.chunks.store.tiers.values():
            blocks = getattr(pool, "_blocks", None)
            if blocks is not None:
                for name in {k[0] for k in blocks._blocks}:
                    blocks.forget(name)

    async def close(self) -> None:
        if self.kind == "rados":
            pools = (layout.META_POOL, layout.DATA_POOL, layout.CHUNKS_POOL, "chunks.warm",
                     "chunks.warm-ec", "chunks.warm-ec.ec", "chunks.cold", "chunks.archive")
            for pool in pools:
                with contextlib.suppress(Exception):
                    await self.backend.delete_pool(f"{self.prefix}.{pool}")
        await self.engine.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _osds_up(ceph_conf: str | None) -> int:
    """OSDs up in the cluster (0 if it cannot be asked)."""
    try:
        done = subprocess.run(["ceph", "-c", ceph_conf or "/etc/ceph/ceph.conf", "osd", "stat",
                               "-f", "json"], capture_output=True, text=True, timeout=30)
        return int(json.loads(done.stdout)["num_up_osds"])
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return 0


async def measure(kind: str, quick: bool = False, ceph_conf: str | None = None) -> list[dict]:
    moto = start_moto()
    bench = TierLatencyBench(kind, moto, ceph_conf)
    await bench.engine.connect()
    n = OBJECTS_QUICK if quick else OBJECTS
    try:
        return [*await bench.gets(n), await bench.move_to_cold(n), await bench.restores(n // 2)]
    finally:
        await bench.close()
        moto.stop()


if __name__ == "__main__":
    tiering.main(measure, __doc__)
