"""Gateway settings: defaults, a YAML file (``--config``) and command-line overrides."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from backup.schedule import parse_schedules
from replication.remote_region import RegionSettings
from tiering.policy import Policy, default_policy
from tiering.policy_file import load_policy

DEFAULT_DATA_DIR = os.environ.get("ATONIX_DATA_DIR", "./atonix-data")


@dataclass(slots=True)
class Settings:
    backend: str = "local"  # local | rados
    data_dir: str = DEFAULT_DATA_DIR  # embedded backend
    ceph_conf: str | None = None  # rados backend
    pool_prefix: str = "atonix"
    listen: str = "127.0.0.1:7070"
    workers: int = 1
    region: str = "us-east-1"
    domains: list[str] = field(default_factory=lambda: ["localhost"])
    log_level: str = "info"
    log_format: str = "text"  # text | json
    access_log: bool = True
    # Backend operations in flight per process: 8 concurrent 4 MiB uploads keep
    # 8 x write_window chunk writes going (512 measured ~20% faster than 128).
    max_in_flight: int = 512
    inline_limit: int = 64 * 1024
    stripe_size: int = 4 * 1024 * 1024
    # Data path: dedupe new payloads (off: fixed stripes), default zstd level,
    # and the background chunk collector (grace before an unreferenced chunk
    # goes; seconds between passes, 0 = no background collector).
    dedupe: bool = True
    compression_level: int = 3
    gc_grace_seconds: float = 3600.0
    gc_interval_seconds: float = 600.0
    cache_bytes: int = 64 * 1024 * 1024  # in-memory chunk cache per process (0 = off)
    # Hot index entries (and small objects) per process, coherent across gateways (0 = off).
    hot_cache_bytes: int = 64 * 1024 * 1024
    # FastCDC chunk sizes (defaults from the sweep in docs/design-dedupe.md) and the
    # least share of a chunk zstd must save for the chunk to be stored compressed.
    chunk_min_size: int = 8 * 1024
    chunk_avg_size: int = 24 * 1024
    chunk_max_size: int = 128 * 1024
    compression_min_saving: float = 0.03
    # Edited chunks as zstd deltas against the chunks they replace (docs/design-dedupe.md 3a).
    delta_chunks: bool = True
    # New chunks in packs of about this many bytes, one write each (docs/design-dedupe.md
    # 11); 0 = one object per chunk, as before packs. Packs below pack_min_live are
    # compacted by the collector.
    pack_bytes: int = 4 * 1024 * 1024
    pack_min_live: float = 0.5
    # Overwritten or deleted payloads above this size are released in the
    # background through a durable queue (the request does not wait for it).
    release_inline_bytes: int = 64 * 1024 * 1024
    # ...and a gateway releases another's queued payload once it is this old
    # (the other is releasing it; after this long it probably died).
    release_adopt_seconds: float = 600.0
    # A bucket index shard splits in two past this many keys (engine.index_shards).
    index_split_threshold: int = 50_000
    # Per bucket: {name: {enabled: bool, compression_level: int}}; a policy set
    # with `atonix-cli bucket set-dedupe` (stored with the bucket) wins.
    bucket_dedupe: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Scheduled backups (backup.schedule) and the S3 endpoint of s3:// targets.
    backups: list[dict[str, Any]] = field(default_factory=list)
    backup_endpoint: dict[str, Any] = field(default_factory=dict)
    backup_check_seconds: float = 60.0
    # The tiering policy file (tiering.yaml: tiers, rules, the mover's throttle);
    # without one, tiers hot and warm and no rules (tiering.policy.default_policy).
    tiering: str | None = None
    # Seconds between the background mover's passes (0 = none; `tier apply` still works).
    tier_interval_seconds: float = 3600.0
    # How often the gateways look for an edited policy file (reloaded without a restart).
    tier_reload_seconds: float = 5.0
    # Clients' reads counted per object for the policy (engine.read_log): flushed to the
    # meta pool this often (a crash loses at most this much), a share of reads sampled.
    read_stats_flush_seconds: float = 30.0
    read_stats_sample_rate: float = 1.0
    # How often the gateway holding the replication lease ships change logs (0 = never).
    replication_interval_seconds: float = 0.25
    # The shipping lease's lifetime: how long a dead holder's shipping waits for another.
    replication_lease_seconds: float = 30.0
    # Other regions replication rules may name (arn:aws:s3:REGION::BUCKET): per name,
    # endpoints (a list of its gateways' URLs), access_key and secret_key of the user
    # the shipper writes as (the owner of the destination buckets), optional s3_region.
    regions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # This deployment's own name among the regions: a bucket's primacy names it when
    # this region is the bucket's primary (failover; see engine.primacy).
    region_name: str = ""

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def validate(self) -> None:
        if self.backend not in ("local", "rados"):
            raise ValueError(f"backend must be local or rados, not {self.backend!r}")
        if self.backend == "rados" and not self.ceph_conf:
            raise ValueError("the rados backend needs --ceph-conf FILE")
        if ":" not in self.listen:
            raise ValueError(f"--listen must be HOST:PORT, not {self.listen!r}")
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        parse_schedules(self.backups)  # a mistyped schedule fails at start, not at 02:30
        self.tiering_policy()  # so does an invalid policy (its error names file and line)
        self.region_settings()
        if self.region_name and not _REGION_NAME.match(self.region_name):
            raise ValueError(f"region_name: lower-case letters, digits and '-', not "
                             f"{self.region_name!r}")
        if self.region_name in self.regions:
            raise ValueError(f"regions.{self.region_name}: that is this deployment's own name")
        if self.index_split_threshold < 10:
            raise ValueError("index_split_threshold must be at least 10")
        if self.replication_lease_seconds < 1:
            raise ValueError("replication_lease_seconds must be at least 1")

    def region_settings(self) -> list[RegionSettings]:
        """The ``regions`` section, checked: each needs endpoints and a key pair."""
        out = []
        for name, doc in self.regions.items():
            if not isinstance(doc, dict):
                raise ValueError(f"regions.{name}: expected a mapping")
            endpoints = doc.get("endpoints") or ([doc["endpoint"]] if "endpoint" in doc else [])
            if isinstance(endpoints, str):
                endpoints = [endpoints]
            if not isinstance(doc.get("plain", False), bool):
                raise ValueError(f"regions.{name}.plain: true or false")
            missing = [f for f in ("access_key", "secret_key") if not doc.get(f)]
            if not endpoints or missing:
                raise ValueError(f"regions.{name}: needs endpoints, access_key and secret_key")
            if not _REGION_NAME.match(name):
                raise ValueError(f"regions.{name}: a name of lower-case letters, digits and '-'")
            unknown = set(doc) - {"endpoints", "endpoint", "access_key", "secret_key",
                                  "s3_region", "timeout_seconds", "plain", "multipart_bytes",
                                  "auto_failover_seconds"}
            if unknown:
                raise ValueError(f"regions.{name}: unknown fields {', '.join(sorted(unknown))}")
            out.append(RegionSettings(
                name, tuple(endpoints), doc["access_key"], doc["secret_key"],
                doc.get("s3_region", "us-east-1"), float(doc.get("timeout_seconds", 30.0)),
                plain=bool(doc.get("plain", False)),
                multipart_bytes=int(doc.get("multipart_bytes", 64 * 1024 * 1024)),
                auto_failover_seconds=_failover_seconds(name, doc)))
        return out

    def tiering_policy(self) -> Policy:
        return load_policy(self.tiering) if self.tiering else default_policy()


def load_settings(config_file: str | None, overrides: dict[str, Any]) -> Settings:
    """Defaults, then the YAML file, then explicit command-line values (None = not given)."""
    values: dict[str, Any] = {}
    if config_file:
        doc = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        values.update({k.replace("-", "_"): v for k, v in doc.items()})
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    settings = Settings(**values)
    if isinstance(settings.domains, str):
        settings.domains = [d.strip() for d in settings.domains.split(",") if d.strip()]
    settings.validate()
    return settings


_REGION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _failover_seconds(name: str, doc: dict[str, Any]) -> float:
    """``auto_failover_seconds`` of a region (0: never fail over from it by itself)."""
    value = doc.get("auto_failover_seconds", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"regions.{name}.auto_failover_seconds: a number of seconds >= 0")
    if doc.get("plain") and value:
        raise ValueError(f"regions.{name}: a plain S3 endpoint cannot be failed over from")
    return float(value)
