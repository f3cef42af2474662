"""The tiering service: plan, apply, explain and status, over the engine's interface.

Every command walks the same thing: each object version of the buckets asked
for, its facts (size, age, tags, where its data is now) and what
``Policy.place`` says about them. ``plan`` counts what would move and what
it would cost per month before and after; ``apply`` moves it, one
``AuthorizedBucket.transition`` at a time, throttled, under one lease per
bucket so two movers never work on one bucket; ``explain`` shows one object's
facts, its placement and the bytes per tier its manifests name; ``status``
counts objects and bytes per tier.

Scope today: tiers on the deployment's own backend (hot and warm). A cold
tier in the policy is validated and planned, but moves to it are reported
as ``not served`` until the cold tier exists. Last-read times are not
tracked yet: ``days_since_read`` counts from the write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from engine import (
    LIFECYCLE_ITEM,
    TIER_HEADER,
    AuthorizedBucket,
    DeleteCondition,
    Engine,
    LeaseLost,
    LifecycleRule,
    ObjectEntry,
    Operation,
    Principal,
    RemoteSettings,
    TierSettings,
    UploadsQuery,
    bare_etag,
    decode_rules,
    storage_class_of,
)
from tiering.lifecycle_rules import abort_after_days, lifecycle_policy
from tiering.policy import (
    ARCHIVE,
    COLD,
    DAY,
    STORAGE_CLASS_KINDS,
    ObjectFacts,
    Placement,
    Policy,
    Tier,
)
from tiering.throttle import Throttle

GIB = 1024**3


def engine_tiers(policy: Policy) -> tuple[TierSettings, ...]:
    """The policy's tiers as the engine holds them (a cold one with its remote bucket)."""
    return tuple(_engine_tier(t) for t in policy.tiers)


def _engine_tier(t: Tier) -> TierSettings:
    classes = tuple(
        c for c, (kind, flavour) in STORAGE_CLASS_KINDS.items()
        if kind == t.kind and (kind != COLD or flavour == t.flavour)
    )
    remote = None
    if t.kind == COLD:
        remote = RemoteSettings(
            t.endpoint, t.bucket, prefix=t.key_prefix, region=t.region,
            access_key=t.access_key, secret_key=t.secret_key, attempts=t.attempts,
            timeout_seconds=t.timeout_seconds,
        )
    return TierSettings(
        t.name, pool=t.pool, zstd_level=t.zstd_level, storage_classes=classes,
        reported_class=t.storage_class, remote=remote, pack_bytes=t.pack_bytes,
        archive=t.kind == COLD and t.flavour == ARCHIVE,
    )


@dataclass(frozen=True, slots=True)
class Version:
    bucket: str
    key: str
    entry: ObjectEntry
    noncurrent_since: float | None  # None: the current version
    noncurrent_rank: int = 0  # 0: the newest noncurrent version of its key

    @property
    def version_id(self) -> str | None:
        """What names this version to the engine: None for the current one, else its id
        (``null`` for a version written before versioning was turned on)."""
        if self.noncurrent_since is None:
            return None
        return self.entry.version_id or "null"


@dataclass
class PlanReport:
    scanned: int = 0
    # "rule: from -> to" -> [objects, bytes]
    moves: dict[str, list[int]] = field(default_factory=dict)
    not_served: dict[str, list[int]] = field(default_factory=dict)  # target tier not built
    expirations: dict[str, list[int]] = field(default_factory=dict)  # "rule: expire"
    bytes_before: dict[str, int] = field(default_factory=dict)
    bytes_after: dict[str, int] = field(default_factory=dict)
    monthly_cost_before: float = 0.0
    monthly_cost_after: float = 0.0

    def as_dict(self) -> dict:
        return {
            "scanned": self.scanned,
            "moves": {k: {"objects": v[0], "bytes": v[1]} for k, v in sorted(self.moves.items())},
            "not_served": {
                k: {"objects": v[0], "bytes": v[1]} for k, v in sorted(self.not_served.items())
            },
            "expirations": {
                k: {"objects": v[0], "bytes": v[1]} for k, v in sorted(self.expirations.items())
            },
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "monthly_cost_before": round(self.monthly_cost_before, 6),
            "monthly_cost_after": round(self.monthly_cost_after, 6),
        }


