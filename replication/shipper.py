"""Shipping one bucket's change log to the destinations of its replication rules.

A pass reads the oldest records of the log (``AuthorizedBucket.changes``),
groups them by key and makes each destination agree with the source for
that key (``AuthorizedBucket.replicate_key``: by state, so a record shipped
twice or late does no harm), with at most ``parallel`` (64) keys in flight. The
records of a key are trimmed only once every destination took it; a key
that failed keeps its records for the next pass, so a destination that is
down loses nothing and a kill -9 mid-pass only ships some keys again.

A destination of this region is shipped to by the engine (payloads cloned);
one in another region (``arn:aws:s3:REGION::BUCKET``) through that region's
gateways (``replication.remote_sync``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from engine import (
    PENDING,
    REPLICATION_STATUS_HEADER,
    Change,
    Engine,
    EngineError,
    ObjectEntry,
    Operation,
    Primacy,
    Principal,
    ReplicationConfig,
    ReplicationRule,
    StorageError,
    parse_destination,
)
from replication.remote_region import FencedOff, RegionClient, RegionUnavailable
from replication.remote_sync import sync_remote_key

ADMIN = Operation.PUT_BUCKET_REPLICATION  # what the service asks for: the owner's rights
MAX_KEY_FAILURES = 8  # passes a key may fail (with backoff between) before it is FAILED


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
    fenced: int = 0  # keys another region refused: it holds a newer primacy
    backlog: int = 0  # records left after the pass (a full batch: maybe more)
    backlog_bytes: int = 0  # bytes those records wrote


def destinations(config: ReplicationConfig) -> set[str]:
    """The destination ARNs of the enabled rules."""
    return {r.destination for r in config.rules if r.enabled}


def target_name(arn: str) -> str:
    """A destination as status and metrics name it: BUCKET, or REGION:BUCKET."""
    region, bucket = parse_destination(arn)
    return bucket if region is None else f"{region}:{bucket}"


def rule_picker(config: ReplicationConfig, key: str,
                destination: str) -> Callable[[ObjectEntry], ReplicationRule | None]:
    """The rule that ships a version of ``key`` to ``destination`` (by its tags)."""

    def pick(version: ObjectEntry) -> ReplicationRule | None:
        for rule in config.rules_for(key, version.tags):
            if rule.destination == destination:
                return rule
        return None

    return pick


class BucketShipper:
    def __init__(self, engine: Engine, principal: Principal, batch: int = 1000,
                 parallel: int = 64, regions: Mapping[str, RegionClient] | None = None,
                 own_region: str = "") -> None:
        self.engine = engine
        self.own_region = own_region
        self.regions = regions or {}
        self.principal = principal
        self.batch = batch
        self.parallel = parallel
        self._failures: dict[tuple[str, str], int] = {}  # (bucket, key) -> passes failed

    async def ship(self, name: str, shard: str | None = None,
                   ) -> tuple[ShipReport, ReplicationConfig | None]:
        """One pass over bucket ``name``'s log (or one shard of it); the report and the
        configuration shipped by."""
        report = ShipReport()
        source = await self.engine.bucket(self.principal, name, ADMIN)
        config = await source.replication()
        if config is None:  # removed: what was logged meanwhile has nowhere to go
            while changes := await source.changes(self.batch, shard):
                await source.trim_changes(changes)
            return report, None
        changes = await source.changes(self.batch, shard)
        primacy = await source.primacy()
        if primacy.epoch and primacy.primary != self.own_region:
            # Looked up afresh before anything is given up: a failover to this region
            # made in another process may not be in this one's cached copy yet.
            primacy = await source.primacy(fresh=True)
        if primacy.epoch and primacy.primary != self.own_region:
            await self._stranded(source, changes, report)
            return report, config
        by_key: dict[str, list[Change]] = {}
        for change in changes:
            by_key.setdefault(change.key, []).append(change)
        limit = asyncio.Semaphore(self.parallel)

        async def one(key: str, group: list[Change]) -> list[Change]:
            async with limit:
                await self._ship_key(source, config, key, group, report, primacy)
            return group

        done = await asyncio.gather(*(one(k, g) for k, g in by_key.items()),
                                    return_exceptions=True)
        shipped = [c for outcome in done if isinstance(outcome, list) for c in outcome]
        for (key, group), outcome in zip(by_key.items(), done, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, FencedOff):
                await self._fenced(source, key, outcome, report)
                shipped.extend(group)
            elif isinstance(outcome, BaseException):
                report.failures.append(f"{name}/{key}: {type(outcome).__name__}: {outcome}")
                if isinstance(outcome, RegionUnavailable):
                    continue  # the region, not the key: backing off, never giving up
                if await self._given_up(source, name, key):
                    shipped.extend(group)  # FAILED: its next change logs it again
            else:
                self._failures.pop((name, key), None)
        await source.trim_changes(shipped)
        report.trimmed = len(shipped)
        report.backlog = len(changes) - len(shipped)
        left = {c.record for c in shipped}
        report.backlog_bytes = sum(c.size for c in changes if c.record not in left)
        return report, config

    async def _stranded(self, source, changes: list[Change], report: ShipReport) -> None:
        """A passive copy ships none of its own writes: any it has were made while it
        was the primary and never reached the one that replaced it, which would
        refuse them (they would overwrite what it wrote since). They stay here, FAILED."""
        for key in sorted({c.key for c in changes}):
            mine = [v for v in await source.key_versions(key)
                    if v.headers.get(REPLICATION_STATUS_HEADER) == PENDING]
            if mine:  # replicas from the primary are logged too: they are no one's loss
                await source.mark_replicated(key, mine, failed=True)
                report.fenced += 1
        await source.trim_changes(changes)
        report.trimmed = len(changes)

    async def _fenced(self, source, key: str, refusal: FencedOff, report: ShipReport) -> None:
        """Another region took over this bucket (a failover): this copy is passive from
        now on, and its versions the new primary refused stay here, FAILED, never
        overwriting what was written there since."""
        await source.adopt_primacy(refusal.newer)
        await source.mark_replicated(key, await source.key_versions(key), failed=True)
        report.fenced += 1
        report.failures.append(f"{source.name}/{key}: fenced off: {refusal}")

    async def _given_up(self, source, name: str, key: str) -> bool:
        """After MAX_KEY_FAILURES passes, a key's PENDING versions become FAILED and its
        records go: a key that cannot be shipped must not hold back its shard's log."""
        failures = self._failures.get((name, key), 0) + 1
        self._failures[(name, key)] = failures
        if failures < MAX_KEY_FAILURES:
            return False
        try:
            await source.mark_replicated(key, await source.key_versions(key), failed=True)
        except (EngineError, StorageError):
            return False
        del self._failures[(name, key)]
        return True

    async def _ship_key(self, source, config: ReplicationConfig, key: str,
                        group: list[Change], report: ShipReport, primacy: Primacy) -> None:
        gone = tuple(sorted({vid for change in group for vid in change.gone}))
        written = tuple(sorted({vid for change in group for vid in change.written}))
        shipped: dict[str | None, ObjectEntry] = {}
        for arn in sorted(destinations(config)):
            region, bucket = parse_destination(arn)
            pick = rule_picker(config, key, arn)
            if region is None:  # the owner's own bucket, still (not one re-created since)
                target = await self.engine.bucket(self.principal, bucket, ADMIN,
                                                  expected_owner=source.owner)
                result = await source.replicate_key(key, gone, target, pick)
            else:
                client = self.regions.get(region)
                if client is None:
                    raise RegionUnavailable(f"region {region} is not configured")
                result = await sync_remote_key(source, key, gone, written, client, bucket,
                                               pick, primacy)
            report.copied += result.copied
            report.updated += result.updated
            report.removed += result.removed
            report.bytes += result.bytes
            shipped.update((v.version_id, v) for v in result.shipped)
        await source.mark_replicated(key, list(shipped.values()))  # every destination has them
        report.keys += 1
        now = time.time()
        report.lags.extend(now - change.time for change in group)
