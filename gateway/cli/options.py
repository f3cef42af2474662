"""Options shared by every sub-command: the backend and the config file."""

from __future__ import annotations

import argparse

from gateway.server.config import Settings, load_settings

_SETTING_OPTIONS = (
    "backend", "data_dir", "ceph_conf", "pool_prefix", "listen", "workers",
    "domains", "region", "log_level", "log_format", "access_log", "tiering",
)


def add_backend_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend")
    g.add_argument("--config", help="YAML file with settings (command-line values win)")
    g.add_argument("--backend", choices=["local", "rados"], help="storage backend (default local)")
    g.add_argument("--data-dir", help="embedded backend data directory (default ./atonix-data)")
    g.add_argument("--ceph-conf", help="ceph.conf of the cluster (rados backend)")
    g.add_argument("--pool-prefix", help="prefix of the RADOS pools (default atonix)")
    g.add_argument("--tiering", metavar="FILE",
                   help="tiering policy (tiering.yaml); default: tiers hot and warm, no rules")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name, None) for name in _SETTING_OPTIONS}
    return load_settings(getattr(args, "config", None), overrides)
