"""``atonix-cli backup run | list | show | restore``: verified, incremental backups.

TARGET is a bucket of this deployment (copies share chunks with the source)
or ``s3://BUCKET`` on an S3 endpoint (``--endpoint-url``, the config's
``backup_endpoint:``, or ATONIX_BACKUP_ENDPOINT_URL; credentials from the
config or the environment). Runs are recorded where every gateway sees
them; ``restore`` finds a run's target from its record.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

from backup.catalog import RunRecord
from backup.history import BackupHistory
from backup.restore import BackupRestorer, RestoreSummary
from backup.runner import BackupRunner
from backup.targets import Endpoint, open_target
from engine import Engine
from gateway.cli.options import settings_from
from gateway.cli.restore import iso
from gateway.cli.session import CLI, run_admin

T = TypeVar("T")


def add_parser(sub, backend_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("backup", help="verified, incremental backups of buckets")
    actions = p.add_subparsers(dest="action", required=True)

    run = actions.add_parser("run", help="back up a bucket now")
    run.add_argument("bucket")
    run.add_argument("--to", required=True, metavar="TARGET",
                     help="a bucket of this deployment, or s3://BUCKET on --endpoint-url")
    run.add_argument("--lock-days", type=float, metavar="N",
                     help="give the copies COMPLIANCE retention for N days")
    run.set_defaults(func=cmd_run)

    listing = actions.add_parser("list", help="the recorded runs (of one bucket)")
    listing.add_argument("bucket", nargs="?")
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="one run, with the objects it holds")
    show.add_argument("run_id", metavar="RUN")
    show.set_defaults(func=cmd_show)

    restore = actions.add_parser("restore", help="make a bucket hold exactly what a run holds")
    restore.add_argument("run_id", metavar="RUN")
    restore.add_argument("--to", metavar="BUCKET",
                         help="restore into this bucket (created if missing), not the source")
    restore.set_defaults(func=cmd_restore)

    for q in (run, listing, show, restore):
        q.add_argument("--endpoint-url", help="S3 endpoint of s3:// targets")
        backend_options(q)


def _endpoint(args: argparse.Namespace, settings) -> Endpoint:
    return Endpoint.configured(settings.backup_endpoint, os.environ, args.endpoint_url)


def _work(args: argparse.Namespace, work: Callable[[Engine, Endpoint], Awaitable[T]]) -> T:
    settings = settings_from(args)
    endpoint = _endpoint(args, settings)
    # A copy that failed its check, an unreachable endpoint...: exit 1 with the cause.
    return run_admin(settings, lambda engine: work(engine, endpoint),
                     lambda exc: f"{args.action} failed: {type(exc).__name__}: {exc}")


def _run_doc(run: RunRecord) -> dict:
    doc = asdict(run)
    doc["started_at"] = iso(run.started)
    doc["finished_at"] = iso(run.finished) if run.finished else None
    doc["lock_until_at"] = iso(run.lock_until) if run.lock_until else None
    return doc


def cmd_run(args: argparse.Namespace) -> int:
    def progress(run: RunRecord) -> None:
        print(f"  {run.copied} copied ({run.bytes_copied} bytes), {run.verified} verified",
              file=sys.stderr, flush=True)

    async def work(engine: Engine, endpoint: Endpoint) -> RunRecord:
        target = open_target(args.to, engine, CLI, endpoint)
        return await BackupRunner(engine, CLI).run(args.bucket, target, args.lock_days, progress)

    print(json.dumps(_run_doc(_work(args, work)), indent=2))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    async def work(engine: Engine, _endpoint: Endpoint) -> list[RunRecord]:
        return await BackupHistory(engine, CLI).runs(args.bucket)

    runs = _work(args, work)
    print(json.dumps([_run_doc(r) for r in runs], indent=2))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    async def work(engine: Engine, _endpoint: Endpoint) -> dict:
        history = BackupHistory(engine, CLI)
        doc = _run_doc(await history.run(args.run_id))
        try:
            doc["catalog"] = [asdict(e) for e in await history.catalog(args.run_id)]
        except ValueError:
            doc["catalog"] = None  # a failed or running run has none
        return doc

    print(json.dumps(_work(args, work), indent=2))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    def progress(s: RestoreSummary) -> None:
        print(f"  {s.restored} restored, {s.unchanged} unchanged, {s.deleted} deleted",
              file=sys.stderr, flush=True)

    async def work(engine: Engine, endpoint: Endpoint) -> RestoreSummary:
        run = await BackupHistory(engine, CLI).run(args.run_id)
        target = open_target(run.target, engine, CLI, endpoint)
        return await BackupRestorer(engine, CLI).restore(args.run_id, target, args.to, progress)

    summary = _work(args, work)
    doc = asdict(summary)
    doc["objects_per_second"] = round(summary.objects_per_second, 1)
    print(json.dumps(doc, indent=2))
    return 0