class TieringObserver(Protocol):
    """What metrics learn of the mover (the gateway's GatewayMetrics implements it)."""

    def tier_moved(self, source: str, target: str, nbytes: int) -> None: ...

    def tier_totals(self, totals: dict[str, tuple[int, int]]) -> None:
        """Objects and bytes per tier after a pass over every bucket."""


class _Quiet:
    def tier_moved(self, source: str, target: str, nbytes: int) -> None:
        pass

    def tier_totals(self, totals: dict[str, tuple[int, int]]) -> None:
        pass


@dataclass
class ApplyReport:
    scanned: int = 0
    moved_objects: int = 0
    moved_bytes: int = 0  # bytes rewritten into their new tier
    changed_only: int = 0  # inline or striped: only the recorded tier changed
    failed: list[str] = field(default_factory=list)  # "bucket/key: why"
    skipped_not_served: int = 0
    expired: int = 0  # versions deleted by expiration rules
    aborted_uploads: int = 0
    totals: dict[str, list[int]] = field(default_factory=dict)  # tier -> [objects, bytes]
    partial: bool = False  # some bucket was not walked: totals cover only the rest


class TieringService:
    def __init__(
        self,
        engine: Engine,
        principal: Principal,
        policy: Policy,
        served: set[str],
        observer: TieringObserver | None = None,
    ) -> None:
        """``served``: the tiers the engine can hold data on (the rest are planned only)."""
        self.engine = engine
        self.principal = principal
        self.policy = policy
        self.served = served
        self.observer = observer or _Quiet()
        self.page_size = 1000  # versions per listing page

    # -- walking ----------------------------------------------------------------

    async def bucket_names(self, only: list[str] | None = None) -> list[str]:
        if only:
            return list(only)
        names: list[str] = []
        after = ""
        while True:
            page, more = await self.engine.list_buckets(self.principal, start_after=after)
            names += [b.name for b in page]
            if not more or not page:
                return names
            after = page[-1].name

    async def versions(self, bucket: str, prefix: str = "") -> AsyncIterator[Version]:
        """Every version of every key (delete markers left out), newest first per key;
        a noncurrent version's clock starts when the next newer one was written."""
        listing = await self.engine.bucket(self.principal, bucket, Operation.LIST_OBJECT_VERSIONS)
        key_marker = version_marker = ""
        newer: tuple[str, float] | None = None  # the key and write time of the version before
        rank = -1
        while True:
            page = await listing.list_versions(
                prefix=prefix, key_marker=key_marker, version_marker=version_marker,
                max_keys=self.page_size,
            )
            for key, entry, latest in page.versions:
                since = None
                if not latest and newer is not None and newer[0] == key:
                    since = newer[1]
                    rank += 1
                elif latest or newer is None or newer[0] != key:
                    rank = -1  # the next noncurrent version of this key is the newest
                newer = (key, entry.mtime)
                if not entry.delete_marker:
                    yield Version(bucket, key, entry, since, max(rank, 0))
            if not page.is_truncated or not page.versions:
                return
            # Resume after the last version listed (its id, "null" for a pre-versioning
            # one): next_order is empty after a current version and would skip the key.
            key_marker, last, _ = page.versions[-1]
            version_marker = last.version_id or "null"

    def facts(self, v: Version) -> ObjectFacts:
        e = v.entry
        return ObjectFacts(
            bucket=v.bucket,
            key=v.key,
            size=e.size,
            tier=e.headers.get(TIER_HEADER, self.policy.hottest.name),
            written=e.mtime,
            content_type=e.content_type,
            tags=dict(e.tags),
            noncurrent_since=v.noncurrent_since,
            noncurrent_rank=v.noncurrent_rank,
            storage_class=storage_class_of(e.headers),
        )

    # -- commands ---------------------------------------------------------------

    async def plan(self, buckets: list[str] | None = None) -> PlanReport:
        report = PlanReport()
        now = self.engine.clock.time()
        for name in await self.bucket_names(buckets):
            policy, _ = await self.bucket_policy(name)
            async for v in self.versions(name):
                facts = self.facts(v)
                placement = policy.place(facts, now)
                report.scanned += 1
                _add(report.bytes_before, facts.tier, facts.size)
                target = facts.tier
                if placement.expire:
                    _count(report.expirations, f"{placement.rule}: expire", facts.size)
                    continue
                if placement.moves(facts):
                    label = f"{placement.rule}: {facts.tier} -> {placement.tier}"
                    if placement.tier in self.served:
                        _count(report.moves, label, facts.size)
                        target = placement.tier
                    else:
                        _count(report.not_served, label, facts.size)
                _add(report.bytes_after, target, facts.size)
        report.monthly_cost_before = self._cost(report.bytes_before)
        report.monthly_cost_after = self._cost(report.bytes_after)
        return report

    async def apply(
        self,
        buckets: list[str] | None = None,
        progress: Callable[[int], None] = lambda nbytes: None,
    ) -> ApplyReport:
        report = ApplyReport()
        throttle = Throttle(self.policy.throttle, self.engine.clock)
        for name in await self.bucket_names(buckets):
            lease = self.engine.lease(self.principal, f"tier-mover.{name}")
            if not await lease.try_acquire():
                report.failed.append(f"{name}: another mover holds the bucket's lease")
                report.partial = True
                continue
            try:
                await lease.hold(lambda n=name: self._apply_bucket(n, report, throttle, progress))
            except LeaseLost:
                report.failed.append(f"{name}: lost the bucket's lease; stopped")
                report.partial = True
            finally:
                await lease.release()
        if not buckets and not report.partial:
            self.observer.tier_totals({t: (n, b) for t, (n, b) in report.totals.items()})
        return report

    async def _apply_bucket(
        self, name: str, report: ApplyReport, throttle: Throttle, progress: Callable[[int], None]
    ) -> None:
        mover = await self.engine.bucket(self.principal, name, Operation.TRANSITION_OBJECT)
        policy, lifecycle = await self.bucket_policy(name)
        await self._abort_uploads(mover, lifecycle, report)
        if not policy.rules and not policy.bucket_rules:
            report.partial = True  # nothing can move here: not worth a walk
            return
        async for v in self.versions(name):
            report.scanned += 1
            facts = self.facts(v)
            placement = policy.place(facts, self.engine.clock.time())
            where = facts.tier
            if placement.expire:
                await self._expire(mover, v, report)
                continue
            if placement.moves(facts) and placement.tier not in self.served:
                report.skipped_not_served += 1
            elif placement.moves(facts):
                await throttle.take(facts.size)
                try:
                    result = await mover.transition(v.key, placement.tier, v.version_id)
                except Exception as exc:  # one object's failure must not stop the rest
                    report.failed.append(f"{name}/{v.key}: {type(exc).__name__}: {exc}")
                else:
                    if result.stayed:
                        report.failed.append(f"{name}/{v.key}: its bucket stores without "
                                             "dedupe now; its chunks stay where they are")
                        _count(report.totals, where, facts.size)
                        continue
                    where = placement.tier
                    report.moved_objects += 1
                    report.moved_bytes += result.moved_bytes
                    report.changed_only += result.moved_bytes == 0
                    self.observer.tier_moved(facts.tier, where, result.moved_bytes)
                    progress(facts.size)
            _count(report.totals, where, facts.size)

    async def _expire(self, bucket: AuthorizedBucket, v: Version, report: ApplyReport) -> None:
        """Delete an expired version: the current one as a DELETE would (a delete marker
        when versioned), a noncurrent one for good. Object lock still decides."""
        e = v.entry
        # The current version goes only if it is still the one the policy judged.
        same = DeleteCondition((bare_etag(e.etag),), int(e.mtime), e.size)
        try:
            if v.version_id is None:
                await bucket.delete(v.key, condition=same)
            else:
                await bucket.delete(v.key, version_id=v.version_id)
        except Exception as exc:
            report.failed.append(f"{v.bucket}/{v.key}: {type(exc).__name__}: {exc}")
        else:
            report.expired += 1

    async def _abort_uploads(
        self, bucket: AuthorizedBucket, rules: list[LifecycleRule], report: ApplyReport
    ) -> None:
        now = self.engine.clock.time()
        for prefix, days in abort_after_days(rules):
            query = UploadsQuery(prefix=prefix)
            while True:
                page = await bucket.list_uploads(query)
                for up in page.uploads:
                    if now < up.initiated + days * DAY:
                        continue
                    try:
                        await bucket.abort_upload(up.key, up.upload_id)
                    except Exception as exc:  # e.g. completed meanwhile
                        report.failed.append(f"{bucket.name}/{up.key}: upload {up.upload_id}: "
                                             f"{type(exc).__name__}: {exc}")
                    else:
                        report.aborted_uploads += 1
                if not page.is_truncated:
                    break
                query.key_marker = page.next_key_marker or ""
                query.upload_id_marker = page.next_upload_id_marker or ""

    async def bucket_policy(self, bucket: str) -> tuple[Policy, list[LifecycleRule]]:
        """The policy as it applies to ``bucket``: its lifecycle rules first."""
        _, raw = await self.engine.read_bucket_config(
            self.principal, bucket, LIFECYCLE_ITEM, Operation.GET_BUCKET_LIFECYCLE
        )
        rules = decode_rules(raw) if raw else []
        return lifecycle_policy(self.policy, bucket, rules), rules

    async def explain(self, bucket: str, key: str, version_id: str | None = None) -> dict:
        reader = await self.engine.bucket(self.principal, bucket, Operation.HEAD_OBJECT, key=key)
        found = None
        async for v in self.versions(bucket, prefix=key):
            wanted = (v.entry.version_id or "null") == version_id if version_id else (
                v.noncurrent_since is None
            )
            if v.key == key and wanted:
                found = v
                break
        if found is None:  # let the engine answer NoSuchKey / NoSuchVersion
            await reader.head(key, version_id)
            raise LookupError(f"{bucket}/{key} has no such version")
        facts = self.facts(found)
        now = self.engine.clock.time()
        policy, _ = await self.bucket_policy(bucket)
        placement = policy.place(facts, now)
        return {
            "bucket": bucket,
            "key": key,
            "version_id": found.entry.version_id,
            "size": facts.size,
            "storage_class": facts.storage_class,
            "tier": facts.tier,
            "data": await reader.placement(key, found.version_id),
            "current": found.noncurrent_since is None,
            "policy": self.policy.source,
            **_placement(placement, facts, self.served),
        }

    async def status(self, buckets: list[str] | None = None) -> dict[str, dict[str, dict]]:
        out: dict[str, dict[str, dict]] = {}
        for name in await self.bucket_names(buckets):
            tiers: dict[str, dict] = {}
            async for v in self.versions(name):
                facts = self.facts(v)
                slot = tiers.setdefault(facts.tier, {"objects": 0, "bytes": 0})
                slot["objects"] += 1
                slot["bytes"] += facts.size
            out[name] = tiers
        return out

    def _cost(self, bytes_by_tier: dict[str, int]) -> float:
        total = 0.0
        for name, nbytes in bytes_by_tier.items():
            rank = self.policy.rank(name)
            price = self.policy.tiers[rank].cost_per_gb_month if rank >= 0 else 0.0
            total += nbytes / GIB * price
        return total


def _placement(p: Placement, facts: ObjectFacts, served: set[str]) -> dict:
    out = {
        "belongs_on": p.tier,
        "rule": p.rule,
        "why": p.reason,
        "moves_now": p.moves(facts) and p.tier in served,
        "next": None,
    }
    if p.moves(facts) and p.tier not in served:
        out["why"] += f" (tier {p.tier} is not served by this deployment yet)"
    if p.next_tier is not None:
        out["next"] = {"tier": p.next_tier, "at": p.next_at}
    return out


def _add(into: dict[str, int], key: str, n: int) -> None:
    into[key] = into.get(key, 0) + n


def _count(into: dict[str, list[int]], key: str, size: int) -> None:
    slot = into.setdefault(key, [0, 0])
    slot[0] += 1
    slot[1] += size
