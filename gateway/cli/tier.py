"""``atonix-cli tier plan | apply | explain | status``: the tiering policy, administered.

Each opens the deployment's backend like every admin command and works
through the tiering service (``tiering.service``) with the policy of the
settings (``--tiering FILE`` or the config's ``tiering:``). Output is JSON;
``apply`` shows a progress bar on stderr when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable

from engine import Engine
from gateway.cli.options import settings_from
from gateway.cli.session import CLI, run_admin
from gateway.server.config import Settings
from tiering.service import TieringService, engine_tiers


def add_parser(sub, backend_options: Callable[[argparse.ArgumentParser], None]) -> None:
    tier = sub.add_parser("tier", help="hot/warm/cold placement: plan, apply, explain, status")
    actions = tier.add_subparsers(dest="action", required=True)
    plan = actions.add_parser("plan", help="dry run: what would move, and the monthly cost")
    plan.add_argument("buckets", nargs="*", metavar="BUCKET", help="default: every bucket")
    plan.set_defaults(func=cmd_plan)
    apply = actions.add_parser("apply", help="move what the policy says, throttled")
    apply.add_argument("buckets", nargs="*", metavar="BUCKET", help="default: every bucket")
    apply.set_defaults(func=cmd_apply)
    explain = actions.add_parser("explain", help="why an object is where it is, and what next")
    explain.add_argument("bucket")
    explain.add_argument("key")
    explain.add_argument("--version-id")
    explain.set_defaults(func=cmd_explain)
    status = actions.add_parser("status", help="objects and bytes per tier per bucket")
    status.add_argument("buckets", nargs="*", metavar="BUCKET", help="default: every bucket")
    status.set_defaults(func=cmd_status)
    for p in (plan, apply, explain, status):
        backend_options(p)


def _run(args: argparse.Namespace, work: Callable[[TieringService], Awaitable]):
    settings: Settings = settings_from(args)
    policy = settings.tiering_policy()
    served = {t.name for t in engine_tiers(policy)}

    async def with_service(engine: Engine):
        return await work(TieringService(engine, CLI, policy, served))

    return run_admin(settings, with_service, lambda e: f"tier {args.action} failed: {e}")


def cmd_plan(args: argparse.Namespace) -> int:
    report = _run(args, lambda s: s.plan(args.buckets or None))
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    async def work(service: TieringService):
        bar = _progress_bar()
        try:
            return await service.apply(args.buckets or None, progress=bar.update)
        finally:
            bar.close()

    report = _run(args, work)
    print(json.dumps({
        "scanned": report.scanned,
        "moved_objects": report.moved_objects,
        "moved_bytes": report.moved_bytes,
        "changed_only": report.changed_only,
        "skipped_not_served": report.skipped_not_served,
        "expired": report.expired,
        "aborted_uploads": report.aborted_uploads,
        "restores_ended": report.restores_ended,
        "delete_markers_removed": report.delete_markers_removed,
        "failed": report.failed,
    }, indent=2))
    return 1 if report.failed else 0


def cmd_explain(args: argparse.Namespace) -> int:
    doc = _run(args, lambda s: s.explain(args.bucket, args.key, args.version_id))
    print(json.dumps(doc, indent=2))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    print(json.dumps(_run(args, lambda s: s.status(args.buckets or None)), indent=2))
    return 0


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar():
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(unit="B", unit_scale=True, desc="moved", file=sys.stderr)
