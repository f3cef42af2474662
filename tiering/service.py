"""The tiering service: plan, apply, explain and status, over the engine's interface.

Every command walks the same thing: each object version of the buckets asked
for, its facts (size, age, tags, where its data is now) and what
``Policy.place`` says about them. ``plan`` counts what would move and what
it would cost per month before and after; ``apply`` (``tiering.apply``)
moves it with ``AuthorizedBucket.transition``, throttled, under one lease
per bucket so two movers never work on one bucket; ``explain`` shows one
object's facts, its placement and the bytes per tier its manifests name;
``status`` counts objects and bytes per tier.

Every tier of the policy is served (the cold ones on their S3 endpoints);
``served`` still guards a move to a tier the engine does not hold (a policy
reloaded in one process before another). Last reads and read counts come from
the gateways' read stats, read beside the walk (tiering.reads); a version
never read counts ``days_since_read`` from its write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from engine import (
    LIFECYCLE_ITEM,
    TIER_HEADER,
    Engine,
    ErasureCode,
    LifecycleRule,
    ObjectEntry,
    Operation,
    Principal,
    ReadStats,
    RemoteSettings,
    TierSettings,
    decode_rules,
    storage_class_of,
)
from tiering.apply import ApplyPass, ApplyReport
from tiering.lifecycle_rules import lifecycle_policy
from tiering.policy import (
    ARCHIVE,
    COLD,
    STORAGE_CLASS_KINDS,
    ObjectFacts,
    Placement,
    Policy,
    Tier,
)
from tiering.reads import stored_stats, versions_with_stats, with_reads

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
    erasure = None
    if not t.replicated:
        erasure = ErasureCode(t.erasure_k, t.erasure_m, t.failure_domain)
    return TierSettings(
        t.name, pool=t.pool, zstd_level=t.zstd_level, storage_classes=classes,
        reported_class=t.storage_class, remote=remote, pack_bytes=t.pack_bytes,
        archive=t.kind == COLD and t.flavour == ARCHIVE, erasure=erasure,
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
        self.parallel_moves = 4  # moves in flight at once in ``apply``

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
        newer: tuple[str, float] | None = None  # the key and write time of the version before
        rank = -1
        async for key, entry, latest in self._listed(bucket, prefix):
            since = None
            if not latest and newer is not None and newer[0] == key:
                since = newer[1]
                rank += 1
            elif latest or newer is None or newer[0] != key:
                rank = -1  # the next noncurrent version of this key is the newest
            newer = (key, entry.mtime)
            if not entry.delete_marker:
                yield Version(bucket, key, entry, since, max(rank, 0))

    async def lone_delete_markers(self, bucket: str) -> AsyncIterator[tuple[str, ObjectEntry]]:
        """(key, marker) of every key whose only version is a current delete marker
        (what S3 calls an expired object delete marker)."""
        group: tuple[str, ObjectEntry, int] | None = None  # key, its latest, versions seen
        async for key, entry, _latest in self._listed(bucket):
            if group is not None and group[0] == key:
                group = (key, group[1], group[2] + 1)
                continue
            if group is not None and group[2] == 1 and group[1].delete_marker:
                yield group[0], group[1]
            group = (key, entry, 1)
        if group is not None and group[2] == 1 and group[1].delete_marker:
            yield group[0], group[1]

    async def _listed(
        self, bucket: str, prefix: str = ""
    ) -> AsyncIterator[tuple[str, ObjectEntry, bool]]:
        """(key, entry, latest) of every version, delete markers included, page by page."""
        listing = await self.engine.bucket(self.principal, bucket, Operation.LIST_OBJECT_VERSIONS)
        key_marker = version_marker = ""
        while True:
            page = await listing.list_versions(
                prefix=prefix, key_marker=key_marker, version_marker=version_marker,
                max_keys=self.page_size,
            )
            for item in page.versions:
                yield item
            if not page.is_truncated or not page.versions:
                return
            # Resume after the last version listed (its id, "null" for a pre-versioning
            # one): next_order is empty after a current version and would skip the key.
            key_marker, last, _ = page.versions[-1]
            version_marker = last.version_id or "null"

    async def read_walk(
        self, bucket: str, drop_stale: bool = False
    ) -> AsyncIterator[tuple[Version, ReadStats | None]]:
        """``versions`` with each one's read stats (tiering.reads)."""
        handle = await self.engine.bucket(self.principal, bucket, Operation.LIST_OBJECT_VERSIONS)
        async for item in versions_with_stats(self.versions(bucket), handle.reads(), drop_stale):
            yield item

    def facts(
        self,
        v: Version,
        reads: ReadStats | None = None,
        policy: Policy | None = None,
        now: float | None = None,
    ) -> ObjectFacts:
        """What the policy looks at, with the version's reads (as ``policy``'s rule for
        it counts them at ``now``)."""
        e = v.entry
        facts = ObjectFacts(
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
        now = self.engine.clock.time() if now is None else now
        return with_reads(facts, reads, policy or self.policy, now)

    # -- commands ---------------------------------------------------------------

    async def plan(self, buckets: list[str] | None = None) -> PlanReport:
        report = PlanReport()
        now = self.engine.clock.time()
        for name in await self.bucket_names(buckets):
            policy, _ = await self.bucket_policy(name)
            async for v, reads in self.read_walk(name):
                facts = self.facts(v, reads, policy, now)
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
        """Carry the policy out (tiering.apply): expire, move, abort uploads."""
        return await ApplyPass(self, progress).run(buckets)

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
        now = self.engine.clock.time()
        policy, _ = await self.bucket_policy(bucket)
        facts = self.facts(found, await stored_stats(reader.reads(), found), policy, now)
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
            "restore": found.entry.headers.get("x-amz-restore"),  # archived, restored
            "last_read": facts.last_read,
            "recent_reads": facts.recent_reads,  # in the promotion window of its rule
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
