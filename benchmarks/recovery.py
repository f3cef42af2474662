"""Recovery time: how long a bucket of 10^4 objects takes to come back (RTO).

    python -m benchmarks.recovery [--backend local|rados] [--ceph-conf F] [--objects N]

On one backend, in this process, through the engine's own interface:

- fill a versioned bucket with N objects (every 20th 256 KiB, chunked and
  deduplicated; the rest 4 KiB, inline), note the time, delete them all
  (delete markers), then time a point-in-time restore to the noted time
  (``pitr-restore``: clones of the old versions, no byte copied);
- time a backup run of the restored bucket to a bucket on another S3
  endpoint, moto_server (``backup-run``: every object streamed out and
  read back to verify it);
- time the restore of that run into a new bucket (``backup-restore``: every
  object streamed back in, its ETag checked).

Each measurement is objects, seconds, objects/s and ``rto_s_per_10k`` (the
seconds scaled to 10^4 objects), set beside the seed's RTO target of one
hour. The suite's ``recovery`` scenario (benchmarks/plugins.py) runs this on
each backend; the pools (rados) or data directory (local) are removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

from backup.restore import BackupRestorer
from backup.runner import BackupRunner
from backup.targets import Endpoint, Target, open_target, s3_client
from benchmarks.clock import Clock
from engine import ENABLED, Engine, EngineSettings, Operation, Principal, PutRequest, layout
from storage.factory import open_backend

KiB = 1024
OBJECTS, OBJECTS_QUICK = 10**4, 500
SMALL, LARGE, LARGE_EVERY = 4 * KiB, 256 * KiB, 20  # every 20th object is chunked
IN_FLIGHT = 32  # puts and deletes in flight while filling
RTO_OBJECTS = 10**4  # rto_s_per_10k: the seconds scaled to this many objects
SEED_RTO_S = 3600.0  # the seed's recovery time objective: one hour
OWNER = Principal.user("bench")
SERVICE = Principal.service("bench")
REGION = "us-east-1"
MOTO_KEYS = ("bench", "bench")  # moto_server accepts any credentials


def object_size(i: int) -> int:
    return LARGE if i % LARGE_EVERY == LARGE_EVERY - 1 else SMALL


def payload(i: int) -> bytes:
    """Object i's bytes: random, seeded by i (the same on every run and every read)."""
    return random.Random(i).randbytes(object_size(i))


def key_for(i: int) -> str:
    return f"obj/{i:06d}"


def measurement(operation: str, objects: int, seconds: float, cores: float, **extra) -> dict:
    """One timed step: objects/s and the seconds 10^4 objects would take at that rate."""
    return {
        "operation": operation,
        "objects": objects,
        "seconds": round(seconds, 3),
        "objects_per_s": round(objects / seconds, 1) if seconds > 0 else None,
        "rto_s_per_10k": round(seconds * RTO_OBJECTS / objects, 2) if objects else None,
        "cpu": round(cores, 2),
        **extra,
    }


async def timed(work: Awaitable) -> tuple[object, float, float]:
    """(result, wall seconds, process cores busy) of awaiting ``work``."""
    clock = Clock()
    clock.start()
    result = await work
    return result, clock.stop(), clock.cores


async def bounded(items: Iterable, work: Callable[..., Awaitable], limit: int = IN_FLIGHT):
    slots = asyncio.Semaphore(limit)

    async def one(item) -> None:
        async with slots:
            await work(item)

    await asyncio.gather(*(one(item) for item in items))


async def body_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


def moto_bucket(endpoint: str, name: str) -> None:
    """Create the backup target bucket on the remote endpoint."""
    s3_client(endpoint, *MOTO_KEYS, REGION).create_bucket(Bucket=name)


