"""Listing cost against bucket size: a page of a 10^6-key bucket should cost what a page of
a 10^3-key bucket costs.

    python -m benchmarks.listing --backend local|rados [--ceph-conf F] \\
        --sizes 1000,100000,1000000 [--out listing.json]

For each size it fills a fresh bucket through the engine's bulk loader
(``BucketIndex.put_many``: batched index writes, split by the same split
logic as single PUTs), then measures, through ``ObjectService.list`` (what
ListObjectsV2 calls), pages of 1000:

- ``first``: the first page, no delimiter;
- ``first /``: the first page with delimiter ``/`` (1000 common prefixes);
- ``mid``: the page after the middle key (``start_after``);
- ``mid /``: the same with the delimiter;
- ``cold``: the first page on a new engine (its route cache empty: a new gateway);
- ``scan``: keys per second for a scan of the whole bucket, page after page.

With ``--versions V`` every key also has V-1 noncurrent versions, and with
``--hot-versions H`` the middle key has H-1 (S3 versioning: they live beside
the keys in the index, and an object listing must not pay for them); then
``versions`` times the first ListObjectVersions page too.

Keys are ``dir<NNNN>/obj<NNNNNNN>`` in 1000 directories, so every size has
the same page shapes. Besides latency it counts backend operations per page
(reads of the shard map, headers and entries): the number that must stay
flat. Prints a table and writes JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchmarks.clock import Clock
from engine import layout
from engine.assembly import EngineSettings, ObjectEngine
from engine.index_shards import DEFAULT_SPLIT_THRESHOLD
from engine.records import ObjectEntry, Segment
from engine.versions import version_id
from storage.factory import open_backend
from storage.instrumented import InstrumentedBackend

DIRS = 1000
PAGE = 1000
FILL_CHUNK = 20_000  # entries handed to put_many at a time (bounds memory)


class OpCounter:
    """Counts backend operations (storage.instrumented.OpObserver)."""

    def __init__(self) -> None:
        self.ops: Counter[str] = Counter()

    def backend_op(self, op: str, seconds: float, ok: bool) -> None:
        self.ops[op] += 1

    def take(self) -> dict[str, int]:
        out, self.ops = dict(self.ops), Counter()
        return out


# Percentiles reported per page measurement, with the samples each needs to mean
# anything (fewer: None). The median is always reported.
PERCENTILES = (("90", 0.9, 10), ("99", 0.99, 100), ("999", 0.999, 1000))


def percentile_ms(times: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in ms; None with too few samples."""
    needed = next(n for _, p, n in PERCENTILES if p == q)
    if len(times) < needed:
        return None
    return round(times[min(len(times) - 1, max(0, math.ceil(q * len(times)) - 1))] * 1000, 2)


