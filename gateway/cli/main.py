"""atonix-cli: one command to serve and administer the gateway.

Every sub-command takes the same backend options (or a ``--config`` YAML file
holding them), so admin commands work against the same storage the running
gateways use, while they run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from gateway.cli import backup, datapath, replication, restore, tier, users
from gateway.cli.options import add_backend_options, settings_from
from gateway.cli.session import CommandFailed

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atonix-cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the S3 gateway")
    add_backend_options(serve)
    serve.add_argument("--listen", help="HOST:PORT to listen on (default 127.0.0.1:7070)")
    serve.add_argument("--workers", type=int, help="worker processes sharing the port")
    serve.add_argument("--domain", dest="domains", action="append",
                       help="domain for virtual-hosted-style buckets (repeatable)")
    serve.add_argument("--region", help="region this endpoint serves (default us-east-1)")
    serve.add_argument("--log-level", help="debug, info, warning, error")
    serve.add_argument("--log-format", choices=["text", "json"], help="log line format")
    serve.add_argument("--no-access-log", dest="access_log", action="store_const", const=False,
                       help="do not log every request")
    serve.set_defaults(func=cmd_serve)

    creds = sub.add_parser("admin-credentials",
                           help="print the admin access key (creating it on first use)")
    add_backend_options(creds)
    creds.set_defaults(func=users.cmd_admin_credentials)

    users.add_parser(sub, add_backend_options)
    datapath.add_parsers(sub, add_backend_options)
    restore.add_parser(sub, add_backend_options)
    backup.add_parser(sub, add_backend_options)
    tier.add_parser(sub, add_backend_options)
    replication.add_parser(sub, add_backend_options)

    bench = sub.add_parser("bench", add_help=False,
                           help="run the benchmark suite (see atonix-cli bench --help)")
    bench.set_defaults(func=lambda _args: cmd_bench([]))

    dev = sub.add_parser("dev-cluster", help="start/stop a throwaway single-node Ceph cluster")
    dev.add_argument("action", choices=["up", "down", "status"])
    dev.add_argument("dir", nargs="?", help="cluster directory (default /tmp/atonix-ceph)")
    dev.set_defaults(func=cmd_dev_cluster)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.server import runner

    settings = settings_from(args)
    if users.bootstrap_admin(settings) is not None:
        # The secret itself is never printed here: serve's output usually ends up in a log.
        print("Created the admin user; `atonix-cli admin-credentials` shows its key.", flush=True)
    print(f"Atonix Gateway on http://{settings.listen} (backend {settings.backend}, "
          f"{settings.workers} worker(s))", flush=True)
    runner.run(settings)
    return 0


def cmd_bench(argv: list[str]) -> int:
    # The suite has its own options; hand it everything after "bench" untouched.
    try:
        from benchmarks.suite import main as bench_main
    except ModuleNotFoundError as e:  # the bench extras come with the full install only
        print(
            f"atonix-cli bench needs the benchmark tools ({e.name} is missing): run "
            "scripts/install.sh --full (Ceph, radosgw, wrk, moto and the bench extras)",
            file=sys.stderr,
        )
        return 2
    return bench_main(argv)


def cmd_dev_cluster(args: argparse.Namespace) -> int:
    script = REPO_ROOT / "scripts" / "dev-cluster"
    cmd = [str(script), args.action] + ([args.dir] if args.dir else [])
    return subprocess.call(cmd, env=os.environ.copy())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return cmd_bench(argv[1:])
    parser = build_parser()
    args = parser.parse_args(restore.joined_offsets(argv))
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"atonix-cli: {exc}", file=sys.stderr)
        return 2
    except CommandFailed as exc:
        print(f"atonix-cli: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
