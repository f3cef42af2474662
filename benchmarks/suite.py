"""``atonix-cli bench`` / ``python -m benchmarks``: run scenarios on every target, one run.

Targets run one at a time (the others stopped) so they never compete for
the machine's two cores; each gets a warm-up, then the measurement. The raw
RADOS ceiling (``rados bench``) and a calibration run of the load generator
against a trivial server are part of every report.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from benchmarks import plugins, report, slo
from benchmarks.rados_bench import rados_ceiling
from benchmarks.scenarios import EXTRA_SCENARIOS, SCENARIOS, mean_size, run_phase
from benchmarks.targets import (
    REPO,
    Target,
    start_atonix,
    start_calibration,
    start_moto,
    start_rgw,
)

ALL_TARGETS = ("calibration", "atonix-local", "atonix-rados", "rgw", "moto")
# CI's smoke run (bench --quick)
QUICK_SCENARIOS = "s3-small,s3-large,list,list-http,dedupe,recovery"

plugins.register()  # list, list-http, dedupe, recovery (benchmarks/plugins.py)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _start(name: str, ceph_conf: str | None, workers: int) -> Target:
    if name == "calibration":
        return start_calibration()
    if name == "atonix-local":
        return start_atonix("local", workers)
    if name == "atonix-rados":
        return start_atonix("rados", workers, ceph_conf)
    if name == "rgw":
        return start_rgw(str(ceph_conf))
    if name == "moto":
        return start_moto()
    raise ValueError(f"unknown target {name!r}")


class CephCluster:
    """Use ATONIX_CEPH_CONF when set, else start a throwaway cluster for this run."""

    def __init__(self, conf: str | None) -> None:
        self.conf = conf or os.environ.get("ATONIX_CEPH_CONF")
        self.dir: str | None = None

    def __enter__(self) -> CephCluster:
        if not self.conf:
            self.dir = tempfile.mkdtemp(prefix="atonix-bench-ceph-")
            out = subprocess.run([str(REPO / "scripts" / "dev-cluster"), "up", self.dir],
                                 capture_output=True, text=True, check=True).stdout
            self.conf = out.strip().splitlines()[-1].split("=", 1)[1]
        return self

    def __exit__(self, *exc) -> None:
        if self.dir:
            subprocess.run([str(REPO / "scripts" / "dev-cluster"), "down", self.dir],
                           capture_output=True)


def measure_target(name, args, conf, commit, now) -> list[dict]:
    rows: list[dict] = []
    chosen = [SCENARIOS[s] for s in args.scenarios if s in SCENARIOS]
    if name == "calibration":  # the load generator's ceiling, when there is HTTP load at all
        chosen = [SCENARIOS["s3-small"]] if chosen else []
    if args.quick:  # fewer objects to prepare: the smoke run is about working, not numbers
        chosen = [dataclasses.replace(s, objects=min(s.objects, 32)) for s in chosen]
    phases = [(s, p) for s in chosen for p in s.phases]
    if not phases:  # e.g. --scenarios list,dedupe: nothing to send over HTTP
        return rows
    target = _start(name, conf, args.workers)
    try:
        for scenario, phase in tqdm(phases, desc=name, unit="phase", leave=False):
            result, cpu = run_phase(target, scenario, phase, seconds=args.seconds,
                                    warmup=args.warmup)
            rows.append({
                "target": name, "scenario": scenario.name, "operation": phase.operation,
                "size": phase.size, "connections": phase.connections,
                "ops_per_s": round(result.ops_per_s, 1),
                "mb_per_s": round(result.ops_per_s * mean_size(scenario, phase) / 2**20, 2),
                "p50_ms": result.p50_ms, "p90_ms": result.p90_ms, "p99_ms": result.p99_ms,
                "p999_ms": result.p999_ms, "errors": result.errors,
                "gateway_cpu": round(cpu, 2), "loadgen_cpu": round(result.loadgen_cpu, 2),
                "commit": commit, "time": now,
            })
    finally:
        target.stop()
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="atonix-cli bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short smoke run (under 3 minutes)")
    p.add_argument("--out", default="bench-results", help="directory for the report")
    p.add_argument("--scenarios", default=None,
                   help=f"comma list of {', '.join([*SCENARIOS, *EXTRA_SCENARIOS])} "
                        f"(default: all; with --quick: {QUICK_SCENARIOS})")
    p.add_argument("--targets", default=",".join(ALL_TARGETS), help="comma list of targets")
    p.add_argument("--ceph-conf", help="cluster to use (default: ATONIX_CEPH_CONF or a new one)")
    p.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    p.add_argument("--seconds", type=float, help="measurement seconds per phase")
    p.add_argument("--no-gate", action="store_true", help="exit 0 even when targets fail")
    args = p.parse_args(argv)
    default = QUICK_SCENARIOS if args.quick else ",".join([*SCENARIOS, *EXTRA_SCENARIOS])
    args.scenarios = (args.scenarios or default).split(",")
    args.targets = args.targets.split(",")
    unknown = [s for s in args.scenarios if s not in SCENARIOS and s not in EXTRA_SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}")
    unknown = [t for t in args.targets if t not in ALL_TARGETS]
    if unknown:
        p.error(f"unknown target(s) {', '.join(unknown)}")
    args.seconds = args.seconds or (2.0 if args.quick else 15.0)
    args.warmup = 1.0 if args.quick else 3.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commit, now = _commit(), dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows: list[dict] = []
    needs_ceph = any(t in ("atonix-rados", "rgw") for t in args.targets)
    with CephCluster(args.ceph_conf if needs_ceph else "unused") as cluster:
        conf = cluster.conf if needs_ceph else None
        if conf and any(s in SCENARIOS for s in args.scenarios):
            rows += rados_ceiling(conf, seconds=2 if args.quick else 10, commit=commit, now=now)
        for name in args.targets:
            rows += measure_target(name, args, conf, commit, now)
        for name in args.scenarios:
            if name in EXTRA_SCENARIOS:
                rows += EXTRA_SCENARIOS[name]({"quick": args.quick, "ceph_conf": conf,
                                               "targets": args.targets,
                                               "commit": commit, "time": now})
    rows = [report.with_cpu_per_op(r) for r in rows]
    verdicts = slo.evaluate(rows)
    report.write_json(rows, out)
    report.write_parquet(rows, out)
    plots = report.write_plots(rows, out)
    report.write_markdown(rows, verdicts, {"commit": commit, "time": now, "cpus": os.cpu_count(),
                                           "mode": "quick" if args.quick else "full"}, out,
                          plots=plots)
    print(report.rows_table(rows))
    print()
    print(report.verdict_table(verdicts))
    print(f"\nreport: {out / 'summary.md'}")
    failed = [v for v in verdicts if v.passed is False]
    return 0 if args.no_gate or not failed else 1


if __name__ == "__main__":
    sys.exit(main())
