"""The mover in the gateways: a pass over every bucket every ``interval`` seconds,
run by whichever gateway holds the deployment's ``tier-mover`` lease, with the
policy in force at the start of the pass (``tiering.reload`` may have changed it).

Each pass is ``TieringService.apply`` over all buckets (which takes each
bucket's own lease too, so a ``tier apply`` from the CLI and the gateways never
work on one bucket at once). A pass that fails is logged and retried at the
next interval; a gateway that dies stops renewing, and another takes over
once the lease lapses. A bucket with no rules (in the file or its own
lifecycle configuration) is not walked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from engine import Engine, Principal
from tiering.policy import Policy
from tiering.service import TieringObserver, TieringService

log = logging.getLogger("atonix.tiering")


def start_mover(
    engine: Engine,
    principal: Principal,
    policy: Callable[[], Policy],
    observer: TieringObserver,
    interval: float,
) -> asyncio.Task | None:
    """``policy``: the policy in force (read at every pass: it may have been reloaded)."""
    if interval <= 0:
        return None
    service = TieringService(engine, principal, policy(), served(engine), observer)
    # Renewed while a pass runs; a holder that died is replaced within two intervals.
    lease = engine.lease(principal, "tier-mover", ttl=2 * interval + 30.0)

    async def one_pass() -> None:
        if not await lease.try_acquire():
            return  # another gateway moves this round
        service.policy, service.served = policy(), served(engine)
        report = await lease.hold(service.apply)
        if report.moved_objects or report.failed:
            log.info("tier mover: %d moved (%d bytes rewritten), %d failed: %s",
                     report.moved_objects, report.moved_bytes, len(report.failed),
                     "; ".join(report.failed[:5]))

    async def loop() -> None:
        try:
            while True:
                await engine.clock.sleep(interval)
                try:
                    await one_pass()
                except Exception:
                    log.exception("tier mover pass failed")
        finally:
            with contextlib.suppress(Exception):
                await lease.release()  # stopping: the next gateway need not wait a TTL

    return asyncio.create_task(loop(), name="tier-mover")


def served(engine: Engine) -> set[str]:
    return {t.name for t in engine.tiers}
