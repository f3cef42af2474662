"""Prometheus metrics of one gateway process (or of all workers, in multiprocess mode)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)


class GatewayMetrics:
    """Implements the S3 front end's RequestObserver and the storage OpObserver."""

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

        # Labelled children, cached: ``labels()`` costs a lock and a tuple build per call.
        self._children: dict[tuple, tuple] = {}
        self._backend_children: dict[tuple[str, bool], object] = {}

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

    def exposition(self) -> tuple[bytes, str]:
        """The text format; with several workers, the merged view of all of them."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
