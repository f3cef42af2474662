"""Dedupe and compression benchmark: ``python -m benchmarks.dedupe [--sweep] [--size MiB]``.

Datasets (generated, seeded, nothing downloaded):

- *versions*: a file of ``--size`` MiB (default 64) of incompressible bytes,
  then ``--versions`` (20) versions, each made from the previous one by
  overwriting 1% of its bytes in four runs (``--edit-runs``) and inserting
  three short runs.
  Target: all versions together store <= 1.25x one version.
- *insert*: the same file with one byte inserted at the start. Target: >= 95%
  of its chunks are reused.
- *logs*: ``--size`` MiB of realistic text logs (nginx-style access lines and
  application lines with timestamps, IPs, paths, ids). Target: the stored size
  is within 5% of ``zstd -3`` on the whole file (``apt-get install zstd``).

The default run writes everything through the real write path
(``DedupeWriter`` -> ``ChunkStore``) on a fresh local store (or ``--backend
rados`` with ATONIX_CEPH_CONF) and reads it back. ``--sweep`` compares chunk
sizes without storage (chunk + SHA-256 + zstd only) to pick the default.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import zstandard

from benchmarks.clock import Clock
from dedupe import (
    ChunkingConfig,
    ChunkStore,
    CpuPool,
    DedupeConfig,
    DedupeWriter,
    encode_manifest,
    read_range,
)
from dedupe.chunker import StreamChunker
from storage.factory import open_backend

MiB = 1024 * 1024
CANDIDATES = {
    "16k": ChunkingConfig(min_size=4096, avg_size=12288, max_size=65536),
    "32k": ChunkingConfig(min_size=8192, avg_size=24576, max_size=131072),
    "64k": ChunkingConfig(min_size=16384, avg_size=49152, max_size=262144),
    "256k": ChunkingConfig(min_size=65536, avg_size=196608, max_size=1048576),
}

# --- datasets -------------------------------------------------------------------


def next_version(data: bytes, rng: random.Random, edit_runs: int) -> bytes:
    """1% of the bytes overwritten in ``edit_runs`` runs, plus three inserts of 16 B - 4 KiB."""
    buf = bytearray(data)
    run = len(buf) // 100 // edit_runs
    for _ in range(edit_runs):
        at = rng.randrange(0, len(buf) - run)
        buf[at : at + run] = rng.randbytes(run)
    for _ in range(3):
        at = rng.randrange(0, len(buf))
        buf[at:at] = rng.randbytes(rng.randint(16, 4096))
    return bytes(buf)


def versions(size: int, count: int, edit_runs: int = 4, seed: int = 1):
    rng = random.Random(seed)
    data = rng.randbytes(size)
    for _ in range(count):
        yield data
        data = next_version(data, rng, edit_runs)


def log_text(size: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    ips = [".".join(str(rng.randint(1, 254)) for _ in range(4)) for _ in range(500)]
    paths = [
        "/",
        "/index.html",
        "/api/v1/users",
        "/api/v1/orders",
        "/static/app.js",
        "/login",
        "/api/v1/items/{}",
        "/health",
        "/metrics",
        "/search?q={}",
    ]
    agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "curl/8.4.0",
        "python-requests/2.31.0",
        "aws-cli/2.15.0 Python/3.11",
    ]
    msgs = [
        "request completed",
        "cache miss for key {}",
        "user {} logged in",
        "retrying upstream call attempt {}",
        "slow query took {} ms",
        "order {} created",
    ]
    status = [200] * 20 + [201, 204, 301, 304, 400, 403, 404, 500, 503]
    t, out, n = 1_700_000_000.0, [], 0
    while n < size:
        t += rng.expovariate(200)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
        if rng.random() < 0.6:
            path = rng.choice(paths).format(rng.randint(1, 99999))
            line = (
                f'{rng.choice(ips)} - - [{ts}] "{rng.choice(["GET"] * 6 + ["POST", "PUT"])} '
                f'{path} HTTP/1.1" {rng.choice(status)} {rng.randint(0, 50000)} "-" '
                f'"{rng.choice(agents)}" rt={rng.random() * 2:.3f} '
                f"req_id={rng.getrandbits(64):016x}\n"
            )
        else:
            level = rng.choice(["INFO"] * 8 + ["WARN", "ERROR", "DEBUG"])
            svc = f"{rng.choice(['api', 'worker', 'db', 'auth'])}-{rng.randint(1, 8)}"
            msg = rng.choice(msgs).format(rng.randint(1, 100000))
            line = f"{ts} {level:5} [{svc}] trace={rng.getrandbits(48):012x} {msg}\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def zstd_cli_size(data: bytes) -> tuple[int, str]:
    """Size of ``zstd -3`` on the whole file (python-zstandard if the CLI is absent)."""
    if shutil.which("zstd"):
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            out = subprocess.run(
                ["zstd", "-3", "-q", "-c", f.name], capture_output=True, check=True
            )
        return len(out.stdout), "zstd -3 CLI"
    return len(zstandard.ZstdCompressor(level=3).compress(data)), "zstandard level 3 (no CLI)"


# --- sweep: chunking choices without storage ------------------------------------


def chunks_of(data: bytes, config: ChunkingConfig, piece: int = MiB):
    chunker = StreamChunker(config)
    view = memoryview(data)
    for i in range(0, len(data), piece):
        yield from chunker.feed(view[i : i + piece])
    yield from chunker.finish()


def sweep(size: int, count: int, edit_runs: int) -> None:
    print(f"## chunk-size sweep ({size // MiB} MiB, {count} versions, {edit_runs} edit runs)")
    seen = {name: set() for name in CANDIDATES}
    chunk_bytes = dict.fromkeys(CANDIDATES, 0)  # unique chunks, headers included
    manifest_bytes = dict.fromkeys(CANDIDATES, 0)  # 46 B per entry
    first = dict.fromkeys(CANDIDATES, (0, 0))
    secs = dict.fromkeys(CANDIDATES, 0.0)
    base = b""
    for n, data in enumerate(versions(size, count, edit_runs)):
        base = base or data
        for name, cfg in CANDIDATES.items():
            t = time.perf_counter()
            for chunk in chunks_of(data, cfg):
                manifest_bytes[name] += 46
                fp = hashlib.sha256(chunk).digest()
                if fp not in seen[name]:
                    seen[name].add(fp)
                    chunk_bytes[name] += len(chunk) + 72
            secs[name] += time.perf_counter() - t
            if n == 0:
                first[name] = (chunk_bytes[name], manifest_bytes[name])
    logs = log_text(size)
    ref, how = zstd_cli_size(logs)
    print(f"logs: {len(logs) / ref:.3f}x with {how}")
    print(
        "| chunks | 20 versions / one: chunks only | with manifests | 1-byte insert reuse "
        "| logs zstd-3 per chunk | + trained dictionary | chunk+SHA-256 MB/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, cfg in CANDIDATES.items():
        c1, m1 = first[name]
        only = chunk_bytes[name] / c1
        total = (chunk_bytes[name] + manifest_bytes[name]) / (c1 + m1)
        reuse = insert_reuse([bytes(c) for c in chunks_of(base, cfg)], b"\0" + base, cfg)
        plain, with_dict = per_chunk_ratio(logs, cfg)
        mbps = size * count / MiB / secs[name]
        whole = len(logs) / ref
        print(
            f"| {name} | {only:.3f}x | {total:.3f}x | {reuse:.1%} "
            f"| {plain / whole:.1%} | {with_dict / whole:.1%} | {mbps:.0f} |"
        )


def insert_reuse(before: list[bytes], after: bytes, cfg: ChunkingConfig) -> float:
    known = {hashlib.sha256(c).digest() for c in before}
    got = [hashlib.sha256(c).digest() for c in chunks_of(after, cfg)]
    return sum(fp in known for fp in got) / len(got)


def per_chunk_ratio(logs: bytes, cfg: ChunkingConfig) -> tuple[float, float]:
    chunks = [bytes(c) for c in chunks_of(logs, cfg)]
    plain = zstandard.ZstdCompressor(level=3)
    samples, total = [], 0
    for c in chunks:
        if total >= 2 * MiB:
            break
        samples.append(c)
        total += len(c)
    zdict = zstandard.train_dictionary(112_640, samples)
    with_dict = zstandard.ZstdCompressor(level=3, dict_data=zdict)
    a = sum(len(plain.compress(c)) + 72 for c in chunks)
    b = sum(len(with_dict.compress(c)) + 72 for c in chunks) + len(zdict.as_bytes())
    return len(logs) / a, len(logs) / b


# --- end to end through the write path -------------------------------------------


async def measure(
    backend_kind: str = "local",
    *,
    size: int = 64 * MiB,
    count: int = 20,
    edit_runs: int = 4,
    ceph_conf: str | None = None,
) -> dict[str, dict]:
    """Write the three datasets through the real write path; one dict of numbers each.

    ``{"versions": ..., "insert": ..., "logs": ...}`` (see ``bench_*``); ``size``
    is bytes per object. Every pool it creates is deleted again.
    """
    config = DedupeConfig()
    with tempfile.TemporaryDirectory() as tmp:
        if backend_kind == "rados":
            backend = open_backend("rados", ceph_conf=ceph_conf or os.environ["ATONIX_CEPH_CONF"])
        else:
            backend = open_backend("local", data_dir=os.path.join(tmp, "store"))
        await backend.connect()
        pools: list[str] = []
        cpu = CpuPool()
        try:
            for name in ("versions", "insert", "logs"):
                pools.append(f"bench-dedupe-{name}-{uuid.uuid4().hex[:8]}")
                await backend.create_pool(pools[-1])
            stores = [ChunkStore({"hot": backend.pool(p)}) for p in pools]
            return {
                "versions": await bench_versions(stores[0], config, cpu, size, count, edit_runs),
                "insert": await bench_insert(stores[1], config, cpu, size),
                "logs": await bench_logs(stores[2], config, cpu, size),
            }
        finally:
            for p in pools:
                await backend.delete_pool(p)
            await backend.close()
            cpu.close()


class StoredManifests:
    """The manifests written so far, by owner: what the engine's manifest objects are
    to a writer that looks for delta bases (``dedupe.ManifestSource``)."""

    def __init__(self) -> None:
        self.by_owner: dict = {}

    async def load_manifest(self, owner: str):
        return self.by_owner.get(owner)


async def store_object(store, config, cpu, data: bytes, manifests: StoredManifests | None = None):
    manifests = manifests if manifests is not None else StoredManifests()
    writer = DedupeWriter(store, uuid.uuid4().hex, config=config, cpu=cpu, manifests=manifests)
    view = memoryview(data)
    for i in range(0, len(data), 256 * 1024):  # the S3 front end's piece size
        await writer.write(view[i : i + 256 * 1024])
    manifest = await writer.finish()
    manifests.by_owner[manifest.owner] = manifest
    return manifest


async def bench_versions(store, config, cpu, size: int, count: int, edit_runs: int) -> dict:
    chunks, manifests, one, logical = 0, 0, (0, 0), 0
    clock, last, data, written = Clock(), None, b"", StoredManifests()
    for data in versions(size, count, edit_runs):
        before = store.stats.bytes_stored
        clock.start()
        last = await store_object(store, config, cpu, data, written)
        clock.stop()
        chunks += store.stats.bytes_stored - before
        manifests += len(encode_manifest(last))
        logical += len(data)
        one = one if one[0] else (chunks, manifests)
    stored = chunks + manifests
    t = time.perf_counter()
    got = hashlib.sha256()
    async for piece in read_range(store, last, cpu=cpu, read_ahead=config.read_ahead):
        got.update(piece)
    read_secs = time.perf_counter() - t
    assert got.digest() == hashlib.sha256(data).digest(), "read back differs"
    return {
        "size": size, "versions": count, "stored_bytes": stored, "one_version_bytes": sum(one),
        "ratio": stored / sum(one), "chunks_ratio": chunks / one[0], "manifest_bytes": manifests,
        "write_s": clock.wall, "write_mb_per_s": logical / MiB / clock.wall, "cpu": clock.cores,
        "read_mb_per_s": len(data) / MiB / read_secs,
    }


async def bench_insert(store, config, cpu, size: int) -> dict:
    data = random.Random(5).randbytes(size)
    clock = Clock()
    clock.start()
    written = StoredManifests()
    first = await store_object(store, config, cpu, data, written)
    second = await store_object(store, config, cpu, b"!" + data, written)
    clock.stop()
    known = {e.fingerprint for e in first.entries}
    reused = [e for e in second.entries if e.fingerprint in known]
    return {
        "size": size, "chunks": len(second.entries), "reused_chunks": len(reused),
        "reuse": len(reused) / len(second.entries),
        "reused_bytes": sum(e.length for e in reused) / len(data),
        "write_s": clock.wall, "write_mb_per_s": 2 * size / MiB / clock.wall, "cpu": clock.cores,
    }


async def bench_logs(store, config, cpu, size: int) -> dict:
    logs = log_text(size)
    clock = Clock()
    clock.start()
    m = await store_object(store, config, cpu, logs)
    clock.stop()
    ref, how = zstd_cli_size(logs)
    dicts = sum(len(d.as_bytes()) for d in store.dictionaries._tiers["hot"].by_id.values())
    ours = store.stats.bytes_stored + len(encode_manifest(m)) + dicts
    return {
        "size": len(logs), "stored_bytes": ours, "ratio": len(logs) / ours, "zstd_bytes": ref,
        "zstd_ratio": len(logs) / ref, "zstd": how, "vs_zstd": ref / ours,
        "write_s": clock.wall, "write_mb_per_s": len(logs) / MiB / clock.wall, "cpu": clock.cores,
    }


def print_results(backend: str, r: dict[str, dict]) -> None:
    c, v, i, g = DedupeConfig(), r["versions"], r["insert"], r["logs"]
    print(
        f"## write path ({backend}; chunks min/avg/max {c.chunking.min_size}/"
        f"{c.chunking.avg_size}/{c.chunking.max_size}, zstd level {c.zstd_level}, "
        f"dictionary {c.use_dictionary})"
    )
    print(
        f"versions: {v['versions']} x {v['size'] // MiB} MiB stored {v['stored_bytes'] / MiB:.1f}"
        f" MiB = {v['ratio']:.3f}x one version (target <= 1.25x; chunks alone "
        f"{v['chunks_ratio']:.3f}x, manifests {v['manifest_bytes'] / MiB:.1f} MiB); "
        f"write {v['write_mb_per_s']:.0f} MB/s, read {v['read_mb_per_s']:.0f} MB/s"
    )
    print(
        f"insert: 1 byte at the start of {i['size'] // MiB} MiB: {i['reused_chunks']}/"
        f"{i['chunks']} chunks reused = {i['reuse']:.1%}, {i['reused_bytes']:.1%} of bytes "
        "(target >= 95%)"
    )
    print(
        f"logs: {g['size'] / MiB:.0f} MiB -> {g['stored_bytes'] / MiB:.2f} MiB stored "
        f"({g['ratio']:.3f}x, dictionary included) vs {g['zstd']} {g['zstd_bytes'] / MiB:.2f} "
        f"MiB ({g['zstd_ratio']:.3f}x): {g['vs_zstd']:.1%} of its ratio (target >= 95%); "
        f"write {g['write_mb_per_s']:.0f} MB/s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dedupe", description=__doc__)
    parser.add_argument("--size", type=int, default=64, help="MiB per object (default 64)")
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--backend", choices=["local", "rados"], default="local")
    parser.add_argument("--sweep", action="store_true", help="compare chunk sizes instead")
    parser.add_argument("--edit-runs", type=int, default=4, help="runs per 1%% edit")
    args = parser.parse_args(argv)
    if args.sweep:
        sweep(args.size * MiB, args.versions, args.edit_runs)
    else:
        kw = {"size": args.size * MiB, "count": args.versions, "edit_runs": args.edit_runs}
        print_results(args.backend, asyncio.run(measure(args.backend, **kw)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
