"""The replication service in the gateways: every gateway ships the change-log shards it
holds leases on (``replication.shard_leases``: one lease per shard of every bucket with
a replication configuration, shared out among the gateways), with
``replication.shipper``, pass after pass while there is work and every ``interval``
seconds when there is none. A gateway that dies stops renewing its leases; the
others take its shards over once they lapse (30 s by default) and ship again, by
state, what it was shipping.

A shard whose pass failed (a destination gone, the cluster unwell) is tried
again after an exponential backoff with jitter (``interval`` doubling up to
``max_backoff``), so a destination that stays down costs one attempt per
backoff period, not a busy loop; its records stay in the log meanwhile.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
    ReplicationConfig,
)
from replication.failover import FailoverWatch
from replication.remote_region import RegionClient
from replication.shard_leases import Shard, ShardLeases, run_renewals
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
        self._backoff: dict[Shard, _Backoff] = {}
        self._removed: dict[str, float] = {}  # bucket -> when its configuration was gone

    async def buckets(self) -> list[str]:
        records = self.engine.records(self.principal, REPLICATED_BUCKETS)
        return [name for name, _ in await records.list()]

    async def shards(self) -> list[Shard]:
        """Every change-log shard of every configured bucket."""
        out: list[Shard] = []
        for name in await self.buckets():
            try:
                bucket = await self.engine.bucket(self.principal, name, ADMIN)
                out += [(name, shard) for shard in await bucket.log_shards()]
            except NoSuchBucket:
                await self.engine.records(self.principal, REPLICATED_BUCKETS).delete(name)
        return out

    async def pass_once(self, leases: ShardLeases | None = None) -> dict[str, ShipReport]:
        """Ship the shards this gateway holds leases on (without ``leases``: every one)
        that are not backing off; reports by bucket, its shards' summed."""
        mine = await leases.settle(self.shards) if leases is not None else await self.shards()
        for name in sorted({name for name, _ in mine}) if self._watching else ():
            await self._watch(name)
        out: dict[str, ShipReport] = {}
        configs: dict[str, ReplicationConfig | None] = {}
        now = self.engine.clock.monotonic()
        for name, shard in mine:
            held = self._backoff.get((name, shard))
            if held is not None and now < held.not_before:
                continue
            report, configs[name] = await self._ship(name, shard)
            out[name] = _summed(out.get(name), report)
        for name, report in out.items():
            await self._observe(name, configs[name], report)
        return out

    async def _ship(self, name: str, shard: str) -> tuple[ShipReport, ReplicationConfig | None]:
        try:
            report, config = await self.shipper.ship(name, shard)
        except NoSuchBucket:
            await self.engine.records(self.principal, REPLICATED_BUCKETS).delete(name)
            return ShipReport(), None
        except Exception as exc:
            report, config = ShipReport(failures=[f"{name}: {type(exc).__name__}: {exc}"]), None
        self._settle((name, shard), bool(report.failures))
        return report, config

    async def _observe(self, name: str, config: ReplicationConfig | None,
                       report: ShipReport) -> None:
        if config is None and not report.failures:
            await self._unconfigured(name)
            return
        self._removed.pop(name, None)
        for arn in destinations(config) if config is not None else ():
            target = target_name(arn)
            self.observer.replication_shipped(target, report.lags)
            self.observer.replication_backlog(target, report.backlog, report.backlog_bytes)
            for _ in report.failures:
                self.observer.replication_failed(target)
        if report.failures:
            log.warning("replication of %s: %d key(s) failed, retried later: %s", name,
                        len(report.failures), "; ".join(report.failures[:3]))

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

    def _settle(self, shard: Shard, failed: bool) -> None:
        if not failed:
            self._backoff.pop(shard, None)
            return
        held = self._backoff.setdefault(shard, _Backoff())
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
    # One lease per change-log shard, shared out among the gateways; a dead holder's
    # shards are taken over once their leases lapse: the RTO of shipping.
    leases = ShardLeases(engine, principal, lease_seconds)

    async def loop() -> None:
        """Passes back to back while there is work, one every ``interval`` when idle."""
        renewals = asyncio.create_task(run_renewals(leases), name="replication-leases")
        try:
            while True:
                try:
                    reports = await service.pass_once(leases)
                except Exception:
                    log.exception("replication pass failed")
                    reports = {}
                if not any(r.trimmed for r in reports.values()):
                    await engine.clock.sleep(interval)
        finally:
            renewals.cancel()
            with contextlib.suppress(Exception):
                await leases.release_all()
            for client in (regions or {}).values():
                await client.close()

    return asyncio.create_task(loop(), name="replication")


def _summed(total: ShipReport | None, more: ShipReport) -> ShipReport:
    """Two shards' reports of one bucket as one."""
    if total is None:
        return more
    return ShipReport(**{f.name: getattr(total, f.name) + getattr(more, f.name)
                         for f in dataclasses.fields(ShipReport)})