class Recovery:
    """One backend's measurements, on a fresh namespace removed afterwards."""

    def __init__(self, kind: str, objects: int, moto_endpoint: str,
                 ceph_conf: str | None = None) -> None:
        self.kind, self.n, self.moto = kind, objects, moto_endpoint
        self.prefix = "bench" + uuid.uuid4().hex[:8]
        self.data_dir = Path(tempfile.mkdtemp(prefix="atonix-recovery-"))
        self.backend = open_backend(kind, data_dir=self.data_dir / "data", ceph_conf=ceph_conf)
        self.engine = Engine.over(self.backend, EngineSettings(pool_prefix=self.prefix))
        self.bucket = "recovery-" + uuid.uuid4().hex[:8]

    async def run(self) -> list[dict]:
        try:
            await self.engine.connect()
            try:
                pitr = await self.pitr()
                return [pitr, *await self.backup()]
            finally:
                await self.close()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    async def close(self) -> None:
        if self.kind == "rados":
            for pool in (layout.META_POOL, layout.DATA_POOL, layout.CHUNKS_POOL):
                with contextlib.suppress(Exception):  # a pool never made: nothing to remove
                    await self.backend.delete_pool(layout.pool_name(self.prefix, pool))
        await self.engine.close()

    async def fill(self) -> float:
        """Put N objects in a new versioned bucket; the instant right after the last one."""
        await self.engine.create_bucket(OWNER, self.bucket, REGION)
        handle = await self.engine.bucket(OWNER, self.bucket, Operation.PUT_OBJECT)
        await handle.set_versioning(ENABLED)

        async def put(i: int) -> None:
            data = payload(i)
            await handle.put(key_for(i), PutRequest(body=body_of(data), size=len(data)))

        await bounded(range(self.n), put)
        return self.engine.clock.time()

    async def pitr(self) -> dict:
        started = time.perf_counter()
        at = await self.fill()
        fill_s = time.perf_counter() - started
        await asyncio.sleep(0.05)
        handle = await self.engine.bucket(OWNER, self.bucket, Operation.DELETE_OBJECT)
        await bounded((key_for(i) for i in range(self.n)), handle.delete)
        report, seconds, cores = await timed(self.engine.restore(SERVICE, self.bucket, at))
        if report.created != self.n:
            raise AssertionError(f"point-in-time restore created {report.created}, not {self.n}")
        await self.check(self.bucket)
        return measurement("pitr-restore", self.n, seconds, cores, fill_s=round(fill_s, 2),
                           bytes=report.bytes)

    async def backup(self) -> list[dict]:
        remote = self.bucket + "-backup"
        await asyncio.to_thread(moto_bucket, self.moto, remote)
        endpoint = Endpoint(url=self.moto, access_key=MOTO_KEYS[0], secret_key=MOTO_KEYS[1])
        target = open_target(f"s3://{remote}", self.engine, SERVICE, endpoint)
        runner = BackupRunner(self.engine, SERVICE)
        run, run_s, run_cores = await timed(runner.run(self.bucket, target))
        if run.objects != self.n:
            raise AssertionError(f"backup run copied {run.objects} objects, not {self.n}")
        return [measurement("backup-run", self.n, run_s, run_cores, bytes=run.bytes_copied,
                            concurrency=runner.concurrency),
                await self.backup_restore(run.run_id, target)]

    async def backup_restore(self, run_id: str, target: Target) -> dict:
        to = self.bucket + "-restored"
        restorer = BackupRestorer(self.engine, SERVICE)
        summary, seconds, cores = await timed(restorer.restore(run_id, target, to=to))
        if summary.restored != self.n:
            raise AssertionError(f"backup restore restored {summary.restored}, not {self.n}")
        await self.check(to)
        return measurement("backup-restore", self.n, seconds, cores, bytes=summary.bytes,
                           concurrency=restorer.concurrency)

    async def check(self, bucket: str) -> None:
        """Spot-check restored content: the first small and the first large object."""
        handle = await self.engine.bucket(SERVICE, bucket, Operation.GET_OBJECT)
        for i in (0, LARGE_EVERY - 1):
            if i >= self.n:
                continue
            got = b"".join([p async for p in handle.read(await handle.head(key_for(i))).body()])
            if got != payload(i):
                raise AssertionError(f"{bucket}/{key_for(i)} restored with other bytes")


def measure(kind: str, objects: int, moto_endpoint: str, ceph_conf: str | None = None) -> list:
    """The three measurements on one backend (``moto_endpoint``: the remote S3 endpoint)."""
    return asyncio.run(Recovery(kind, objects, moto_endpoint, ceph_conf).run())


def main(argv: list[str] | None = None) -> None:
    from benchmarks.targets import start_moto

    p = argparse.ArgumentParser(prog="python -m benchmarks.recovery",
                                description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["local", "rados"], default="local")
    p.add_argument("--ceph-conf", help="ceph.conf of the cluster (rados)")
    p.add_argument("--objects", type=int, default=OBJECTS)
    args = p.parse_args(argv)
    moto = start_moto()
    try:
        for result in measure(args.backend, args.objects, moto.endpoint, args.ceph_conf):
            print(json.dumps(result))
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
