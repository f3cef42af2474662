"""Tiering: how long ``tier plan`` takes over a large bucket, and how fast the mover moves.

    python -m benchmarks.tiering [--backend local|rados] [--ceph-conf F] [--objects N]

On one backend, in this process, through the engine's interface and the
tiering service (what ``atonix-cli tier`` runs):

- ``plan``: a bucket of N index entries (filled with the listing benchmark's
  bulk loader: entries as a 1 MiB object's, written in 2023, so a rule moving
  data after 30 days wants every one of them) is planned; the value is the
  seconds for N objects (issue target: under 60 s for 10^6);
- ``move``: MOVE_OBJECTS objects of 1 MiB (random: incompressible) written
  hot are moved to warm by ``apply`` (read, re-written through the warm
  tier's writer at zstd 9, read back and compared, switched); MB/s of data
  moved, throttle off.

The namespace (pools, or the data directory) is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from benchmarks.clock import Clock
from benchmarks.listing import fill_index
from engine import (
    Engine,
    EngineSettings,
    OffsetClock,
    Operation,
    Principal,
    PutRequest,
    layout,
)
from storage.factory import open_backend
from tiering.policy import HOT, WARM, Match, Policy, Rule, Throttle, Tier, Transition
from tiering.service import TieringService

MiB = 1024 * 1024
PLAN_OBJECTS, PLAN_OBJECTS_QUICK = 10**6, 10**4
MOVE_OBJECTS, MOVE_OBJECTS_QUICK = 64, 8
OWNER = Principal.user("bench")
SERVICE = Principal.service("bench")
POLICY = Policy(
    tiers=(Tier("hot", HOT), Tier("warm", WARM, zstd_level=9)),
    rules=(Rule("age", Match(), transitions=(Transition("warm", days=30),)),),
    throttle=Throttle(mb_per_s=1e6, ops_per_s=1e6),  # measure the mover, not its brake
)


async def _body(data: bytes):
    yield data


class TieringBench:
    def __init__(self, kind: str, ceph_conf: str | None = None) -> None:
        self.kind = kind
        self.prefix = "bench" + uuid.uuid4().hex[:8]
        self.data_dir = Path(tempfile.mkdtemp(prefix="atonix-tiering-"))
        self.backend = open_backend(kind, data_dir=self.data_dir / "data", ceph_conf=ceph_conf)
        self.clock = OffsetClock(0.0)  # moved 40 days on before the mover runs
        self.engine = Engine.over(
            self.backend, EngineSettings(pool_prefix=self.prefix), clock=self.clock
        )
        self.service = TieringService(self.engine, SERVICE, POLICY, {"hot", "warm"})

    async def plan(self, n: int) -> dict:
        record = await self.engine.create_bucket(OWNER, "plan", "us-east-1")
        await fill_index(self.engine._services, record.bucket_id, n)
        clock = Clock()
        clock.start()
        report = await self.service.plan(["plan"])
        seconds = clock.stop()
        assert report.scanned == n and sum(m[0] for m in report.moves.values()) == n
        return {"operation": "plan", "objects": n, "seconds": round(seconds, 2),
                "objects_per_s": round(n / seconds, 1), "cpu": round(clock.cores, 2)}

    async def move(self, count: int) -> dict:
        await self.engine.create_bucket(OWNER, "move", "us-east-1")
        bucket = await self.engine.bucket(OWNER, "move", Operation.PUT_OBJECT)
        for i in range(count):
            data = os.urandom(MiB)
            await bucket.put(f"o{i:04d}", PutRequest(body=_body(data), size=len(data)))
        self.clock.offset = 40 * 86400.0  # past the rule's 30 days
        clock = Clock()
        clock.start()
        report = await self.service.apply(["move"])
        seconds = clock.stop()
        assert report.moved_objects == count and not report.failed, report
        return {"operation": "move", "objects": count, "bytes": report.moved_bytes,
                "seconds": round(seconds, 2),
                "mb_per_s": round(report.moved_bytes / MiB / seconds, 1),
                "objects_per_s": round(count / seconds, 1), "cpu": round(clock.cores, 2)}

    async def close(self) -> None:
        if self.kind == "rados":
            for pool in (layout.META_POOL, layout.DATA_POOL, layout.CHUNKS_POOL, "chunks.warm"):
                with contextlib.suppress(Exception):
                    await self.backend.delete_pool(f"{self.prefix}.{pool}")
        await self.engine.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


async def measure(kind: str, quick: bool = False, ceph_conf: str | None = None) -> list[dict]:
    bench = TieringBench(kind, ceph_conf)
    await bench.engine.connect()
    try:
        plan = await bench.plan(PLAN_OBJECTS_QUICK if quick else PLAN_OBJECTS)
        move = await bench.move(MOVE_OBJECTS_QUICK if quick else MOVE_OBJECTS)
        return [plan, move]
    finally:
        await bench.close()


def main(run=None, doc: str | None = None) -> None:
    """The command line of an in-process tiering benchmark (this one by default)."""
    p = argparse.ArgumentParser(description=(doc or __doc__).splitlines()[0])
    p.add_argument("--backend", choices=["local", "rados"], default="local")
    p.add_argument("--ceph-conf")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    rows = asyncio.run((run or measure)(args.backend, args.quick, args.ceph_conf))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
