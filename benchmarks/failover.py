"""RPO and RTO of a region lost under load: east, the primary of a bucket west holds a
passive copy of, is killed (kill -9) while PUTs arrive at a fixed rate.

    python -m benchmarks.failover [--backend local|rados] [--ceph-conf F] [--quick]

Two deployments, one gateway each, 50 ms one-way delay between them
(``benchmarks.delay_proxy``), rules both ways and ``auto_failover_seconds`` on
west's view of east. An open-loop load generator PUTs 4 KiB objects into east
(presigned URLs, fired on schedule) and notes when each was acknowledged;
partway through, every east process gets SIGKILL. Then a client keeps trying
to write to west: the RTO is the time from the kill to west's first accepted
write (detection, ``auto_failover_seconds``, is part of it and is reported
too). The RPO is what east acknowledged that west never got: the number of
such writes and the age of the oldest at the kill. The seed's floor is RPO < 15
min, RTO < 1 h; there is no peer (RGW multisite needs a second zone).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import psutil

from benchmarks import tiering
from benchmarks.delay_proxy import DelayProxy
from benchmarks.replication_lag import replicated, s3_client
from benchmarks.targets import ACCESS_KEY, SECRET, Target, free_port, start_atonix

RATE = 100
SECONDS, SECONDS_QUICK = 10, 4
DELAY_S = 0.05
DETECT_S = 5.0  # west's auto_failover_seconds for east
BODY = os.urandom(4096)


def _region(peer: str, port: int, **extra) -> dict:
    return {peer: {"endpoints": [f"http://127.0.0.1:{port}"], "access_key": ACCESS_KEY,
                   "secret_key": SECRET, **extra}}


def _cli(target: Target, kind: str, ceph_conf: str | None, *args: str) -> str:
    assert target.workdir is not None
    opts = ["--backend", kind, "--config", str(target.workdir / "gateway.yaml")]
    opts += (["--data-dir", str(target.workdir / "data")] if kind == "local"
             else ["--ceph-conf", str(ceph_conf), "--pool-prefix", str(target.pool_prefix)])
    done = subprocess.run([sys.executable, "-m", "gateway.cli.main", *args, *opts],
                          check=True, capture_output=True, text=True)
    return done.stdout


def _setup(east: Target, west: Target, kind: str, ceph_conf: str | None) -> None:
    replicated(east, "primary", west, "standby", "west", markers=True)
    replicated(west, "standby", east, "primary", "east", markers=True)
    _cli(east, kind, ceph_conf, "replication", "failover", "primary", "--to", "east")
    deadline = time.monotonic() + 60
    while '"primary": "east"' not in _cli(west, kind, ceph_conf, "replication", "role",
                                          "standby"):
        s3_client(east).put_object(Bucket="primary", Key="hello", Body=b"x")
        if time.monotonic() > deadline:
            raise RuntimeError("west never learned that east is the primary")
        time.sleep(0.5)


async def _load_then_kill(east: Target, urls: list[str], kill_at: float):
    """PUT each URL on schedule, SIGKILL east at ``kill_at`` s; (acks, kill time, cpu)."""
    acked: dict[int, float] = {}
    me = psutil.Process()
    cpu0, start = sum(me.cpu_times()[:2]), time.monotonic()
    killed = 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

        async def one(i: int, url: str) -> None:
            try:
                async with session.put(url, data=BODY) as answer:
                    await answer.read()
                    if answer.status == 200:
                        acked[i] = time.monotonic()
            except (aiohttp.ClientError, TimeoutError):
                pass

        tasks = []
        for i, url in enumerate(urls):
            if not killed and time.monotonic() - start >= kill_at:
                for pid in east.pids():
                    os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
            wait = start + i / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(i, url)))
        await asyncio.gather(*tasks)
    cpu = (sum(me.cpu_times()[:2]) - cpu0) / (time.monotonic() - start)
    return acked, killed, cpu


async def _until_writable(west: Target, killed: float) -> float:
    s3 = s3_client(west)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "standby", "Key": "after"})
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - killed < 600:
            async with session.put(url, data=b"after the failover") as answer:
                await answer.read()
                if answer.status == 200:
                    return time.monotonic() - killed
            await asyncio.sleep(0.05)
    raise RuntimeError("west never took over")


def _present(west: Target) -> set[str]:
    s3, keys = s3_client(west), set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket="standby"):
        keys.update(v["Key"] for v in page.get("Versions", []))
    return keys


async def measure(kind: str, quick: bool = False, ceph_conf: str | None = None) -> list[dict]:
    east_port = free_port()
    to_east = await DelayProxy(east_port, DELAY_S).start()
    west = start_atonix(kind, 1, ceph_conf, config={
        "replication_interval_seconds": 0.25, "region_name": "west",
        "regions": _region("east", to_east.port, auto_failover_seconds=DETECT_S,
                           timeout_seconds=2)})
    to_west = await DelayProxy(int(west.endpoint.rsplit(":", 1)[1]), DELAY_S).start()
    east = start_atonix(kind, 1, ceph_conf, port=east_port, config={
        "replication_interval_seconds": 0.25, "region_name": "east",
        "regions": _region("west", to_west.port)})
    try:
        await asyncio.to_thread(_setup, east, west, kind, ceph_conf)
        seconds = SECONDS_QUICK if quick else SECONDS
        s3 = s3_client(east)
        urls = [s3.generate_presigned_url("put_object", Params={
            "Bucket": "primary", "Key": f"k{i:06d}"}) for i in range(RATE * seconds)]
        acked, killed, loadgen = await _load_then_kill(east, urls, seconds * 0.7)
        rto = await _until_writable(west, killed)
        present = await asyncio.to_thread(_present, west)
        lost = [t for i, t in acked.items() if f"k{i:06d}" not in present]
        rpo = killed - min(lost) if lost else 0.0
        return [{"operation": "failover", "rate": RATE, "acked": len(acked), "lost": len(lost),
                 "rpo_s": round(rpo, 3), "rto_s": round(rto, 3), "detect_s": DETECT_S,
                 "loadgen_cpu": round(loadgen, 2)}]
    finally:
        await to_east.stop()
        await to_west.stop()
        east.stop()
        west.stop()


if __name__ == "__main__":
    tiering.main(measure, __doc__)
