"""``tier apply`` and the gateways' mover: one pass that carries out the policy.

For each bucket asked for, under that bucket's lease (``tier-mover.<bucket>``,
so two movers never work on one bucket): abort the incomplete uploads its
lifecycle rules say to, then walk every version with its read stats and do
what ``Policy.place`` says: expire it, move it (``AuthorizedBucket.transition``)
or leave it. Before the buckets, the restores of archived versions that
have expired are ended (``Engine.end_due_restores``).

Moves run a few at a time (``TieringService.parallel_moves``): a move is a
chain of backend round trips (read, write, read back, switch), so one at a
time leaves the backend and the CPU mostly idle. The throttle (MB/s and
ops/s of the policy's ``mover:``) is taken before each move starts. One
object's failure is reported and the pass goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine import (
    AuthorizedBucket,
    DeleteCondition,
    LeaseLost,
    LifecycleRule,
    Operation,
    UploadsQuery,
    bare_etag,
)
from tiering.lifecycle_rules import abort_after_days, delete_marker_rules
from tiering.policy import DAY, ObjectFacts, Placement
from tiering.throttle import Throttle

if TYPE_CHECKING:
    from tiering.service import TieringService, Version

Progress = Callable[[int], None]


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
    delete_markers_removed: int = 0  # expired object delete markers (lifecycle)
    restores_ended: int = 0  # restored copies of archived versions dropped at expiry
    totals: dict[str, list[int]] = field(default_factory=dict)  # tier -> [objects, bytes]
    partial: bool = False  # some bucket was not walked: totals cover only the rest


class ApplyPass:
    def __init__(self, service: TieringService, progress: Progress) -> None:
        self.service = service
        self.engine = service.engine
        self.principal = service.principal
        self.progress = progress
        self.report = ApplyReport()
        self.throttle = Throttle(service.policy.throttle, self.engine.clock)
        self._slots = asyncio.Semaphore(max(1, service.parallel_moves))
        self._moving: set[asyncio.Task] = set()

    async def run(self, buckets: list[str] | None) -> ApplyReport:
        report = self.report
        report.restores_ended = await self.engine.end_due_restores(self.principal, buckets)
        for name in await self.service.bucket_names(buckets):
            lease = self.engine.lease(self.principal, f"tier-mover.{name}")
            if not await lease.try_acquire():
                report.failed.append(f"{name}: another mover holds the bucket's lease")
                report.partial = True
                continue
            try:
                await lease.hold(lambda n=name: self._bucket(n))
            except LeaseLost:
                report.failed.append(f"{name}: lost the bucket's lease; stopped")
                report.partial = True
            finally:
                await lease.release()
        if not buckets and not report.partial:
            totals = {t: (n, b) for t, (n, b) in report.totals.items()}
            self.service.observer.tier_totals(totals)
        return report

    async def _bucket(self, name: str) -> None:
        service, report = self.service, self.report
        mover = await self.engine.bucket(self.principal, name, Operation.TRANSITION_OBJECT)
        policy, lifecycle = await service.bucket_policy(name)
        await self._abort_uploads(mover, lifecycle)
        await self._remove_lone_markers(mover, lifecycle)
        if not policy.rules and not policy.bucket_rules:
            report.partial = True  # nothing can move here: not worth a walk
            return
        try:
            async for v, reads in service.read_walk(name, drop_stale=True):
                report.scanned += 1
                now = self.engine.clock.time()
                facts = service.facts(v, reads, policy, now)
                placement = policy.place(facts, now)
                if placement.expire:
                    await self._expire(mover, v)
                elif placement.moves(facts) and placement.tier not in service.served:
                    report.skipped_not_served += 1
                    _count(report.totals, facts.tier, facts.size)
                elif placement.moves(facts):
                    await self.throttle.take(facts.size)
                    await self._slots.acquire()
                    task = asyncio.ensure_future(self._move(mover, v, facts, placement))
                    self._moving.add(task)
                    task.add_done_callback(self._moved)
                else:
                    _count(report.totals, facts.tier, facts.size)
        finally:
            # The lease is held until every move of this bucket has ended.
            await asyncio.gather(*self._moving, return_exceptions=True)

    def _moved(self, task: asyncio.Task) -> None:
        self._moving.discard(task)
        self._slots.release()

    async def _move(
        self, mover: AuthorizedBucket, v: Version, facts: ObjectFacts, placement: Placement
    ) -> None:
        report, where = self.report, facts.tier
        try:
            result = await mover.transition(v.key, placement.tier, v.version_id, v.entry)
        except Exception as exc:  # one object's failure must not stop the rest
            report.failed.append(f"{v.bucket}/{v.key}: {type(exc).__name__}: {exc}")
        else:
            if result.stayed:
                report.failed.append(f"{v.bucket}/{v.key}: its bucket stores without "
                                     "dedupe now; its chunks stay where they are")
            else:
                where = placement.tier
                report.moved_objects += 1
                report.moved_bytes += result.moved_bytes
                report.changed_only += result.moved_bytes == 0
                self.service.observer.tier_moved(facts.tier, where, result.moved_bytes)
                self.progress(facts.size)
        _count(report.totals, where, facts.size)

    async def _expire(self, bucket: AuthorizedBucket, v: Version) -> None:
        """Delete an expired version: the current one as a DELETE would (a delete marker
        when versioned), a noncurrent one for good. Object lock still decides."""
        e = v.entry
        # The current version goes only if it is still the one the policy judged.
        same = DeleteCondition((bare_etag(e.etag),), int(e.mtime), e.size)
        try:
            if v.version_id is None:
                await bucket.delete(v.key, condition=same)
            else:  # a "null" version may have been written again since it was judged
                await bucket.delete(v.key, version_id=v.version_id, expect=e)
        except Exception as exc:
            self.report.failed.append(f"{v.bucket}/{v.key}: {type(exc).__name__}: {exc}")
        else:
            self.report.expired += 1

    async def _remove_lone_markers(
        self, bucket: AuthorizedBucket, rules: list[LifecycleRule]
    ) -> None:
        """Remove expired object delete markers (the only version of their key) that a
        lifecycle rule says to. A version written meanwhile makes the marker noncurrent,
        and removing a noncurrent marker loses nothing."""
        wanted = delete_marker_rules(rules)
        if not wanted:
            return
        now = self.engine.clock.time()
        async for key, marker in self.service.lone_delete_markers(bucket.name):
            if not any(key.startswith(p) and now >= marker.mtime + d * DAY for p, d in wanted):
                continue
            try:  # still that marker (a write while suspended replaces a null one in place)
                await bucket.delete(key, version_id=marker.version_id or "null", expect=marker)
            except Exception as exc:
                self.report.failed.append(f"{bucket.name}/{key}: delete marker: "
                                          f"{type(exc).__name__}: {exc}")
            else:
                self.report.delete_markers_removed += 1

    async def _abort_uploads(self, bucket: AuthorizedBucket, rules: list[LifecycleRule]) -> None:
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
                        self.report.failed.append(
                            f"{bucket.name}/{up.key}: upload {up.upload_id}: "
                            f"{type(exc).__name__}: {exc}"
                        )
                    else:
                        self.report.aborted_uploads += 1
                if not page.is_truncated:
                    break
                query.key_marker = page.next_key_marker or ""
                query.upload_id_marker = page.next_upload_id_marker or ""


def _count(into: dict[str, list[int]], key: str, size: int) -> None:
    slot = into.setdefault(key, [0, 0])
    slot[0] += 1
    slot[1] += size
