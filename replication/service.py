"""The replication service in the gateways: the gateway holding the deployment's
``replication`` lease ships the change log of every bucket with a replication
configuration (``replication.shipper``), pass after pass while there is work and
every ``interval`` seconds when there is none; the others look for the lease
every second or so, and one takes over within its lifetime (30 s by default) if the
holder dies.

A bucket whose pass failed (a destination gone, the cluster unwell) is tried
again after an exponential backoff with jitter (``interval`` doubling up to
``max_backoff``), so a destination that stays down costs one attempt per
backoff period, not a busy loop; its records stay in the log meanwhile. A
gateway that dies stops renewing the lease and another takes over once it
lapses; what the dead one was shipping is shipped again, by state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from engine import (
    REPLICATED_BUCKETS,
    Engine,
    NoSuchBucket,
    Principal,
)
from replication.failover import FailoverWatch
from replication.remote_region import RegionClient
from replication.shipper import ADMIN, BucketShipper, ShipReport, destinations, target_name

log = logging.getLogger("atonix.replication")
FORGET_AFTER_S = 30.0  # well past the 5 s the gateways cache a configuration


class ReplicationObserver(Protocol):
    """What metrics learn of the shippers (the gateway's GatewayMetrics implements it)."""

    def replication_shipped(self, destination: str, lags: list[float]) -> None: ...

    def replication_failed(self, destination: str) -> None: ...

    def replication_backlog(self, destination: str, objects: int, nbytes: int) -> None: ...


class _Quiet:
    def replication_shipped(self, destination: str, lags: list[float]) -> None:
        pass

    def replication_failed(self, destination: str) -> None:
        pass

    def replication_backlog(self, destination: str, objects: int, nbytes: int) -> None:
        pass


@dataclass
class _Backoff:
    failures: int = 0
    not_before: float = 0.0


class ReplicationService:
    def __init__(self, engine: Engine, principal: Principal,
                 observer: ReplicationObserver | None = None, interval: float = 0.25,
                 max_backoff: float = 60.0,
                 regions: Mapping[str, RegionClient] | None = None,
                 own_region: str = "") -> None:
        self.engine = engine
        self.principal = principal
        self.observer = observer or _Quiet()
        self.interval = interval
        self.max_backoff = max_backoff
        self.shipper = BucketShipper(engine, principal, regions=regions, own_region=own_region)
        self.failover = FailoverWatch(engine, principal, regions or {}, own_region)
        self._watching = bool(own_region) and any(
            c.settings.auto_failover_seconds for c in (regions or {}).values())
        self._backoff: dict[str, _Backoff] = {}
        self._removed: dict[str, float] = {}  # bucket -> when its configuration was gone

    async def buckets(self) -> list[str]:
        records = self.engine.records(self.principal, REPLICATED_BUCKETS)
        return [name for name, _ in await records.list()]

    async def pass_once(self) -> dict[str, ShipReport]:
        """Ship every configured bucket that is not backing off; reports by bucket."""
        out: dict[str, ShipReport] = {}
        now = self.engine.clock.monotonic()
        for name in await self.buckets():
            if self._watching:
                await self._watch(name)
            held = self._backoff.get(name)
            if held is not None and now < held.not_before:
                continue
            out[name] = await self._ship(name)
        return out

    async def _ship(self, name: str) -> ShipReport:
        try:
            report, config = await self.shipper.ship(name)
        except NoSuchBucket:
            await self.engine.records(self.principal, REPLICATED_BUCKETS).delete(name)
            return ShipReport()
        except Exception as exc:
            report, config = ShipReport(failures=[f"{name}: {type(exc).__name__}: {exc}"]), None
        if config is None and not report.failures:
            await self._unconfigured(name)
            return report
        self._removed.pop(name, None)
        for arn in destinations(config) if config is not None else ():
            target = target_name(arn)
            self.observer.replication_shipped(target, report.lags)
            self.observer.replication_backlog(target, report.backlog, report.backlog_bytes)
            for _ in report.failures:
                self.observer.replication_failed(target)
        self._settle(name, bool(report.failures))
        if report.failures:
            log.warning("replication of %s: %d key(s) failed, retried later: %s", name,
                        len(report.failures), "; ".join(report.failures[:3]))
        return report

    async def _watch(self, name: str) -> None:
        """Automatic failover of the bucket, if its primary has been away too long."""
        try:
            bucket = await self.engine.bucket(self.principal, name, ADMIN)
            await self.failover.check(bucket, await bucket.replication())
        except NoSuchBucket:
            return
        except Exception:
            log.exception("failover watch of %s failed", name)

    async def _unconfigured(self, name: str) -> None:
        """Forget a bucket whose configuration went, once every gateway's cached copy of
        it has expired (they may log a few more changes until then, which are trimmed)."""
        first = self._removed.setdefault(name, self.engine.clock.monotonic())
        if self.engine.clock.monotonic() - first > FORGET_AFTER_S:
            records = self.engine.records(self.principal, REPLICATED_BUCKETS)
            await records.delete(name)
            self._removed.pop(name, None)
            bucket = await self.engine.bucket(self.principal, name, ADMIN)
            if await bucket.replication() is not None:  # configured again meanwhile
                await records.put(name, b"")

    def _settle(self, name: str, failed: bool) -> None:
        if not failed:
            self._backoff.pop(name, None)
            return
        held = self._backoff.setdefault(name, _Backoff())
        held.failures += 1
        delay = min(self.max_backoff, self.interval * 2 ** held.failures)
        held.not_before = self.engine.clock.monotonic() + delay * random.uniform(0.5, 1.0)


def start_replication(engine: Engine, principal: Principal,
                      observer: ReplicationObserver | None, interval: float,
                      regions: Mapping[str, RegionClient] | None = None,
                      lease_seconds: float = 30.0, own_region: str = "") -> asyncio.Task | None:
    """The shipping loop of a gateway (None when ``interval`` is 0: disabled)."""
    if interval <= 0:
        return None
    service = ReplicationService(engine, principal, observer, interval, regions=regions,
                                 own_region=own_region)
    # A holder that died is replaced once its lease lapses: the RTO of shipping.
    lease = engine.lease(principal, "replication", ttl=lease_seconds)

    async def ship_while_held() -> None:
        """The holder's loop: passes back to back while there is work, one every
        ``interval`` when idle (the lease renews itself meanwhile: ``Lease.hold``)."""
        while True:
            reports = await service.pass_once()
            if not any(r.trimmed for r in reports.values()):
                await engine.clock.sleep(interval)

    async def loop() -> None:
        try:
            while True:
                try:
                    if await lease.try_acquire():
                        await lease.hold(ship_while_held)
                except Exception:
                    log.exception("replication pass failed")
                await engine.clock.sleep(min(max(interval, 1.0), lease_seconds / 3))
        finally:
            with contextlib.suppress(Exception):
                await lease.release()
            for client in (regions or {}).values():
                await client.close()

    return asyncio.create_task(loop(), name="replication")
