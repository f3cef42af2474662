"""Shipping one bucket's change log to the destinations of its replication rules.

A pass reads the oldest records of the log (``AuthorizedBucket.changes``),
groups them by key and makes each destination agree with the source for
that key (``AuthorizedBucket.replicate_key``: by state, so a record shipped
twice or late does no harm), with at most ``parallel`` keys in flight. The
records of a key are trimmed only once every destination took it; a key
that failed keeps its records for the next pass, so a destination that is
down loses nothing and a kill -9 mid-pass only ships some keys again.

Destinations in this region only: a rule naming another region is refused
when the configuration is set, as no regions are configured yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine import (
    Change,
    Engine,
    EngineError,
    ObjectEntry,
    Operation,
    Principal,
    ReplicationConfig,
    ReplicationRule,
    StorageError,
)

_ADMIN = Operation.PUT_BUCKET_REPLICATION  # what the service asks for: the owner's rights


@dataclass
class ShipReport:
    keys: int = 0
    copied: int = 0
    updated: int = 0
    removed: int = 0
    bytes: int = 0
    trimmed: int = 0
    lags: list[float] = field(default_factory=list)  # seconds from commit to shipped
    failures: list[str] = field(default_factory=list)
    backlog: int = 0  # records left after the pass (a full batch: maybe more)


def destinations(config: ReplicationConfig) -> set[str]:
    return {r.destination_bucket for r in config.rules if r.enabled}


def rule_picker(config: ReplicationConfig, key: str,
                destination: str) -> Callable[[ObjectEntry], ReplicationRule | None]:
    """The rule that ships a version of ``key`` to ``destination`` (by its tags)."""

    def pick(version: ObjectEntry) -> ReplicationRule | None:
        for rule in config.rules_for(key, version.tags):
            if rule.destination_bucket == destination:
                return rule
        return None

    return pick


class BucketShipper:
    def __init__(self, engine: Engine, principal: Principal, batch: int = 1000,
                 parallel: int = 8) -> None:
        self.engine = engine
        self.principal = principal
        self.batch = batch
        self.parallel = parallel

    async def ship(self, name: str) -> tuple[ShipReport, ReplicationConfig | None]:
        """One pass over bucket ``name``'s log; the report and the configuration shipped by."""
        report = ShipReport()
        source = await self.engine.bucket(self.principal, name, _ADMIN)
        config = await source.replication()
        changes = await source.changes(self.batch)
        if config is None:  # removed: what was logged meanwhile has nowhere to go
            await source.trim_changes(changes)
            return report, None
        by_key: dict[str, list[Change]] = {}
        for change in changes:
            by_key.setdefault(change.key, []).append(change)
        limit = asyncio.Semaphore(self.parallel)

        async def one(key: str, group: list[Change]) -> list[Change]:
            async with limit:
                await self._ship_key(source, config, key, group, report)
            return group

        done = await asyncio.gather(*(one(k, g) for k, g in by_key.items()),
                                    return_exceptions=True)
        shipped = [c for outcome in done if isinstance(outcome, list) for c in outcome]
        for (key, _), outcome in zip(by_key.items(), done, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, (EngineError, StorageError)):
                    raise outcome
                report.failures.append(f"{name}/{key}: {outcome}")
        await source.trim_changes(shipped)
        report.trimmed = len(shipped)
        report.backlog = len(changes) - len(shipped)
        return report, config

    async def _ship_key(self, source, config: ReplicationConfig, key: str,
                        group: list[Change], report: ShipReport) -> None:
        gone = tuple(sorted({vid for change in group for vid in change.gone}))
        for name in sorted(destinations(config)):
            target = await self.engine.bucket(self.principal, name, _ADMIN)
            result = await source.replicate_key(key, gone, target,
                                                rule_picker(config, key, name))
            report.copied += result.copied
            report.updated += result.updated
            report.removed += result.removed
            report.bytes += result.bytes
        report.keys += 1
        now = time.time()
        report.lags.extend(now - change.time for change in group)
