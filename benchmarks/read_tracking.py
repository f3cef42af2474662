"""What counting reads for tiering costs a GET: ``python -m benchmarks.read_tracking``.

An in-process micro benchmark (not part of the suite: no HTTP, no gateway): an
engine on the embedded backend serves N GetObjects of one 4 KiB object through
its interface (bucket decision, head, read of the body), as the S3 front end
does, with read tracking off (sample rate 0), on (every read counted) and
sampled (a tenth counted). Rounds alternate between the three so drift hits
them alike; the best and the median CPU time per GET of each are reported, then the time of
one flush of reads of many distinct versions (the background task's work).
The GET loop's rounds vary by several microseconds on a busy machine, so the
synchronous ``read`` step, where a read is counted, is also timed alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

from engine import Engine, EngineSettings, Operation, Principal, PutRequest, ReadTracking
from storage.factory import open_backend

OWNER = Principal.user("bench")
BUCKET = "bench"
SIZE = 4096
MODES = {"off": 0.0, "on": 1.0, "sampled 10%": 0.1}


async def _body(data: bytes):
    yield data


async def _engine(data_dir: str, sample_rate: float) -> Engine:
    engine = Engine.over(
        open_backend("local", data_dir=data_dir), EngineSettings(pool_prefix="bench"),
        reads=ReadTracking(flush_seconds=3600.0, sample_rate=sample_rate),
    )
    await engine.start()
    await engine.create_bucket(OWNER, BUCKET, "us-east-1")
    return engine


async def _put(engine: Engine, key: str) -> None:
    bucket = await engine.bucket(OWNER, BUCKET, Operation.PUT_OBJECT)
    await bucket.put(key, PutRequest(body=_body(os.urandom(SIZE)), size=SIZE))


async def _get(engine: Engine, key: str) -> None:
    bucket = await engine.bucket(OWNER, BUCKET, Operation.GET_OBJECT, key=key)
    entry = await bucket.head(key)
    async for _ in bucket.read(entry).body():
        pass


async def _cpu_us_per_get(engine: Engine, gets: int) -> float:
    start = time.process_time()
    for _ in range(gets):
        await _get(engine, "k")
    return (time.process_time() - start) / gets * 1e6


async def _read_call_ns(engine: Engine, calls: int) -> float:
    """The synchronous ``read`` step alone (where a read is counted), without the body."""
    bucket = await engine.bucket(OWNER, BUCKET, Operation.GET_OBJECT, key="k")
    entry = await bucket.head("k")
    start = time.process_time()
    for _ in range(calls):
        bucket.read(entry)
    return (time.process_time() - start) / calls * 1e9


async def _flush_seconds(engine: Engine, versions: int) -> float:
    """One flush of one read each of ``versions`` distinct objects."""
    for n in range(versions):
        await _put(engine, f"f/{n:06d}")
        await _get(engine, f"f/{n:06d}")
    reads = (await engine.bucket(OWNER, BUCKET, Operation.PUT_OBJECT)).reads()
    start = time.perf_counter()
    await reads.flush()
    return time.perf_counter() - start


async def run(gets: int, rounds: int, versions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engines = {m: await _engine(f"{tmp}/{i}", r) for i, (m, r) in enumerate(MODES.items())}
        for engine in engines.values():
            await _put(engine, "k")
            await _cpu_us_per_get(engine, 2000)  # warm caches and the interpreter
        samples: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(rounds):
            for mode, engine in engines.items():
                samples[mode].append(await _cpu_us_per_get(engine, gets))
        for mode, values in samples.items():
            print(f"tracking {mode:12s} {min(values):6.2f} us CPU per GET at best, median "
                  f"{statistics.median(values):6.2f} (rounds: {len(values)})")
        # The best round is the one least disturbed by the rest of the machine.
        off, on = min(samples["off"]), min(samples["on"])
        print(f"cost of counting: {on - off:+.2f} us per GET ({(on - off) / off:+.1%})")
        for mode, engine in engines.items():
            calls = [await _read_call_ns(engine, 200_000) for _ in range(rounds)]
            print(f"tracking {mode:12s} read() step alone: {min(calls):5.0f} ns CPU at best")
        seconds = await _flush_seconds(engines["on"], versions)
        print(f"one flush of {versions} versions' reads: {seconds * 1e3:.1f} ms")
        for engine in engines.values():
            await engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=20_000, help="GETs per round and mode")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--versions", type=int, default=5000, help="distinct versions flushed")
    args = parser.parse_args()
    asyncio.run(run(args.gets, args.rounds, args.versions))


if __name__ == "__main__":
    main()
