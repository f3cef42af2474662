"""``atonix-cli fsck | gc | stats | bucket set-dedupe``: the chunk store, administered.

They open the same backend the gateways use and work while gateways run:
every step they take is one of the guarded operations the gateways use too.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TypeVar

from engine import BucketDedupe, Engine, FsckResult, GcResult, SpaceStats
from gateway.cli.options import settings_from
from gateway.cli.session import CLI, run_admin

T = TypeVar("T")


def add_parsers(sub, backend_options: Callable[[argparse.ArgumentParser], None]) -> None:
    fsck = sub.add_parser("fsck", help="check chunks and references against live manifests")
    fsck.add_argument("--repair", action="store_true",
                      help="add missing references, drop stale ones, quarantine corrupt chunks")
    fsck.add_argument("--stale-after", type=float, metavar="SECONDS",
                      help="references/manifests nothing names are stale after this long "
                           "(default 86400: younger ones may be uploads in flight)")
    fsck.set_defaults(func=cmd_fsck)

    gc = sub.add_parser("gc", help="one chunk collector pass")
    gc.add_argument("--grace", type=float, metavar="SECONDS",
                    help="remove chunks unreferenced at least this long (default: settings)")
    gc.set_defaults(func=cmd_gc)

    stats = sub.add_parser("stats", help="logical vs stored bytes (per bucket or overall)")
    stats.add_argument("bucket", nargs="?")
    stats.set_defaults(func=cmd_stats)

    bucket = sub.add_parser("bucket", help="bucket data-path settings")
    actions = bucket.add_subparsers(dest="action", required=True)
    dedupe = actions.add_parser("set-dedupe", help="turn dedupe on/off for a bucket's new data")
    dedupe.add_argument("bucket")
    dedupe.add_argument("state", choices=["on", "off"])
    dedupe.add_argument("--compression-level", type=int, metavar="N",
                        help="zstd level for the bucket's new chunks (0 = no compression)")
    dedupe.set_defaults(func=cmd_set_dedupe)
    show = actions.add_parser("show-dedupe", help="print a bucket's dedupe setting")
    show.add_argument("bucket")
    show.set_defaults(func=cmd_show_dedupe)

    for p in (fsck, gc, stats, dedupe, show):
        backend_options(p)


def cmd_fsck(args: argparse.Namespace) -> int:
    async def work(engine: Engine) -> FsckResult:
        return await engine.fsck(CLI, repair=args.repair, stale_seconds=args.stale_after)

    result = run_admin(settings_from(args), work)
    r = result.report
    doc = {
        "clean": result.clean,
        "live_manifests": result.live_manifests,
        "chunks": r.chunks,
        "missing": [[o, t, fp.hex()] for o, t, fp in r.missing],
        "missing_refs": [[t, fp.hex(), o] for t, fp, o in r.missing_refs],
        "stale_refs": [[t, fp.hex(), o] for t, fp, o in r.stale_refs],
        "young_refs": r.young_refs,
        "orphans": len(r.orphans),
        "corrupt": [[t, fp.hex(), why] for t, fp, why in r.corrupt],
        "unreadable_manifests": result.unreadable_manifests,
        "orphan_manifests": result.orphan_manifests,
        "removed_manifests": result.removed_manifests,
        "orphan_stripes": len(result.orphan_stripes),
        "removed_stripes": result.removed_stripes,
        "pending_release": result.pending_release,
        "repaired": r.repaired,
    }
    print(json.dumps(doc, indent=2))
    return 0 if result.clean or args.repair else 1


def cmd_gc(args: argparse.Namespace) -> int:
    async def work(engine: Engine) -> GcResult:
        return await engine.collect_garbage(CLI, args.grace)

    result = run_admin(settings_from(args), work)
    print(json.dumps({"outcomes": result.report.counts, "reclaimed_bytes": result.reclaimed_bytes}))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    async def work(engine: Engine) -> dict:
        out: dict = {"buckets": {}}
        for record, s in await engine.space_stats(CLI, args.bucket or None):
            out["buckets"][record.name] = _stats_doc(s)
        if not args.bucket:
            chunks, stored = await engine.chunk_pool_bytes(CLI)
            logical = sum(b["chunked_logical_bytes"] for b in out["buckets"].values())
            out["chunk_pool"] = {
                "chunks": chunks,
                "stored_bytes": stored,
                "chunked_logical_bytes": logical,
                "ratio": round(logical / max(stored, 1), 3),
            }
        return out

    print(json.dumps(run_admin(settings_from(args), work), indent=2))
    return 0


def _stats_doc(s: SpaceStats) -> dict:
    return {
        "objects": s.objects,
        "logical_bytes": s.logical_bytes,
        "inline_bytes": s.inline_bytes,
        "stripe_bytes": s.stripe_bytes,
        "chunked_logical_bytes": s.chunked_logical_bytes,
        "stored_chunk_bytes": s.referenced_chunk_bytes,
        "ratio": round(s.ratio, 3),
    }


def cmd_set_dedupe(args: argparse.Namespace) -> int:
    policy = BucketDedupe(args.state == "on", args.compression_level)

    async def work(engine: Engine) -> None:
        await engine.set_dedupe_policy(CLI, args.bucket, policy)

    run_admin(settings_from(args), work)
    print(json.dumps({"bucket": args.bucket, "dedupe": args.state,
                      "compression_level": args.compression_level}))
    return 0


def cmd_show_dedupe(args: argparse.Namespace) -> int:
    async def work(engine: Engine) -> BucketDedupe:
        return await engine.dedupe_policy(CLI, args.bucket)

    policy = run_admin(settings_from(args), work)
    print(json.dumps({"bucket": args.bucket, "enabled": policy.enabled,
                      "compression_level": policy.compression_level}))
    return 0
