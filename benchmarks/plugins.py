"""The suite's scenarios that are not HTTP load: ``list``, ``list-http``, ``dedupe``, ``recovery``.

``list``, ``dedupe`` and ``recovery`` run in the benchmark process through the
engine / dedupe library on each backend the run targets (``atonix-local``;
``atonix-rados`` when a Ceph cluster is available), reusing ``benchmarks.listing`` and
``benchmarks.dedupe``, and turn their numbers into result rows with the
suite's common columns plus ``value`` and ``unit`` (the headline number of a
row that is not an ops/s measurement). ``register`` adds them to
``scenarios.EXTRA_SCENARIOS``; later scenarios (tier latency, replication
lag, NFS throughput) add themselves the same way.

Listing rows (one op = one page of 1000): ``first-page`` and
``first-page-delim`` (value: median ms per page) and ``scan`` (value:
keys/s), per bucket size. Dedupe rows: ``versions-ratio`` (stored bytes of
all versions / one version), ``insert-reuse`` (% chunks reused) and
``logs-vs-zstd3`` (our ratio as % of ``zstd -3``'s). ``list-http`` starts
each gateway (and RGW) itself and times raw-HTTP ListObjectsV2 pages
(``benchmarks.listing_http``; rows as ``list``'s). Recovery rows
(``benchmarks.recovery``; size: objects in the bucket): ``pitr-restore``,
``backup-run`` and ``backup-restore`` (ops/s: objects/s; value: seconds per
10^4 objects, the RTO, also in ``rto_s_per_10k``). Tiering rows
(``benchmarks.tiering``): ``plan`` (size: objects planned; value: seconds) and
``move`` (size: bytes moved hot -> warm; value: MB/s); then
(``benchmarks.tier_latency``, cold tiers on a moto_server of its own)
``get-hot``, ``get-warm``, ``get-cold`` (size: object bytes; p50/p99 of
first reads through the engine), ``move-cold`` (value: MB/s moved hot ->
cold) and ``restore`` (archived 4 MiB objects; p50/p99 per restore).
Replication rows (``benchmarks.replication_lag``; size: the PUT rate asked):
``lag`` (p50/p99 ms from a commit in one region to its acknowledgement by the
other, 50 ms one-way delay between them; value: p99 ms), then
(``benchmarks.chunk_transfer``) ``transfer-1pct`` (size: the object; value: the
bytes a version changed by 1% put on the link, as % of the object). Failover rows
(``benchmarks.failover``; size: the PUT rate while the primary region is killed):
``rto`` (value: seconds from the kill to the other region's first accepted write)
and ``rpo`` (value: age in seconds of the oldest acknowledged write lost; items:
how many were lost).
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Callable

from tqdm import tqdm

from benchmarks import (
    chunk_transfer,
    failover,
    listing,
    listing_http,
    recovery,
    replication_lag,
    tier_latency,
    tiering,
)
from benchmarks import dedupe as dedupe_bench
from benchmarks.report import COLUMNS
from benchmarks.scenarios import EXTRA_SCENARIOS
from benchmarks.targets import start_atonix, start_moto, start_rgw

MiB = 1024 * 1024
LIST_SIZES = (10**3, 10**4, 10**5, 10**6)
LIST_SIZES_QUICK = (10**3, 10**4)
LIST_HTTP_SIZES = (10**3, 10**5, 10**6)
LIST_HTTP_SIZES_QUICK = (10**3,)
DEDUPE_SIZE = 64 * MiB  # the datasets the dedupe targets are defined on
DEDUPE_SIZE_QUICK = 8 * MiB
DEDUPE_VERSIONS = 20


def backends(options: dict) -> list[tuple[str, str, str | None]]:
    """(target name, backend kind, ceph conf) for each backend this run measures."""
    targets = options.get("targets") or ("atonix-local", "atonix-rados")
    out: list[tuple[str, str, str | None]] = []
    if "atonix-local" in targets:
        out.append(("atonix-local", "local", None))
    if "atonix-rados" in targets and options.get("ceph_conf"):
        out.append(("atonix-rados", "rados", options["ceph_conf"]))
    return out


def row(options: dict, target: str, scenario: str, operation: str, size: int, **fields) -> dict:
    """A result row: every common column present (None where it does not apply)."""
    out: dict = dict.fromkeys(COLUMNS)
    out.update(target=target, scenario=scenario, operation=operation, size=size,
               connections=1, errors=0, commit=options.get("commit"), time=options.get("time"))
    out.update(fields)
    return out


def failed_row(options: dict, target: str, scenario: str, size: int, error: BaseException) -> dict:
    """A scenario that failed on a backend still shows up in the report, as an error."""
    print(f"[bench] {scenario} (size {size:,}) on {target} failed:", file=sys.stderr)
    traceback.print_exception(error, file=sys.stderr)
    return row(options, target, scenario, "run", size, errors=1, error=repr(error))


# --- list ---------------------------------------------------------------------------


def list_rows(options: dict, target: str, result: dict) -> list[dict]:
    n, rows = result["keys"], []
    common = {"shards": result["shards"], "fill_s": result["fill_s"]}
    for operation, page in (("first-page", result["first"]),
                            ("first-page-delim", result["first_delim"])):
        rows.append(row(
            options, target, "list", operation, n,
            ops_per_s=page["pages_per_s"], p50_ms=page["median_ms"], p90_ms=page.get("p90_ms"),
            p99_ms=page.get("p99_ms"), p999_ms=page.get("p999_ms"), gateway_cpu=page["cpu"],
            value=float(page["median_ms"]), unit="ms/page", items=page["items"],
            backend_ops=page["backend_ops"], **common,
        ))
    scan = result["scan"]
    rows.append(row(
        options, target, "list", "scan", n,
        ops_per_s=round(scan["pages"] / scan["seconds"], 1) if scan["seconds"] else None,
        gateway_cpu=scan["cpu"], value=float(scan["keys_per_s"]), unit="keys/s",
        items=scan["keys"], backend_ops=scan["backend_ops_per_page"], **common,
    ))
    return rows


def run_list(options: dict) -> list[dict]:
    sizes = LIST_SIZES_QUICK if options.get("quick") else LIST_SIZES
    chosen = backends(options)
    rows: list[dict] = []
    steps = [(b, n) for b in chosen for n in sizes]
    for (target, kind, conf), n in tqdm(steps, desc="list", unit="size", leave=False):
        try:  # a fresh store per size; one failure must not lose the other rows
            for result in listing.measure(kind, [n], ceph_conf=conf, quiet=True):
                rows += list_rows(options, target, result)
        except Exception as e:
            rows.append(failed_row(options, target, "list", n, e))
    return rows


# --- list-http ----------------------------------------------------------------------


def list_http_rows(options: dict, target: str, r: dict) -> list[dict]:
    n, common = r["keys"], {"fill_s": r["fill_s"]}
    return [
        row(options, target, "list-http", "first-page", n, p50_ms=r["first_ms"],
            value=r["first_ms"], unit="ms/page", **common),
        row(options, target, "list-http", "first-page-delim", n, p50_ms=r["first_delim_ms"],
            value=r["first_delim_ms"], unit="ms/page", **common),
        row(options, target, "list-http", "scan", n,
            ops_per_s=round(r["scan_pages"] / r["scan_s"], 1) if r["scan_s"] else None,
            value=float(r["scan_keys_per_s"]), unit="keys/s", items=n, **common),
    ]


def _list_http_targets(options: dict) -> list[str]:
    names = [name for name, _, _ in backends(options)]
    if "rgw" in (options.get("targets") or ()) and options.get("ceph_conf"):
        names.append("rgw")
    return names


def run_list_http(options: dict) -> list[dict]:
    sizes = LIST_HTTP_SIZES_QUICK if options.get("quick") else LIST_HTTP_SIZES
    conf, rows = options.get("ceph_conf"), []
    for name in tqdm(_list_http_targets(options), desc="list-http", unit="target", leave=False):
        try:
            target = (start_rgw(conf) if name == "rgw"
                      else start_atonix(name.removeprefix("atonix-"), 1, conf))
        except Exception as e:
            rows.append(failed_row(options, name, "list-http", 0, e))
            continue
        try:
            engine_at = None if name == "rgw" else listing_http.engine_location(target, conf)
            for n in sizes:
                if name == "rgw" and n > listing_http.RGW_MAX_KEYS:
                    continue
                try:
                    rows += list_http_rows(options, name,
                                           listing_http.measure(target, n, engine_at))
                except Exception as e:  # one size failing must not lose the other rows
                    rows.append(failed_row(options, name, "list-http", n, e))
        finally:
            target.stop()
    return rows


# --- dedupe -------------------------------------------------------------------------


def dedupe_rows(options: dict, target: str, result: dict[str, dict]) -> list[dict]:
    v, i, g = result["versions"], result["insert"], result["logs"]
    return [
        row(options, target, "dedupe", "versions-ratio", v["size"],
            ops_per_s=round(v["versions"] / v["write_s"], 2),
            mb_per_s=round(v["write_mb_per_s"], 1),
            gateway_cpu=round(v["cpu"], 2), value=round(v["ratio"], 3), unit="x one version",
            versions=v["versions"], stored_bytes=v["stored_bytes"],
            one_version_bytes=v["one_version_bytes"], chunks_ratio=round(v["chunks_ratio"], 3),
            read_mb_per_s=round(v["read_mb_per_s"], 1)),
        row(options, target, "dedupe", "insert-reuse", i["size"],
            ops_per_s=round(2 / i["write_s"], 2), mb_per_s=round(i["write_mb_per_s"], 1),
            gateway_cpu=round(i["cpu"], 2), value=round(i["reuse"] * 100, 2),
            unit="% chunks reused", chunks=i["chunks"], reused_chunks=i["reused_chunks"],
            reused_bytes_pct=round(i["reused_bytes"] * 100, 2)),
        row(options, target, "dedupe", "logs-vs-zstd3", g["size"],
            ops_per_s=round(1 / g["write_s"], 2), mb_per_s=round(g["write_mb_per_s"], 1),
            gateway_cpu=round(g["cpu"], 2), value=round(g["vs_zstd"] * 100, 2),
            unit="% of zstd -3 ratio", stored_bytes=g["stored_bytes"],
            ratio=round(g["ratio"], 3), zstd_ratio=round(g["zstd_ratio"], 3), zstd=g["zstd"]),
    ]


def run_dedupe(options: dict) -> list[dict]:
    size = DEDUPE_SIZE_QUICK if options.get("quick") else DEDUPE_SIZE
    rows: list[dict] = []
    for target, kind, conf in tqdm(backends(options), desc="dedupe", unit="backend", leave=False):
        try:
            result = asyncio.run(dedupe_bench.measure(kind, size=size, count=DEDUPE_VERSIONS,
                                                      ceph_conf=conf))
            rows += dedupe_rows(options, target, result)
        except Exception as e:  # one backend failing must not lose the others' rows
            rows.append(failed_row(options, target, "dedupe", size, e))
    return rows


# --- recovery -----------------------------------------------------------------------

RTO_UNIT = "s per 10^4 objects"


def recovery_rows(options: dict, target: str, results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        mb_per_s = r["bytes"] / r["seconds"] / MiB if r.get("bytes") and r["seconds"] else None
        rows.append(row(
            options, target, "recovery", r["operation"], r["objects"],
            connections=r.get("concurrency"), ops_per_s=r["objects_per_s"], gateway_cpu=r["cpu"],
            mb_per_s=round(mb_per_s, 2) if mb_per_s is not None else None,
            value=r["rto_s_per_10k"], unit=RTO_UNIT,
            **{k: v for k, v in r.items() if k not in ("operation", "cpu")},
        ))
    return rows


def run_recovery(options: dict) -> list[dict]:
    n = recovery.OBJECTS_QUICK if options.get("quick") else recovery.OBJECTS
    chosen = backends(options)
    if not chosen:
        return []
    rows: list[dict] = []
    moto = start_moto()  # the remote S3 endpoint backups go to, shared by the backends
    try:
        for target, kind, conf in tqdm(chosen, desc="recovery", unit="backend", leave=False):
            try:
                results = recovery.measure(kind, n, moto.endpoint, ceph_conf=conf)
                rows += recovery_rows(options, target, results)
            except Exception as e:  # one backend failing must not lose the others' rows
                rows.append(failed_row(options, target, "recovery", n, e))
    finally:
        moto.stop()
    return rows


# --- tiering ------------------------------------------------------------------------


def run_tiering(options: dict) -> list[dict]:
    rows: list[dict] = []
    for target, kind, conf in tqdm(backends(options), desc="tiering", unit="backend",
                                   leave=False):
        try:
            results = asyncio.run(tiering.measure(kind, bool(options.get("quick")), conf))
        except Exception as e:  # one backend failing must not lose the others' rows
            rows.append(failed_row(options, target, "tiering", 0, e))
            continue
        plan, move = results
        rows.append(row(options, target, "tiering", "plan", plan["objects"],
                        ops_per_s=plan["objects_per_s"], gateway_cpu=plan["cpu"],
                        value=plan["seconds"], unit="s to plan", items=plan["objects"]))
        rows.append(row(options, target, "tiering", "move", move["bytes"],
                        ops_per_s=move["objects_per_s"], mb_per_s=move["mb_per_s"],
                        gateway_cpu=move["cpu"], value=move["mb_per_s"], unit="MB/s moved",
                        items=move["objects"]))
        rows += _tier_latency_rows(options, target, kind, conf)
    return rows


def _tier_latency_rows(options: dict, target: str, kind: str, conf: str | None) -> list[dict]:
    try:
        results = asyncio.run(tier_latency.measure(kind, bool(options.get("quick")), conf))
    except Exception as e:
        return [failed_row(options, target, "tiering", 0, e)]
    rows = []
    for r in results:
        if r["operation"] == "move-cold":
            rows.append(row(options, target, "tiering", "move-cold", r["bytes"],
                            mb_per_s=r["mb_per_s"], gateway_cpu=r["cpu"], value=r["mb_per_s"],
                            unit="MB/s moved", items=r["objects"]))
        else:
            rows.append(row(options, target, "tiering", r["operation"], r["size"],
                            p50_ms=r["p50_ms"], p99_ms=r["p99_ms"], value=r["p99_ms"],
                            unit="ms p99", items=r["samples"]))
    return rows


# --- replication ----------------------------------------------------------------------


def run_replication(options: dict) -> list[dict]:
    rows: list[dict] = []
    for target, kind, conf in backends(options):
        try:
            results = asyncio.run(replication_lag.measure(kind, bool(options.get("quick")), conf))
        except Exception as e:
            rows.append(failed_row(options, target, "replication", 0, e))
            continue
        for r in results:
            rows.append(row(options, target, "replication", "lag", r["rate"],
                            ops_per_s=r["achieved"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                            gateway_cpu=r["east_cpu"], value=r["p99_ms"], unit="ms lag p99",
                            items=r["shipped"]))
        try:
            moved = asyncio.run(chunk_transfer.measure(kind, bool(options.get("quick")), conf))
        except Exception as e:
            rows.append(failed_row(options, target, "replication", 0, e))
            continue
        for r in moved:
            rows.append(row(options, target, "replication", r["operation"], r["size"],
                            value=r["percent_sent"], unit="% of the object on the link",
                            items=r["link_bytes"]))
    return rows


def run_failover(options: dict) -> list[dict]:
    rows: list[dict] = []
    for target, kind, conf in backends(options):
        try:
            results = asyncio.run(failover.measure(kind, bool(options.get("quick")), conf))
        except Exception as e:
            rows.append(failed_row(options, target, "failover", 0, e))
            continue
        for r in results:
            common = {"loadgen_cpu": r["loadgen_cpu"]}
            rows.append(row(options, target, "failover", "rto", r["rate"], value=r["rto_s"],
                            unit=f"s RTO (detection {r['detect_s']} s)", **common))
            rows.append(row(options, target, "failover", "rpo", r["rate"], value=r["rpo_s"],
                            unit=f"s RPO ({r['lost']} of {r['acked']} writes lost)",
                            **common))
    return rows


PLUGINS: dict[str, Callable[[dict], list[dict]]] = {
    "list": run_list, "list-http": run_list_http, "dedupe": run_dedupe,
    "recovery": run_recovery, "tiering": run_tiering, "replication": run_replication,
    "failover": run_failover,
}


def register(registry: dict[str, Callable[[dict], list[dict]]] = EXTRA_SCENARIOS) -> None:
    """Add the scenarios above to the suite's registry (idempotent)."""
    for name, run in PLUGINS.items():
        registry.setdefault(name, run)
