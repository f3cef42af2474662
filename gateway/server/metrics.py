"""Prometheus metrics of one gateway process (or of all workers, in multiprocess mode)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


class GatewayMetrics:
    """Implements the S3 front end's RequestObserver, the storage OpObserver and the
    engine's DataPathObserver (engine.chunked)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "atonix_s3_requests", "S3 requests by operation and HTTP status",
            ["operation", "status"], registry=r,
        )
        self.latency = Histogram(
            "atonix_s3_request_seconds", "S3 request latency", ["operation"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.bytes_in = Counter("atonix_s3_bytes_in", "Request body bytes received", registry=r)
        self.bytes_out = Counter("atonix_s3_bytes_out", "Response body bytes sent", registry=r)
        self.backend_latency = Histogram(
            "atonix_backend_op_seconds", "Storage backend operation latency", ["op", "result"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )

        # Backups (backup.runner.BackupObserver).
        self.backup_last_success = Gauge(
            "atonix_backup_last_success_timestamp_seconds",
            "When the last successful backup of a bucket started (scheduled buckets)",
            ["bucket"], registry=r, multiprocess_mode="max",
        )
        self.backup_bytes = Counter(
            "atonix_backup_bytes", "Bytes copied by backup runs of this gateway", registry=r,
        )
        self.backup_failures = Counter(
            "atonix_backup_failures", "Backup runs of this gateway that failed", ["bucket"],
            registry=r,
        )

        # Labelled children, cached: ``labels()`` costs a lock and a tuple build per call.
        self._children: dict[tuple, tuple] = {}
        self._backend_children: dict[tuple[str, bool], object] = {}

        # Data path. Totals since the process started (summed over workers).
        self.dedupe_logical = Gauge(
            "atonix_dedupe_logical_bytes", "Payload bytes written through dedupe",
            registry=r, multiprocess_mode="sum",
        )
        self.dedupe_stored = Gauge(
            "atonix_dedupe_stored_bytes", "Chunk bytes newly stored for them (after dedupe "
            "and compression)", registry=r, multiprocess_mode="sum",
        )
        self.compression_saved = Gauge(
            "atonix_compression_saved_bytes", "Bytes zstd saved on newly stored chunks",
            registry=r, multiprocess_mode="sum",
        )
        self.integrity_errors = Counter(
            "atonix_integrity_errors", "Reads that failed a chunk or manifest check", registry=r,
        )
        self.gc_reclaimed = Counter(
            "atonix_gc_reclaimed_bytes", "Chunk bytes removed by the collector", registry=r,
        )
        self.cache_hits = Counter("atonix_cache_hits", "Chunk cache hits", registry=r)
        self.cache_misses = Counter("atonix_cache_misses", "Chunk cache misses", registry=r)
        self.cache_bytes = Gauge(
            "atonix_cache_bytes", "Bytes held by the chunk cache", registry=r,
            multiprocess_mode="livesum",
        )

        self.hot_hits = Counter(
            "atonix_hot_cache_hits", "Index lookups served by the hot cache", registry=r
        )
        self.hot_misses = Counter(
            "atonix_hot_cache_misses", "Index lookups the hot cache could not serve", registry=r
        )
        self.hot_bytes = Gauge(
            "atonix_hot_cache_bytes", "Bytes held by the hot cache", registry=r,
            multiprocess_mode="livesum",
        )
        self.hot_invalidations = Counter(
            "atonix_hot_cache_invalidations", "Keys this gateway published as changed to all "
            "gateways", registry=r,
        )
        # Set by the gateway that ran the tier mover's last full pass.
        self.tier_objects = Gauge(
            "atonix_tier_objects", "Object versions per tier (last mover pass)", ["tier"],
            registry=r, multiprocess_mode="mostrecent",
        )
        self.tier_bytes = Gauge(
            "atonix_tier_bytes", "Logical bytes per tier (last mover pass)", ["tier"],
            registry=r, multiprocess_mode="mostrecent",
        )
        self.replication_lag = Histogram(
            "atonix_replication_lag_seconds", "Seconds from a change's commit to its shipping",
            ["destination"], buckets=(0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                                      0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 900),
            registry=r,
        )
        self.replication_backlog_objects = Gauge(
            "atonix_replication_backlog_objects",
            "Change-log records left after the last pass", ["destination"], registry=r,
            multiprocess_mode="mostrecent",
        )
        self.replication_backlog_bytes = Gauge(
            "atonix_replication_backlog_bytes",
            "Bytes the change-log records left after the last pass wrote", ["destination"],
            registry=r, multiprocess_mode="mostrecent",
        )
        self.replication_failures = Counter(
            "atonix_replication_failures_total", "Keys whose shipping failed (retried)",
            ["destination"], registry=r,
        )
        self.tier_moves = Counter(
            "atonix_tier_moves", "Object versions moved between tiers", ["from", "to"],
            registry=r,
        )
        self.tier_move_bytes = Counter(
            "atonix_tier_move_bytes", "Bytes rewritten into their new tier by moves", registry=r,
        )

    def ingested(self, logical: int, stored: int, saved: int) -> None:
        self.dedupe_logical.inc(logical)
        self.dedupe_stored.inc(stored)
        self.compression_saved.inc(saved)

    def integrity_error(self) -> None:
        self.integrity_errors.inc()

    def reclaimed(self, nbytes: int) -> None:
        self.gc_reclaimed.inc(nbytes)

    def cache_access(self, hit: bool, cached_bytes: int) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()
        self.cache_bytes.set(cached_bytes)

    def hot_cache(self, hit: bool, cached_bytes: int) -> None:
        (self.hot_hits if hit else self.hot_misses).inc()
        self.hot_bytes.set(cached_bytes)

    def hot_cache_invalidated(self, keys: int) -> None:
        self.hot_invalidations.inc(keys)

    def observe(self, operation, status, seconds, bytes_in, bytes_out) -> None:
        children = self._children.get((operation, status))
        if children is None:
            children = self._children[(operation, status)] = (
                self.requests.labels(operation, str(status)),
                self.latency.labels(operation),
            )
        children[0].inc()
        children[1].observe(seconds)
        if bytes_in:
            self.bytes_in.inc(bytes_in)
        if bytes_out:
            self.bytes_out.inc(bytes_out)

    def backend_op(self, op: str, seconds: float, ok: bool) -> None:
        child = self._backend_children.get((op, ok))
        if child is None:
            child = self._backend_children[(op, ok)] = self.backend_latency.labels(
                op, "ok" if ok else "error"
            )
        child.observe(seconds)

    def succeeded(self, bucket: str, finished: float, nbytes: int) -> None:
        self.backup_bytes.inc(nbytes)

    def failed(self, bucket: str) -> None:
        self.backup_failures.labels(bucket).inc()

    def last_success(self, bucket: str, when: float) -> None:
        self.backup_last_success.labels(bucket).set(when)

    def replication_shipped(self, destination: str, lags: list[float]) -> None:
        child = self.replication_lag.labels(destination)
        for lag in lags:
            child.observe(lag)

    def replication_failed(self, destination: str) -> None:
        self.replication_failures.labels(destination).inc()

    def replication_backlog(self, destination: str, objects: int, nbytes: int) -> None:
        self.replication_backlog_objects.labels(destination).set(objects)
        self.replication_backlog_bytes.labels(destination).set(nbytes)

    def tier_moved(self, source: str, target: str, nbytes: int) -> None:
        self.tier_moves.labels(source, target).inc()
        self.tier_move_bytes.inc(nbytes)

    def tier_totals(self, totals: dict[str, tuple[int, int]]) -> None:
        for tier, (objects, nbytes) in totals.items():
            self.tier_objects.labels(tier).set(objects)
            self.tier_bytes.labels(tier).set(nbytes)

    def exposition(self) -> tuple[bytes, str]:
        """The text format; with several workers, the merged view of all of them."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
