"""The composition root: settings -> backend -> engine -> S3 front end + operations routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from aiohttp import web

from backup.schedule import BackupScheduler, parse_schedules
from backup.targets import Endpoint, open_target
from dedupe import ChunkingConfig, failpoints
from engine import (
    BucketDedupe,
    Clock,
    Engine,
    EngineSettings,
    OffsetClock,
    Principal,
    ReadTracking,
    SystemClock,
)
from gateway.server.config import Settings
from gateway.server.metrics import GatewayMetrics
from replication.remote_region import RegionClient
from replication.service import start_replication
from s3api.app import S3Frontend
from s3api.context import S3Settings
from storage.factory import open_backend
from storage.instrumented import InstrumentedBackend
from tiering.background import start_mover
from tiering.policy import Policy
from tiering.reload import PolicyWatcher
from tiering.service import engine_tiers

log = logging.getLogger("atonix.server")

ENGINE_KEY = web.AppKey("engine", Engine)
# Who the process's own background work acts as (the engine allows services everything).
COLLECTOR = Principal.service("chunk-gc")
BACKUPS = Principal.service("backup-scheduler")
TIER_MOVER = Principal.service("tier-mover")
REPLICATOR = Principal.service("replication")
METRICS_KEY = web.AppKey("metrics", GatewayMetrics)


def make_engine(settings: Settings, metrics: GatewayMetrics | None = None) -> Engine:
    backend = open_backend(
        settings.backend,
        data_dir=settings.data_dir,
        ceph_conf=settings.ceph_conf,
        max_in_flight=settings.max_in_flight,
    )
    if metrics is not None:
        backend = InstrumentedBackend(backend, metrics)  # type: ignore[assignment]
    return Engine.over(
        backend,
        EngineSettings(
            pool_prefix=settings.pool_prefix,
            inline_limit=settings.inline_limit,
            stripe_size=settings.stripe_size,
            dedupe=settings.dedupe,
            compression_level=settings.compression_level,
            gc_grace_seconds=settings.gc_grace_seconds,
            cache_bytes=settings.cache_bytes,
            hot_cache_bytes=settings.hot_cache_bytes,
            chunking=ChunkingConfig(
                settings.chunk_min_size, settings.chunk_avg_size, settings.chunk_max_size
            ),
            compression_min_saving=settings.compression_min_saving,
            delta_chunks=settings.delta_chunks,
            pack_bytes=settings.pack_bytes,
            pack_min_live=settings.pack_min_live,
            release_inline_bytes=settings.release_inline_bytes,
            release_adopt_seconds=settings.release_adopt_seconds,
            index_split_threshold=settings.index_split_threshold,
            tiers=engine_tiers(settings.tiering_policy()),
            regions=tuple(settings.regions),
            region_name=settings.region_name,
            bucket_dedupe={
                name: BucketDedupe(bool(doc.get("enabled", True)), doc.get("compression_level"))
                for name, doc in settings.bucket_dedupe.items()
            },
        ),
        observer=metrics,
        clock=process_clock(),
        reads=ReadTracking(settings.read_stats_flush_seconds, settings.read_stats_sample_rate),
    )


def process_clock() -> Clock:
    """The system clock, or (ATONIX_CLOCK_OFFSET=SECONDS, for tests) one shifted ahead."""
    offset = float(os.environ.get("ATONIX_CLOCK_OFFSET") or 0)
    return OffsetClock(offset) if offset else SystemClock()


def serve_tiers(engine: Engine, policy: Policy) -> None:
    """A reloaded policy's tiers, served at once if they changed."""
    tiers = engine_tiers(policy)
    if tiers != engine.tiers:
        engine.replace_tiers(TIER_MOVER, tiers)


def start_collector(engine: Engine, interval: float) -> asyncio.Task | None:
    """The background chunk collector (None when disabled).

    Every process runs the loop, but a pass runs only in the process holding
    the deployment's ``chunk-gc`` lease, so gateways do not repeat each
    other's work; when the holder dies its lease lapses and another takes
    over. (Collecting concurrently would still be safe: every step is a
    guarded compare-and-swap.)
    """
    if interval <= 0:
        return None
    # The holder renews at each wake-up, so the lease must outlive one interval; a
    # holder that died is replaced within two.
    lease = engine.lease(COLLECTOR, "chunk-gc", ttl=2 * interval + 30.0)

    async def loop() -> None:
        try:
            await collect_forever()
        finally:
            with contextlib.suppress(Exception):
                await lease.release()  # stopping: the next gateway need not wait a TTL

    async def collect_forever() -> None:
        while True:
            await engine.clock.sleep(interval)
            try:
                if not await lease.try_acquire():
                    continue  # another gateway collects this round
                result = await lease.hold(lambda: engine.collect_garbage(COLLECTOR))
                log.info("chunk gc: %s, %d bytes reclaimed",
                         result.report.counts, result.reclaimed_bytes)
            except Exception:
                log.exception("chunk gc pass failed")

    return asyncio.create_task(loop(), name="chunk-gc")


