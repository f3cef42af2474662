"""Run the gateway: one event loop per process, N processes sharing the port (SO_REUSEPORT).

The kernel spreads connections over the worker processes; they share nothing
but the backend, which is exactly the multi-gateway deployment in miniature.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile

from aiohttp import web

from gateway.server.app import build_app
from gateway.server.config import Settings
from gateway.server.logs import setup_logging

log = logging.getLogger("atonix.server")


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve(settings: Settings, ready: multiprocessing.synchronize.Event | None) -> None:
    app = build_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.host, settings.port, reuse_port=settings.workers > 1, backlog=1024
    )
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %d serving on http://%s", os.getpid(), settings.listen)
    if ready is not None:
        ready.set()
    await stop.wait()
    await runner.cleanup()


def serve_worker(settings: Settings, ready=None) -> None:
    setup_logging(settings)
    _use_uvloop()
    asyncio.run(_serve(settings, ready))


def run(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; with workers > 1, supervise that many processes."""
    if settings.workers == 1:
        serve_worker(settings)
        return
    # Merged /metrics across workers needs a shared directory set before import-time use.
    own_metrics_dir = None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        own_metrics_dir = tempfile.mkdtemp(prefix="atonix-prom-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    ctx = multiprocessing.get_context("spawn")
    procs = []
    for _ in range(settings.workers):
        p = ctx.Process(target=serve_worker, args=(settings,), daemon=False)
        p.start()
        procs.append(p)

    def forward(signum, _frame) -> None:
        for p in procs:
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for p in procs:
        p.join()
    if own_metrics_dir is not None:
        # Counters of stopped workers are of no use to the next run; don't leave them in /tmp.
        shutil.rmtree(own_metrics_dir, ignore_errors=True)
