"""Splitting a bucket index shard in two, crash-safe and resumable by any gateway.

Steps, for source shard S covering (lo, hi] split at key m into S (lo, m] and
a new shard T (m, hi]:

1. mark   S's header gets a split mark (m, T, owner): S is frozen. Writers
          guard on S's header bytes, so every write either landed before the
          mark (and is copied) or fails its guard and waits for the split.
2. create T is created exclusively, *pending*, with range (m, hi].
3. copy   entries and sample keys of S above m are copied into T, each batch
          guarded on T still being pending (a split taken over by another
          gateway cannot overwrite newer writes). The owner's heartbeat in the
          mark shows progress.
4. commit S's header becomes (lo, m] with next = T (one guarded write on S:
          the commit point). From here T is authoritative for (m, hi].
5. activate  T's header loses ``pending``; only now can T take writes.
6. map    ``m -> T`` is added to the shard map in the root shard.
7. clean  S's copies of keys above m are removed (readers ignore them anyway).

Anyone who meets a mark whose owner stopped making progress (no heartbeat for
``split_lease_s``, or the owner is this process and its task died) takes the
split over with a compare-and-swap on the mark and runs it again from step 2:
every step is idempotent. A crash after the commit leaves T pending (the next
writer activates it: it was reached through S's ``next``, so the commit
happened), the map without T (the next reader that moves right adds it) or
garbage above S's range (a scan that meets it removes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine

from engine import layout
from engine.clock import SYSTEM_CLOCK, Clock
from engine.index_router import ACTIVE, ShardRouter, StaleBucket, active_guard
from engine.index_shards import (
    IndexSettings,
    ShardView,
    SplitMark,
    initial_generations,
    new_shard_id,
    split_point,
)
from storage import GuardFailed, ObjectExists, ObjectNotFound, Pool, WriteOp

log = logging.getLogger(__name__)

COPY_BATCH = 1000  # entries per read while copying
COPY_WRITE_BYTES = 4 << 20  # bytes per copy write (inline objects make entries up to 64 KiB)
CLEAN_BATCH = 1000
# Key spaces that move with a split: entries, samples, noncurrent versions and null pointers.
_SPACES = (layout.OBJECT_PREFIX, layout.SAMPLE_PREFIX, layout.NULL_PREFIX, layout.VERSION_PREFIX)


def _object_key(space: str, omap_key: str) -> str:
    """The object key an omap key of ``space`` belongs to (a version key holds a token too)."""
    if space == layout.VERSION_PREFIX:
        return layout.split_version_key(omap_key)[0]
    return omap_key[len(space) :]


def _past(space: str, bound: str) -> str:
    """The omap key after every key of ``space`` whose object key is <= ``bound``."""
    if space == layout.VERSION_PREFIX:
        return layout.versions_after(bound)  # past bound's own versions too
    return space + bound
_POLL_S = (0.005, 0.2)  # first and longest wait between looks at a mark owned elsewhere


class _Lost(Exception):
    """Another gateway took the split over (or finished it): stop quietly."""


class ShardSplitter:
    def __init__(
        self,
        meta: Pool,
        router: ShardRouter,
        settings: IndexSettings,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.meta = meta
        self.router = router
        self.settings = settings
        self._process = secrets.token_hex(6)  # owner tokens of this process start with it
        self._runs = 0
        self._tasks: dict[tuple[str, str], asyncio.Task] = {}  # (bucket, shard) -> split/check
        self._cleaning: set[tuple[str, str]] = set()
        # Test hook: called with each step's name; raising simulates a crash there.
        self.failpoint: Callable[[str], None] | None = None
        # Splits this process completed, and how long their shards were frozen.
        self.splits = 0
        self.frozen_s_total = 0.0
        self.frozen_s_max = 0.0

    # --- triggers -------------------------------------------------------------
    def after_write(self, bucket_id: str, view: ShardView) -> asyncio.Task | None:
        """A sampled key was written to ``view``: check the shard's size in a task.

        Returns the task when splits run inline (the caller waits for it)."""
        key = (bucket_id, view.shard)
        task = self._tasks.get(key) or self._spawn(key, self.check(bucket_id, view.shard))
        return None if self.settings.split_in_background else task

    async def split_now(self, bucket_id: str, shard: str) -> None:
        """Split the shard, and its halves, until each is under the threshold (bulk loads)."""
        todo = [shard]
        while todo:
            key = (bucket_id, todo.pop())
            task = self._tasks.get(key) or self._spawn(key, self.check(*key))
            new = await asyncio.shield(task)
            if new is not None:
                todo += [key[1], new]

    async def check(self, bucket_id: str, shard: str) -> str | None:
        """Split the shard if its sample says it holds more than the threshold.

        Returns the new shard's id if this call split it."""
        found = await self.router.read(bucket_id, shard)
        view = found.view
        if found.state != ACTIVE or view.split or view.pending or view.legacy:
            return None
        limit = max(self.settings.split_threshold // view.sample, 1)
        samples = await self._samples(bucket_id, view, limit + 1)
        at = split_point(samples) if len(samples) > limit else None
        return None if at is None else await self._start(bucket_id, view, at)

    async def _samples(self, bucket_id: str, view: ShardView, count: int) -> list[str]:
        items = await self.meta.omap_list(
            self.router.oid(bucket_id, view.shard),
            start_after=layout.sample_key(view.after),
            prefix=layout.SAMPLE_PREFIX,
            max_items=count,
        )
        keys = [k[len(layout.SAMPLE_PREFIX) :] for k, _ in items]
        return [k for k in keys if view.covers(k)]

    # --- writers meeting a split ------------------------------------------------
    async def wait(self, bucket_id: str, view: ShardView) -> None:
        """Return once the split marked on ``view`` is no longer in the way.

        Waits for a split run by this process; takes over one whose owner is
        gone (this process's dead task, an abandoned mark, or no heartbeat for
        the lease); otherwise polls the header."""
        assert view.split is not None
        task = self._tasks.get((bucket_id, view.shard))
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
            return
        mark, seen, since, delay = view.split, view.raw, self.clock.monotonic(), _POLL_S[0]
        while True:
            owner = mark.owner
            dead_here = owner.startswith(self._process + ".")  # and no task: it died
            lapsed = self.clock.monotonic() - since > self.settings.split_lease_s
            if not owner or dead_here or lapsed:
                await self._take_over(bucket_id, view)
                return
            await self.clock.sleep(delay)
            delay = min(delay * 2, _POLL_S[1])
            found = await self.router.read(bucket_id, view.shard)
            view = found.view
            if found.state != ACTIVE or view.split is None or view.split.to != mark.to:
                return  # committed, or the bucket is being deleted (the write will say so)
            if view.raw != seen:
                mark, seen, since = view.split, view.raw, self.clock.monotonic()
            if (bucket_id, view.shard) in self._tasks:
                return await self.wait(bucket_id, view)

    async def _take_over(self, bucket_id: str, view: ShardView) -> None:
        mark = view.split
        assert mark is not None
        mine = view.evolve(split=SplitMark(mark.at, mark.to, self._owner(), 0))
        if not await self._swap(bucket_id, view, mine, active=True):
            return  # someone else moved first; the caller re-reads
        log.info("taking over the split of %s/%s at %r", bucket_id, view.shard, mark.at)
        task = self._spawn((bucket_id, view.shard), self._run(bucket_id, mine))
        with contextlib.suppress(Exception):
            await asyncio.shield(task)

    async def activate(self, bucket_id: str, view: ShardView) -> None:
        """Make a pending shard writable. Only call it for a shard reached through a
        committed ``next`` or the map: then its source has committed the split."""
        await self._swap(bucket_id, view, view.evolve(pending=False))  # False: already active

    # --- the split itself -------------------------------------------------------
    async def _start(self, bucket_id: str, view: ShardView, at: str) -> str | None:
        marked = view.evolve(split=SplitMark(at, new_shard_id(), self._owner(), 0))
        if not await self._swap(bucket_id, view, marked, active=True):
            return None  # the shard changed since the check: someone else is on it
        self._fail("marked")
        return await self._run(bucket_id, marked)

    async def _run(self, bucket_id: str, source: ShardView) -> str | None:
        """Steps 2-7 for a marked source; the new shard's id, or None if another gateway
        finished or took over the split."""
        mark = source.split
        assert mark is not None
        started = self.clock.monotonic()
        target = ShardView(
            mark.to,
            after=mark.at,
            upto=source.upto,
            next=source.next,
            sample=source.sample,
            pending=True,
        ).evolve()
        try:
            await self._create(bucket_id, target)
            self._fail("created")
            source = await self._copy(bucket_id, source, target)
            self._fail("copied")
            committed = await self._commit(bucket_id, source)
            self._count(self.clock.monotonic() - started)
            self._fail("committed")
            await self.activate(bucket_id, target)
            self._fail("activated")
            await self.router.publish(bucket_id, {mark.at: mark.to})
            self._fail("mapped")
            await self.clean(bucket_id, committed)
            self._fail("cleaned")
        except _Lost:
            return None
        log.info("split %s/%s at %r into %s", bucket_id, source.shard, mark.at, mark.to)
        return mark.to

    async def _create(self, bucket_id: str, target: ShardView) -> None:
        op = (
            WriteOp()
            .create(exclusive=True)
            .omap_set(
                {
                    layout.SHARD_HEADER: layout.shard_header(bucket_id, ACTIVE),
                    layout.SHARD_RANGE: target.raw,
                    **initial_generations(),
                }
            )
        )
        try:
            await self.meta.operate(self.router.oid(bucket_id, target.shard), op)
        except ObjectExists:
            # An earlier run of this split created it; it must still be pending.
            got = await self.meta.omap_get(
                self.router.oid(bucket_id, target.shard), [layout.SHARD_RANGE]
            )
            if got.get(layout.SHARD_RANGE) != target.raw:
                raise _Lost from None

    async def _copy(self, bucket_id: str, source: ShardView, target: ShardView) -> ShardView:
        """Copy S's keys above the split point into T; returns S's header after heartbeats."""
        src, dst = (
            self.router.oid(bucket_id, source.shard),
            self.router.oid(bucket_id, target.shard),
        )
        beat_at = self.clock.monotonic()
        for space in _SPACES:
            after = _past(space, target.after)
            while True:
                items = await self._read_or_lose(src, after, space, COPY_BATCH)
                moving = [(k, v) for k, v in items if target.covers(_object_key(space, k))]
                for chunk in _by_size(moving, COPY_WRITE_BYTES):
                    op = WriteOp().omap_cmp(layout.SHARD_RANGE, target.raw).omap_set(chunk)
                    try:
                        await self.meta.operate(dst, op)
                    except (GuardFailed, ObjectNotFound):
                        raise _Lost from None  # T went live: someone finished this split
                    self._fail("copying")
                if len(items) < COPY_BATCH or len(moving) < len(items):
                    break
                after = items[-1][0]
                if self.clock.monotonic() - beat_at > self.settings.split_lease_s / 4:
                    source = await self._heartbeat(bucket_id, source)
                    beat_at = self.clock.monotonic()
        return source

    async def _read_or_lose(self, oid: str, after: str, prefix: str, count: int) -> list:
        try:
            return await self.meta.omap_list(oid, start_after=after, prefix=prefix, max_items=count)
        except ObjectNotFound:
            raise _Lost from None  # the bucket was deleted under the split

    async def _heartbeat(self, bucket_id: str, source: ShardView) -> ShardView:
        mark = source.split
        assert mark is not None
        beat = source.evolve(split=SplitMark(mark.at, mark.to, mark.owner, mark.beat + 1))
        if not await self._swap(bucket_id, source, beat):
            raise _Lost  # taken over
        return beat

    async def _commit(self, bucket_id: str, source: ShardView) -> ShardView:
        mark = source.split
        assert mark is not None
        committed = source.evolve(upto=mark.at, next=mark.to, split=None)
        if await self._swap(bucket_id, source, committed, active=True):
            return committed
        with contextlib.suppress(StaleBucket):
            found = await self.router.read(bucket_id, source.shard)
            if found.state != ACTIVE and found.view.raw == source.raw:
                # The bucket is being deleted: leave the mark for anyone to resume at once.
                free = SplitMark(mark.at, mark.to, "", mark.beat)
                await self._swap(bucket_id, source, source.evolve(split=free))
        raise _Lost

    async def _swap(
        self, bucket_id: str, old: ShardView, new: ShardView, active: bool = False
    ) -> bool:
        """Compare-and-swap a shard's header from ``old``'s bytes to ``new``'s
        (``active``: only while the bucket is active); False if it had changed."""
        op = active_guard(bucket_id) if active else WriteOp()
        op.omap_cmp(layout.SHARD_RANGE, old.raw).omap_set({layout.SHARD_RANGE: new.raw})
        try:
            await self.meta.operate(self.router.oid(bucket_id, old.shard), op)
        except (GuardFailed, ObjectNotFound):
            return False
        self.router.table(bucket_id).learn(new)
        return True

    async def clean(self, bucket_id: str, view: ShardView) -> None:
        """Remove a shard's leftover copies of keys above its range (always safe:
        a shard's range never grows back)."""
        if view.upto is None:
            return
        oid = self.router.oid(bucket_id, view.shard)
        for space in _SPACES:
            while True:
                try:
                    items = await self.meta.omap_list(
                        oid,
                        start_after=_past(space, view.upto),
                        prefix=space,
                        max_items=CLEAN_BATCH,
                    )
                    if not items:
                        break
                    await self.meta.operate(
                        oid, WriteOp().assert_exists().omap_rm([k for k, _ in items])
                    )
                except ObjectNotFound:
                    return

    def clean_later(self, bucket_id: str, view: ShardView) -> None:
        """A scan met leftovers above ``view``'s range: remove them in the background."""
        key = (bucket_id, view.shard)
        if key in self._cleaning or key in self._tasks:
            return
        self._cleaning.add(key)

        async def run() -> None:
            try:
                await self.clean(bucket_id, view)
            finally:
                self._cleaning.discard(key)

        self._spawn((bucket_id, view.shard + "/clean"), run())

    # --- plumbing -------------------------------------------------------------------
    async def drain(self) -> None:
        """Wait for every background check, split and clean-up of this process."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    def _spawn(self, key: tuple[str, str], coro: Coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks[key] = task

        def done(t: asyncio.Task) -> None:
            if self._tasks.get(key) is t:
                del self._tasks[key]
            exc = None if t.cancelled() else t.exception()
            if exc is not None and not isinstance(exc, StaleBucket):
                log.warning("bucket index task %s failed: %r", key, exc)

        task.add_done_callback(done)
        return task

    def _count(self, frozen_s: float) -> None:
        self.splits += 1
        self.frozen_s_total += frozen_s
        self.frozen_s_max = max(self.frozen_s_max, frozen_s)

    def _owner(self) -> str:
        self._runs += 1
        return f"{self._process}.{self._runs}"

    def _fail(self, step: str) -> None:
        if self.failpoint is not None:
            self.failpoint(step)


def _by_size(items: list[tuple[str, bytes]], limit: int) -> list[dict[str, bytes]]:
    """Consecutive groups of items of at most ``limit`` bytes (at least one item each)."""
    groups: list[dict[str, bytes]] = []
    size = limit
    for key, value in items:
        if size + len(key) + len(value) > limit:
            groups.append({})
            size = 0
        groups[-1][key] = value
        size += len(key) + len(value)
    return groups