def start_backups(
    engine: Engine, settings: Settings, metrics: GatewayMetrics
) -> asyncio.Task | None:
    """The backup scheduler (None without ``backups:`` in the config)."""
    schedules = parse_schedules(settings.backups)
    endpoint = Endpoint.configured(settings.backup_endpoint, os.environ)

    def target(spec: str):
        return open_target(spec, engine, BACKUPS, endpoint)

    scheduler = BackupScheduler(engine, BACKUPS, schedules, target, metrics)
    return scheduler.start(settings.backup_check_seconds)


def _has_credentials(request: web.Request) -> bool:
    return "Authorization" in request.headers or "X-Amz-Credential" in request.query


def build_app(settings: Settings) -> web.Application:
    # Bodies stream through handlers; aiohttp's own limit only guards non-streamed reads.
    # read_bufsize: aiohttp pauses the socket once 2x this much body is buffered; its
    # 64 KiB default stalls a large upload every 128 KiB (pause/resume per piece).
    # auto_decompress off: a body sent with Content-Encoding: gzip is the object's bytes,
    # stored (and signed) as sent, never inflated on the way in.
    app = web.Application(
        client_max_size=1024**2,
        handler_args={
            "max_field_size": 65536,
            "read_bufsize": 512 * 1024,
            "auto_decompress": False,
        },
    )
    failpoints.arm_from_env()  # ATONIX_FAILPOINTS: crash tests end the process at a step
    metrics = GatewayMetrics()
    engine = make_engine(settings, metrics)
    app[ENGINE_KEY] = engine
    app[METRICS_KEY] = metrics
    frontend = S3Frontend(
        engine,
        S3Settings(region=settings.region, domains=tuple(settings.domains)),
        observer=metrics,
    )

    watchers: list[PolicyWatcher | None] = [None]  # the tiering policy's, once started

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await engine.start()
        collector = start_collector(engine, settings.gc_interval_seconds)
        backups = start_backups(engine, settings, metrics)
        policy = settings.tiering_policy()
        watcher, watching = None, None
        if settings.tiering and settings.tier_reload_seconds > 0:
            watcher = watchers[0] = PolicyWatcher(
                settings.tiering, policy, settings.tier_reload_seconds
            )
            watcher.subscribe(lambda new: serve_tiers(engine, new))
            watching = watcher.start()
        mover = start_mover(
            engine, TIER_MOVER, lambda: watcher.policy if watcher else policy, metrics,
            settings.tier_interval_seconds,
        )
        shipping = start_replication(
            engine, REPLICATOR, metrics, settings.replication_interval_seconds,
            {r.name: RegionClient(r) for r in settings.region_settings()},
            lease_seconds=settings.replication_lease_seconds,
            own_region=settings.region_name,
        )
        yield
        for task in (watching, shipping, mover, backups, collector):  # stopped in this order
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await engine.stop()

    async def health(request: web.Request) -> web.StreamResponse:
        # A signed GET /health is an S3 request for a bucket named "health".
        if _has_credentials(request):
            return await frontend.handle(request)
        try:
            await engine.healthy()
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return web.json_response({"status": "unavailable", "error": str(exc)}, status=503)
        watcher = watchers[0]
        if watcher is not None and watcher.error:
            # Still serving (on the last good policy): degraded, not out of rotation.
            return web.json_response({"status": "degraded", "backend": engine.backend_kind,
                                      "tiering": watcher.error})
        return web.json_response({"status": "ok", "backend": engine.backend_kind})

    async def prometheus(request: web.Request) -> web.StreamResponse:
        if _has_credentials(request):
            return await frontend.handle(request)
        body, content_type = metrics.exposition()
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = content_type
        return resp

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", health, allow_head=True)
    app.router.add_get("/metrics", prometheus, allow_head=False)
    frontend.add_routes(app)
    return app
