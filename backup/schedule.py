"""Scheduled backups: which are due (pure), and the loop the gateways run them in.

A schedule comes from the config file's ``backups:`` list::

    backups:
      - bucket: photos
        to: vault             # a bucket here, or s3://bucket on backup_endpoint
        daily: "02:30"        # UTC; or `every: 6h` (s, m, h, d)
        lock_days: 30         # optional: COMPLIANCE retention of the copies

A daily schedule is due once the latest slot at or before now has no
successful run started after it; an interval schedule once its last
successful run started an interval ago. Either way a gateway that was down
runs one backup when it comes back (the missed slots collapse into it). A
failed run is retried after ``RETRY_S``, not at every check.

Every gateway runs the loop, but only the holder of the deployment's
``backups`` lease runs backups, one at a time; when it dies the lease
lapses and another gateway carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backup.catalog import SUCCEEDED, RunRecord
from backup.history import BackupHistory
from backup.runner import BackupObserver, BackupRunner
from backup.targets import Target
from engine import Engine, Principal

log = logging.getLogger("atonix.backup")

DAY = 86400.0
RETRY_S = 300.0
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY}
_DAILY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Schedule:
    bucket: str
    to: str
    every: float | None = None  # seconds between runs
    daily: float | None = None  # seconds after midnight UTC
    lock_days: float | None = None

    @classmethod
    def parse(cls, item: Any) -> Schedule:
        if not isinstance(item, dict) or not item.get("bucket") or not item.get("to"):
            raise ValueError(f"a backups: item needs bucket and to: {item!r}")
        every = daily = None
        if "every" in item:
            m = _INTERVAL.match(str(item["every"]).strip())
            if not m:
                raise ValueError(f"backups: every is like 30m, 6h or 1d, not {item['every']!r}")
            every = float(m.group(1)) * _UNIT[m.group(2)]
        if "daily" in item:
            m = _DAILY.match(str(item["daily"]).strip())
            if not m:
                raise ValueError(f"backups: daily is HH:MM (UTC), not {item['daily']!r}")
            daily = int(m.group(1)) * 3600.0 + int(m.group(2)) * 60.0
        if (every is None) == (daily is None):
            raise ValueError(f"a backups: item has either every or daily: {item!r}")
        if every is not None and every <= 0:
            raise ValueError(f"backups: every must be positive: {item!r}")
        lock = item.get("lock_days")
        if lock is not None and not (isinstance(lock, int | float) and lock > 0):
            raise ValueError(f"backups: lock_days is a positive number of days: {item!r}")
        return cls(str(item["bucket"]), str(item["to"]), every, daily,
                   float(lock) if lock is not None else None)

    def last_slot(self, now: float) -> float:
        """The latest moment at or before ``now`` a run was asked for (daily schedules)."""
        assert self.daily is not None
        midnight = now - now % DAY
        slot = midnight + self.daily
        return slot if slot <= now else slot - DAY

    def is_due(self, last_success: float | None, last_attempt: float | None, now: float) -> bool:
        if last_attempt is not None and last_attempt != last_success and \
                now - last_attempt < RETRY_S:
            return False  # the last run failed a moment ago: do not hammer the target
        if last_success is None:
            return True
        if self.every is not None:
            return now - last_success >= self.every
        return last_success < self.last_slot(now)


def parse_schedules(items: Any) -> list[Schedule]:
    if not items:
        return []
    if not isinstance(items, list):
        raise ValueError("backups: is a list of schedules")
    return [Schedule.parse(item) for item in items]


def last_runs(runs: list[RunRecord], target: str, bucket: str) -> tuple[float | None, float | None]:
    """(start of the last successful run, start of the last run) of one bucket and target."""
    mine = [r for r in runs if r.bucket == bucket and r.target == target]
    ok = [r.started for r in mine if r.status == SUCCEEDED]
    return (max(ok) if ok else None), (max(r.started for r in mine) if mine else None)


class BackupScheduler:
    def __init__(
        self,
        engine: Engine,
        principal: Principal,
        schedules: list[Schedule],
        open_target: Callable[[str], Target],
        observer: BackupObserver | None = None,
    ) -> None:
        self.engine = engine
        self.principal = principal
        self.schedules = schedules
        self.open_target = open_target
        self.observer = observer
        self.runner = BackupRunner(engine, principal, observer)
        self.history = BackupHistory(engine, principal)

    async def run_due(self) -> list[RunRecord]:
        """Run every schedule that is due now, one after another; the runs made."""
        made: list[RunRecord] = []
        runs = await self.history.runs()
        for schedule in self.schedules:
            try:
                run = await self._run_if_due(schedule, runs)
            except Exception:  # one schedule's failure never stops the others
                log.exception("scheduled backup of %s to %s failed", schedule.bucket, schedule.to)
                if self.observer is not None:
                    self.observer.failed(schedule.bucket)
                continue
            if run is not None:
                made.append(run)
        return made

    async def _run_if_due(self, schedule: Schedule, runs: list[RunRecord]) -> RunRecord | None:
        target = self.open_target(schedule.to)
        success, attempt = last_runs(runs, target.address, schedule.bucket)
        if success is not None and self.observer is not None:
            self.observer.last_success(schedule.bucket, success)
        if not schedule.is_due(success, attempt, self.engine.clock.time()):
            return None
        return await self.runner.run(schedule.bucket, target, schedule.lock_days)

    def start(self, check_seconds: float) -> asyncio.Task | None:
        """The loop every gateway runs (None without schedules)."""
        if not self.schedules or check_seconds <= 0:
            return None
        lease = self.engine.lease(self.principal, "backups", ttl=2 * check_seconds + 30.0)

        async def forever() -> None:
            try:
                while True:
                    try:
                        if await lease.try_acquire():
                            await lease.hold(self.run_due)
                    except Exception:
                        log.exception("backup scheduler pass failed")
                    await self.engine.clock.sleep(check_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await lease.release()

        return asyncio.create_task(forever(), name="backup-scheduler")
