"""The raw RADOS ceiling: ``rados bench`` on the same cluster, 4 KiB objects, 32 in flight.

Every gateway works under this ceiling; reporting it lets a reader see how
close each gateway gets to what the hardware and Ceph can do at all.
"""

from __future__ import annotations

import re
import subprocess
import uuid


def _run(conf: str, pool: str, seconds: int, mode: str) -> dict[str, float]:
    cmd = ["rados", "-c", conf, "-p", pool, "bench", str(seconds), mode, "-b", "4096",
           "-t", "32", "--no-cleanup"] if mode == "write" else [
        "rados", "-c", conf, "-p", pool, "bench", str(seconds), mode, "-t", "32"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120).stdout
    iops = re.search(r"Average IOPS:\s+([\d.]+)", out)
    lat = re.search(r"Average Latency\(s\):\s+([\d.]+)", out)
    max_lat = re.search(r"Max latency\(s\):\s+([\d.]+)", out)
    return {
        "iops": float(iops.group(1)) if iops else 0.0,
        "avg_ms": float(lat.group(1)) * 1000 if lat else 0.0,
        "max_ms": float(max_lat.group(1)) * 1000 if max_lat else 0.0,
    }


def rados_ceiling(conf: str, seconds: int, commit: str, now: str) -> list[dict]:
    pool = "bench-raw-" + uuid.uuid4().hex[:6]
    subprocess.run(["ceph", "-c", conf, "osd", "pool", "create", pool, "8"],
                   capture_output=True, timeout=60)
    rows = []
    try:
        for mode, op in (("write", "PUT"), ("rand", "GET")):
            r = _run(conf, pool, seconds, mode)
            rows.append({
                "target": "rados-raw", "scenario": "rados-bench", "operation": op,
                "size": 4096, "connections": 32, "ops_per_s": r["iops"],
                "mb_per_s": round(r["iops"] * 4096 / 2**20, 2), "p50_ms": None,
                "p90_ms": None, "p99_ms": None, "p999_ms": None, "errors": 0,
                "gateway_cpu": None, "loadgen_cpu": None, "avg_ms": r["avg_ms"],
                "commit": commit, "time": now,
            })
    finally:
        subprocess.run(["ceph", "-c", conf, "osd", "pool", "rm", pool, pool,
                        "--yes-i-really-really-mean-it"], capture_output=True, timeout=60)
    return rows
