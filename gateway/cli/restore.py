"""``atonix-cli restore BUCKET --at TIME``: a bucket as it was, from its versions.

Safe while gateways serve the bucket (every change is a guarded commit they
see at once) and idempotent: a restore cut short by a crash is resumed by
running it again with the same absolute time, which the command prints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable

from engine import Engine, RestoreReport
from gateway.cli.options import settings_from
from gateway.cli.session import CLI, run_admin

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_instant(text: str, now: float) -> float:
    """Seconds since the epoch of an ISO 8601 time (UTC if no zone) or of ``-2h``-style
    offsets before ``now``; ValueError with the accepted forms otherwise."""
    rel = _RELATIVE.match(text.strip())
    if rel:
        return now - float(rel.group(1)) * _UNIT_S[rel.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--at {text!r}: give an ISO 8601 time (2026-12-06T10:00:00Z) "
            "or an offset into the past (-90s, -30m, -2h, -1d, -1w)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def joined_offsets(argv: list[str]) -> list[str]:
    """``--at -2h`` as ``--at=-2h``: argparse would take the offset for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--at" and _RELATIVE.match(arg):
            out[-1] = f"--at={arg}"
        else:
            out.append(arg)
    return out


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def add_parser(sub, backend_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "restore",
        help="make a bucket (or a copy) hold what it held at a past time, from its versions",
    )
    p.add_argument("bucket")
    p.add_argument("--at", required=True, metavar="TIME",
                   help="ISO 8601 (2026-12-06T10:00:00Z) or relative (-2h, -30m, -1d)")
    p.add_argument("--prefix", default="", help="restore only keys under this prefix")
    p.add_argument("--to", metavar="BUCKET",
                   help="restore into this bucket (created if missing) instead of in place")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would change (created, overwritten, deleted, bytes)")
    backend_options(p)
    p.set_defaults(func=cmd_restore)


def report_doc(report: RestoreReport, bucket: str, to: str | None, seconds: float) -> dict:
    doc = {
        "bucket": bucket,
        "to": to or bucket,
        "at": iso(report.at),
        "dry_run": report.dry_run,
        "created": report.created,
        "overwritten": report.overwritten,
        "deleted": report.deleted,
        "unchanged": report.unchanged,
        "skipped_changed_meanwhile": report.skipped,
        "bytes": report.bytes,
        "seconds": round(seconds, 3),
    }
    if report.dry_run:
        doc["changes"] = [
            {"action": c.action, "key": c.key, "size": c.size, "version_id": c.version_id}
            for c in report.changes
        ]
    return doc


def cmd_restore(args: argparse.Namespace) -> int:
    at = parse_instant(args.at, time.time())
    print(f"restoring {args.bucket} to {iso(at)} (re-run with --at {iso(at)} to resume)",
          file=sys.stderr, flush=True)

    def progress(report: RestoreReport) -> None:
        print(f"  {report.keys_seen} keys: {report.created} created, {report.overwritten} "
              f"overwritten, {report.deleted} deleted", file=sys.stderr, flush=True)

    async def work(engine: Engine) -> RestoreReport:
        return await engine.restore(CLI, args.bucket, at, prefix=args.prefix, to=args.to,
                                    dry_run=args.dry_run, progress=progress)

    started = time.monotonic()
    # Storage failures: re-running resumes the restore.
    report = run_admin(settings_from(args), work,
                       lambda exc: f"restore stopped: {type(exc).__name__}: {exc}; run it "
                                   f"again with --at {iso(at)} to resume")
    doc = report_doc(report, args.bucket, args.to, time.monotonic() - started)
    print(json.dumps(doc, indent=2))
    return 0