def key_for(i: int, n: int) -> str:
    """The i-th key in sorted order of an n-key bucket (DIRS directories)."""
    per_dir = max(n // DIRS, 1)
    return f"dir{i // per_dir:04d}/obj{i % per_dir:07d}"


def noncurrent_for(
    bucket_id: str, versions: int, hot_key: str, hot_versions: int
) -> Callable[[str], list[tuple[str, ObjectEntry]]]:
    """Each key's noncurrent versions, as the bulk loader files them (token, entry)."""
    stamp = (int(1.7e12) << 16) + (1 << 40)

    def make(key: str) -> list[tuple[str, ObjectEntry]]:
        count = (hot_versions if key == hot_key and hot_versions else versions) - 1
        out = []
        for j in range(count):
            vid = version_id(stamp - j - 1, "0000beef")
            entry = entry_for(bucket_id, j)
            entry.version_id, entry.stamp = vid, stamp - j - 1
            out.append((vid, entry))
        return out

    return make


def entry_for(bucket_id: str, i: int) -> ObjectEntry:
    """A typical non-inline entry (~250 bytes: listing reads metadata, not data)."""
    return ObjectEntry(
        size=1 << 20,
        etag=f'"{i:032x}"',
        mtime=1.7e9 + i,
        segments=[Segment(f"{bucket_id}.{i:032x}", 1 << 20, 4 << 20, 1)],
    )


async def fill_index(
    engine: ObjectEngine,
    bucket_id: str,
    n: int,
    noncurrent: Callable[[str], list[tuple[str, ObjectEntry]]] | None = None,
    *,
    verbose: bool = False,
) -> None:
    """Give the bucket n keys (``key_for``) through the engine's bulk loader."""
    for lo in range(0, n, FILL_CHUNK):
        upto = min(n, lo + FILL_CHUNK)
        chunk = [(key_for(i, n), entry_for(bucket_id, i)) for i in range(lo, upto)]
        await engine.index.put_many(bucket_id, chunk, noncurrent)
        if verbose:
            print(f"  filled {lo + len(chunk)}/{n}", file=sys.stderr)
    await engine.index.drain()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.counter = OpCounter()
        self.prefix = "bench" + uuid.uuid4().hex[:8]
        self.own_dir = args.data_dir is None
        self.data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="atonix-listing-"))
        self.backends: list = []

    async def engine(self) -> ObjectEngine:
        kind = self.args.backend
        raw = open_backend(kind, data_dir=self.data_dir, ceph_conf=self.args.ceph_conf)
        await raw.connect()
        self.backends.append(raw)
        backend = InstrumentedBackend(raw, self.counter)
        settings = EngineSettings(
            pool_prefix=self.prefix, index_split_threshold=self.args.threshold
        )
        engine = ObjectEngine(backend, settings)  # type: ignore[arg-type]
        await engine.prepare()
        return engine

    async def close(self) -> None:
        if self.args.backend == "rados" and not self.args.keep and self.backends:
            for pool in (layout.META_POOL, layout.DATA_POOL, layout.CHUNKS_POOL):
                await self.backends[0].delete_pool(layout.pool_name(self.prefix, pool))
        for backend in self.backends:
            await backend.close()
        if self.own_dir and not self.args.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    async def fill(self, engine: ObjectEngine, bucket: str, n: int) -> float:
        bid = (await engine.buckets.get(bucket)).bucket_id
        noncurrent = None
        if self.args.versions > 1 or self.args.hot_versions > 1:
            hot = key_for(n // 2, n)
            noncurrent = noncurrent_for(bid, self.args.versions, hot, self.args.hot_versions)
        started = time.perf_counter()
        await fill_index(engine, bid, n, noncurrent, verbose=self.args.verbose)
        return time.perf_counter() - started

    async def page(self, engine: ObjectEngine, bucket: str, **query) -> tuple[float, int, int]:
        """(seconds, items, backend ops) for one page."""
        self.counter.take()
        started = time.perf_counter()
        page = await engine.objects.list(bucket, max_keys=PAGE, **query)
        seconds = time.perf_counter() - started
        ops = sum(self.counter.take().values())
        return seconds, len(page.entries) + len(page.common_prefixes), ops

    async def timed(self, engine: ObjectEngine, bucket: str, **query) -> dict:
        clock, runs = Clock(), []
        for _ in range(self.args.repeat):
            clock.start()
            runs.append(await self.page(engine, bucket, **query))
            clock.stop()
        times = sorted(r[0] for r in runs)
        return {
            "median_ms": round(statistics.median(times) * 1000, 2),
            **{f"p{name}_ms": percentile_ms(times, q) for name, q, _ in PERCENTILES},
            "pages_per_s": round(len(times) / clock.wall, 1),
            "cpu": round(clock.cores, 2),
            "items": runs[0][1],
            "backend_ops": runs[-1][2],
        }

    async def timed_versions(self, engine: ObjectEngine, bucket: str, **query) -> dict:
        """A ListObjectVersions page of 1000 versions (median of the repeats)."""
        times = []
        for _ in range(self.args.repeat):
            started = time.perf_counter()
            page = await engine.objects.list_versions(bucket, max_keys=PAGE, **query)
            times.append(time.perf_counter() - started)
        return {
            "median_ms": round(statistics.median(times) * 1000, 2),
            "items": len(page.versions) + len(page.common_prefixes),
        }

    async def scan(self, engine: ObjectEngine, bucket: str, n: int) -> dict:
        limit = min(n, self.args.scan_max)
        seen, after, pages = 0, "", 0
        self.counter.take()
        clock = Clock()
        clock.start()
        while seen < limit:
            page = await engine.objects.list(bucket, start_after=after, max_keys=PAGE)
            seen += len(page.entries)
            pages += 1
            if not page.is_truncated:
                break
            after = page.next_marker
        seconds = clock.stop()
        ops = sum(self.counter.take().values())
        return {
            "keys": seen,
            "pages": pages,
            "seconds": round(seconds, 2),
            "keys_per_s": round(seen / seconds),
            "cpu": round(clock.cores, 2),
            "backend_ops_per_page": round(ops / max(pages, 1), 2),
        }

    async def run_size(self, n: int) -> dict:
        engine = await self.engine()
        bucket = "listing-" + uuid.uuid4().hex[:10]
        await engine.buckets.create(bucket, "bench")
        fill_s = await self.fill(engine, bucket, n)
        bid = (await engine.buckets.get(bucket)).bucket_id
        shards = len(await engine.index.shards(bid))
        splitter = engine.index.splitter
        frozen_avg = splitter.frozen_s_total / max(splitter.splits, 1)
        mid = key_for(n // 2, n)
        mid_dir = mid.split("/")[0] + "/"
        # A gateway that never saw the bucket (empty route cache), three times.
        colds = sorted([await self.page(await self.engine(), bucket) for _ in range(3)])
        cold = colds[1]
        result = {
            "keys": n,
            "shards": shards,
            "fill_s": round(fill_s, 1),
            "splits": splitter.splits,
            "split_frozen_ms_avg": round(frozen_avg * 1000, 1),
            "split_frozen_ms_max": round(splitter.frozen_s_max * 1000, 1),
            "cold_first_ms": round(cold[0] * 1000, 2),
            "cold_first_ops": cold[2],
            "first": await self.timed(engine, bucket),
            "first_delim": await self.timed(engine, bucket, delimiter="/"),
            "mid": await self.timed(engine, bucket, start_after=mid),
            "mid_delim": await self.timed(engine, bucket, start_after=mid_dir, delimiter="/"),
            "scan": await self.scan(engine, bucket, n),
            "versions": self.args.versions,
            "hot_versions": self.args.hot_versions,
            "versions_first": await self.timed_versions(engine, bucket),
            "versions_mid": await self.timed_versions(engine, bucket, key_marker=mid),
        }
        if not self.args.keep:
            await self.empty(engine, bid)
        return result

    async def empty(self, engine: ObjectEngine, bid: str) -> None:
        """Drop the bucket's index shards (much faster than deleting keys one by one)."""
        await engine.index.destroy(bid)


def print_table(backend: str, results: list[dict]) -> None:
    cols = [
        ("keys", lambda r: f"{r['keys']:,}"),
        ("shards", lambda r: str(r["shards"])),
        ("fill s", lambda r: f"{r['fill_s']}"),
        ("split ms avg|max", lambda r: f"{r['split_frozen_ms_avg']}|{r['split_frozen_ms_max']}"),
        ("cold 1st ms", lambda r: f"{r['cold_first_ms']}"),
        ("1st ms", lambda r: f"{r['first']['median_ms']}"),
        ("1st / ms", lambda r: f"{r['first_delim']['median_ms']}"),
        ("mid ms", lambda r: f"{r['mid']['median_ms']}"),
        ("mid / ms", lambda r: f"{r['mid_delim']['median_ms']}"),
        (
            "ops 1st|/|mid",
            lambda r: "{}|{}|{}".format(
                r["first"]["backend_ops"], r["first_delim"]["backend_ops"], r["mid"]["backend_ops"]
            ),
        ),
        ("scan keys/s", lambda r: f"{r['scan']['keys_per_s']:,}"),
    ]
    rows = [[name for name, _ in cols]] + [[fmt(r) for _, fmt in cols] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    print(f"\nbucket listing, backend={backend}, page={PAGE} (median of repeats)")
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.listing", description=__doc__.split("\n")[0]
    )
    p.add_argument("--backend", choices=["local", "rados"], default="local")
    p.add_argument("--ceph-conf", help="ceph.conf of the cluster (rados)")
    p.add_argument("--data-dir", help="local backend data directory (default: a temp dir)")
    p.add_argument("--sizes", default="1000,100000,1000000", help="comma-separated key counts")
    p.add_argument(
        "--threshold",
        type=int,
        default=DEFAULT_SPLIT_THRESHOLD,
        help="keys per shard before it splits (default: the engine's)",
    )
    p.add_argument("--versions", type=int, default=1, help="versions of every key (1: none)")
    p.add_argument(
        "--hot-versions", type=int, default=0, help="versions of the middle key (0: as the rest)"
    )
    p.add_argument("--repeat", type=int, default=15, help="runs per page measurement")
    p.add_argument("--scan-max", type=int, default=10**7, help="stop the full scan after N keys")
    p.add_argument("--out", default="listing.json", help="JSON results file")
    p.add_argument("--keep", action="store_true", help="keep buckets and pools")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


async def main_async(args: argparse.Namespace, quiet: bool = False) -> list[dict]:
    bench = Bench(args)
    results = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            if not quiet:
                print(f"{args.backend}: {n:,} keys ...", file=sys.stderr)
            results.append(await bench.run_size(n))
            if not quiet:
                print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        await bench.close()
    return results


def measure(backend: str, sizes: list[int], *, ceph_conf: str | None = None, repeat: int = 15,
            scan_max: int = 10**7, quiet: bool = False) -> list[dict]:
    """Run the listing benchmark for ``sizes`` on one backend; one result dict per size."""
    args = parse_args(["--backend", backend, "--sizes", ",".join(map(str, sizes)),
                       "--repeat", str(repeat), "--scan-max", str(scan_max),
                       *(["--ceph-conf", ceph_conf] if ceph_conf else [])])
    return asyncio.run(main_async(args, quiet))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.backend == "rados" and not args.ceph_conf:
        sys.exit("--ceph-conf is required for --backend rados")
    results = asyncio.run(main_async(args))
    print_table(args.backend, results)
    doc = {"backend": args.backend, "threshold": args.threshold, "page": PAGE, "results": results}
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
