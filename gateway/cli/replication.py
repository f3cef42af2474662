"""``atonix-cli replication put | get | delete | status | verify | failover | role``: buckets'
replication, administered.

``put`` takes the S3 document (the XML of PutBucketReplication) from a file,
with S3's checks; ``status`` prints, per replicated bucket and destination,
the change-log records not shipped yet and how old the oldest is (the lag a
change waits before it ships). ``failover BUCKET --to REGION``, run with the
options of REGION's deployment, makes its copy the primary at the next epoch
(engine.primacy); ``role`` prints which region is the primary. Output is JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from engine import REPLICATED_BUCKETS, Engine, parse_destination
from gateway.cli.options import settings_from
from gateway.cli.session import CLI, run_admin
from replication.remote_region import RegionClient
from replication.shipper import ADMIN, destinations, rule_picker, target_name
from replication.verify import verify_local, verify_remote

_STATUS_SCAN = 100_000  # change-log records counted per bucket


def add_parser(sub, backend_options: Callable[[argparse.ArgumentParser], None]) -> None:
    repl = sub.add_parser("replication", help="bucket replication: configure, status")
    actions = repl.add_subparsers(dest="action", required=True)
    put = actions.add_parser("put", help="set a bucket's replication configuration")
    put.add_argument("bucket")
    put.add_argument("--file", required=True, help="the ReplicationConfiguration XML")
    put.set_defaults(func=cmd_put)
    get = actions.add_parser("get", help="print a bucket's replication configuration")
    get.add_argument("bucket")
    get.set_defaults(func=cmd_get)
    delete = actions.add_parser("delete", help="remove a bucket's replication configuration")
    delete.add_argument("bucket")
    delete.set_defaults(func=cmd_delete)
    check = actions.add_parser("verify", help="compare a bucket with its destinations")
    check.add_argument("bucket")
    check.add_argument("--repair", action="store_true", help="ship the differing keys again")
    check.add_argument("--to", metavar="REGION",
                       help="only the destinations in REGION (this one: 'local')")
    check.set_defaults(func=cmd_verify)
    status = actions.add_parser("status", help="backlog and lag per destination")
    status.add_argument("buckets", nargs="*", metavar="BUCKET", help="default: every one")
    status.set_defaults(func=cmd_status)
    failover = actions.add_parser(
        "failover", help="make this region's copy of a bucket its primary (next epoch)")
    failover.add_argument("bucket")
    failover.add_argument("--to", required=True, metavar="REGION",
                          help="this deployment's region_name (a safeguard against mix-ups)")
    failover.set_defaults(func=cmd_failover)
    role = actions.add_parser("role", help="which region is a bucket's primary")
    role.add_argument("bucket")
    role.set_defaults(func=cmd_role)
    for p in (put, get, delete, check, status, failover, role):
        backend_options(p)


def _run(args: argparse.Namespace, work):
    return run_admin(settings_from(args), work,
                     lambda e: f"replication {args.action} failed: {e}")


def cmd_put(args: argparse.Namespace) -> int:
    from s3api.replication import parse_configuration  # the S3 document, S3's checks

    config = parse_configuration(Path(args.file).read_bytes())

    async def work(engine: Engine) -> None:
        bucket = await engine.bucket(CLI, args.bucket, ADMIN)
        await bucket.set_replication(config)

    _run(args, work)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    async def work(engine: Engine):
        return await (await engine.bucket(CLI, args.bucket, ADMIN)).replication()

    config = _run(args, work)
    if config is None:
        raise ValueError(f"bucket {args.bucket} has no replication configuration")
    print(json.dumps({"role": config.role, "rules": [vars(r) for r in config.rules]}, indent=2))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    async def work(engine: Engine) -> None:
        await (await engine.bucket(CLI, args.bucket, ADMIN)).set_replication(None)

    _run(args, work)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    async def work(engine: Engine) -> dict:
        names = args.buckets or [
            n for n, _ in await engine.records(CLI, REPLICATED_BUCKETS).list()]
        out = {}
        for name in names:
            bucket = await engine.bucket(CLI, name, ADMIN)
            config = await bucket.replication()
            if config is None:
                continue
            changes = await bucket.changes(_STATUS_SCAN)
            oldest = min((c.time for c in changes), default=None)
            lag = round(time.time() - oldest, 3) if oldest is not None else 0.0
            nbytes = sum(c.size for c in changes)
            out[name] = {target_name(arn): {"backlog_objects": len(changes),
                                            "backlog_bytes": nbytes, "lag_seconds": lag}
                         for arn in sorted(destinations(config))}
        return out

    print(json.dumps(_run(args, work), indent=2))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    regions = {r.name: r for r in settings_from(args).region_settings()}

    async def work(engine: Engine) -> dict:
        source = await engine.bucket(CLI, args.bucket, ADMIN)
        config = await source.replication()
        if config is None:
            raise ValueError(f"bucket {args.bucket} has no replication configuration")
        out = {}
        for arn in sorted(destinations(config)):
            region, name = parse_destination(arn)
            if args.to is not None and args.to != (region or "local"):
                continue
            picker = lambda key, arn=arn: rule_picker(config, key, arn)  # noqa: E731
            if region is None:
                target = await engine.bucket(CLI, name, ADMIN, expected_owner=source.owner)
                verdict = await verify_local(source, target, picker, repair=args.repair)
            else:
                if region not in regions or regions[region].plain:
                    out[target_name(arn)] = {"error": f"region {region} cannot be verified: "
                                             "not in this config, or a plain S3 endpoint"}
                    continue
                client = RegionClient(regions[region])
                try:
                    verdict = await verify_remote(source, client, name, picker, args.repair)
                finally:
                    await client.close()
            out[target_name(arn)] = {"differences": len(verdict.keys),
                                     "keys": verdict.keys[:100],
                                     "exchanges": verdict.exchanges,
                                     "repaired": verdict.repaired}
        if not out:
            raise ValueError(f"bucket {args.bucket} replicates to no destination in {args.to}")
        return out

    result = _run(args, work)
    print(json.dumps(result, indent=2))
    return 0 if all(not r.get("differences") or args.repair for r in result.values()) else 1


def cmd_failover(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.to != settings.region_name:
        raise ValueError(
            f"--to {args.to}: this deployment is region {settings.region_name or '(unnamed)'}; "
            f"run failover with the options of region {args.to}'s gateways")

    async def work(engine: Engine) -> dict:
        bucket = await engine.bucket(CLI, args.bucket, ADMIN)
        promoted = await bucket.fail_over()
        return {"bucket": args.bucket, "primary": promoted.primary, "epoch": promoted.epoch}

    print(json.dumps(_run(args, work), indent=2))
    return 0


def cmd_role(args: argparse.Namespace) -> int:
    region = settings_from(args).region_name

    async def work(engine: Engine) -> dict:
        held = await (await engine.bucket(CLI, args.bucket, ADMIN)).primacy(fresh=True)
        return {"bucket": args.bucket, "region": region, "primary": held.primary or None,
                "epoch": held.epoch, "writable": not held.epoch or held.primary == region}

    print(json.dumps(_run(args, work), indent=2))
    return 0
