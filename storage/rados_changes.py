"""The RADOS change feed: watch/notify on a few channel objects of one pool.

Like RGW's cache notifications (``notify.0`` .. ``notify.7``), each process
watches ``CHANNELS`` fixed objects ``changes.<n>``, whatever the number of
buckets or index shards. The watch callback runs on a librados thread and
bumps this process's counter of each tag's slot before it returns, i.e.
before the notifier hears the ack. A process's publishes are coalesced:
while its notify is in flight, new tags wait for the next one (sent to the
next channel in turn), so a burst of writes costs a few notifies.

When is a generation trusted? librados pings every watch each
``objecter_tick_interval`` (set to 1 s) and ``Watch.check`` says how long ago
the watch was last confirmed. A process answers generations only while every
watch was confirmed within ``TRUST_S``. A notify waits at most
``NOTIFY_TIMEOUT_S`` (> ``TRUST_S``) for acks, so a listener that did not ack
in time has not been confirmed since the notify was sent, and by the time the
publish returns it no longer trusts its generations. Trust that lapsed never
comes back unchanged: librados may re-attach a watch silently (no error
callback) after the notify it missed was dropped, so a lapse of continuity
(seen by a vigil every ``VIGIL_S``, or by a lookup) bumps the epoch that is
part of every generation, as a watch error does. A notify that failed for any
other reason than listeners not acking in time is retried until delivered.

Costs: after a gateway dies (kill -9), publishes wait up to
``NOTIFY_TIMEOUT_S`` until the OSD drops its watch (``WATCH_TIMEOUT_S``); an
OSD holding a channel object that cannot be reached stalls a process's
notify once: it is retried on the next channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import threading
import time
from array import array
from collections.abc import Collection
from functools import partial
from typing import TYPE_CHECKING

import rados

from storage.errors import ObjectExists, ObjectNotFound, StorageError
from storage.protocol import WriteOp

if TYPE_CHECKING:
    from storage.rados import RadosPool

log = logging.getLogger("atonix.storage.changes")

CHANNELS = 8
SLOTS = 1 << 20
_MASK = SLOTS - 1
TRUST_S = 2.0
NOTIFY_TIMEOUT_S = 3  # whole seconds: python-rados hands the OSD seconds
WATCH_TIMEOUT_S = 5
VIGIL_S = 0.25
_RECHECK_S = 0.1  # Watch.check at most this often per lookup (well inside TRUST_S)
_RETRY_S = (0.05, 0.1, 0.25, 0.5, 1.0)
assert NOTIFY_TIMEOUT_S >= TRUST_S + 1


def channel_oid(channel: int) -> str:
    return f"changes.{channel}"


def encode_tags(tags: Collection[int]) -> str:
    return ",".join(format(tag, "x") for tag in tags)


def decode_tags(data: bytes) -> list[int]:
    return [int(part, 16) for part in data.split(b",") if part]


class _Sender:
    """The process's coalescing sender: at most one notify in flight; tags published
    meanwhile ride together on the next one. Every listener watches every channel,
    so any channel carries any tag: each notify goes to the next channel in turn,
    spreading the OSD's work, and a burst of writes costs a few notifies."""

    def __init__(self, feed: RadosChangeFeed) -> None:
        self.feed = feed
        self.pending: set[int] = set()
        self.next_batch: asyncio.Future | None = None
        self.sender: asyncio.Task | None = None

    async def send(self, tags: list[int]) -> None:
        if self.next_batch is None:
            self.next_batch = asyncio.get_running_loop().create_future()
        self.pending.update(tags)
        batch = self.next_batch
        if self.sender is None:
            self.sender = asyncio.create_task(self._drain())
        await asyncio.shield(batch)

    async def _drain(self) -> None:
        done: asyncio.Future | None = None
        try:
            while self.pending:
                tags, done = list(self.pending), self.next_batch
                self.pending, self.next_batch = set(), None
                await self.feed.notify(tags)
                assert done is not None
                done.set_result(None)
                done = None
        except BaseException as exc:  # closed, or a bug: nobody may wait forever
            for waiting in (done, self.next_batch):
                if waiting is not None and not waiting.done():
                    waiting.set_exception(StorageError(f"change feed stopped: {exc!r}"))
                    waiting.exception()  # (retrieved: waiters may be gone)
            self.pending, self.next_batch = set(), None
            raise
        finally:
            self.sender = None

    async def stop(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(BaseException):
                await self.sender


class RadosChangeFeed:
    """``storage.protocol.ChangeFeed`` over watch/notify in one RADOS pool."""

    def __init__(self, pool: RadosPool) -> None:
        self.pool = pool
        self._counts = array("Q", bytes(8 * SLOTS))
        self._lock = threading.Lock()  # librados threads bump counts and the epoch
        self._epoch = 0
        self._losses = 0  # watch errors so far (a re-watch must see none to succeed)
        self._broken = False
        self._watches: list[rados.Watch] = []
        self._listening = self._started = self._closed = False
        self._trusted_until = 0.0
        self._confirmed = 0.0  # monotonic time every watch was last known confirmed
        self._sender = _Sender(self)
        self._turn = 0  # the channel the last notify went to
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._rewatch: asyncio.Task | None = None

    # --- attach and detach ------------------------------------------------------------
    async def start(self, listen: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._started:
            await self._create_channels()
            self._started = True
        if listen and not self._listening:
            self._listening = True
            try:
                await self._watch_all()
            except StorageError as exc:  # serve uncached until the watches are up
                log.warning("change feed: cannot watch (%s); reads bypass the hot cache", exc)
                self._lost(0, -1)
            self._spawn(self._vigil())

    async def _create_channels(self) -> None:
        for n in range(CHANNELS):
            with contextlib.suppress(ObjectExists):
                await self.pool.operate(channel_oid(n), WriteOp().create(exclusive=False))

    async def _watch_all(self) -> None:
        io = await self.pool._ioctx()
        bridge = self.pool._b._require()
        losses, watches = self._losses, []
        try:
            for n in range(CHANNELS):
                oid = channel_oid(n)
                watches.append(await bridge.blocking(
                    f"watch {oid}", io.watch, oid, self._heard, self._lost, WATCH_TIMEOUT_S
                ))
        except BaseException:
            await self._unwatch(watches)
            raise
        old, self._watches = self._watches, watches
        await self._unwatch(old)
        with self._lock:
            self._epoch += 1
            self._trusted_until = 0.0
            self._confirmed = time.monotonic()
            self._broken = self._losses != losses  # lost again meanwhile: not done

    async def _unwatch(self, watches: list[rados.Watch]) -> None:
        bridge = self.pool._b._bridge
        for watch in watches:
            with contextlib.suppress(rados.Error, StorageError, RuntimeError):
                if bridge is not None:
                    await bridge.run_in_pool(watch.close)

    async def close(self) -> None:
        self._closed, self._listening = True, False
        for task in [*self._tasks, self._rewatch]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await self._sender.stop()
        watches, self._watches = self._watches, []
        await self._unwatch(watches)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- librados threads -----------------------------------------------------------
    def _heard(self, notify_id: int, notifier_id: int, watch_id: int, data: bytes) -> None:
        try:
            tags = decode_tags(data)
        except Exception:  # not ours to read: forget everything rather than guess
            tags = None
        with self._lock:
            if tags is None:
                self._epoch += 1
                return
            counts = self._counts
            for tag in tags:
                counts[tag & _MASK] += 1

    def _lost(self, watch_id: int, err: int) -> None:
        with self._lock:
            self._broken = True
            self._losses += 1
            self._epoch += 1
            self._trusted_until = 0.0
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads
                loop.call_soon_threadsafe(self._start_rewatch)

    # --- trust -------------------------------------------------------------------------
    def _start_rewatch(self) -> None:
        if self._listening and (self._rewatch is None or self._rewatch.done()):
            self._rewatch = asyncio.create_task(self._rewatch_until_done())

    async def _rewatch_until_done(self) -> None:
        while self._listening and self._broken:
            try:
                await self._watch_all()
                log.info("change feed: watches re-established")
            except Exception as exc:
                log.warning("change feed: re-watch failed (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def _vigil(self) -> None:
        """Notice every lapse of trust, also while no lookup asks (see the module doc)."""
        while self._listening:
            self._trusted_until = 0.0
            self._trusted()
            await asyncio.sleep(VIGIL_S)

    def generation(self, tag: int) -> int | None:
        if not self._trusted():
            return None
        return (self._epoch << 40) | self._counts[tag & _MASK]

    def _trusted(self) -> bool:
        if not self._listening or self._broken or not self._watches:
            return False
        now = time.monotonic()
        if now < self._trusted_until:
            return True
        try:
            oldest = max(watch.check().total_seconds() for watch in self._watches)
        except rados.Error:
            self._lost(0, -1)
            return False
        confirmed = now - oldest
        with self._lock:
            if oldest >= TRUST_S or confirmed - self._confirmed >= TRUST_S:
                # Unconfirmed for TRUST_S at some moment: notices may have been missed.
                self._epoch += 1
            self._confirmed = max(self._confirmed, confirmed)
        if oldest >= TRUST_S:
            self._trusted_until = 0.0
            return False
        self._trusted_until = now + min(_RECHECK_S, TRUST_S - oldest)
        return True

    # --- publish -----------------------------------------------------------------------
    async def publish(self, tags: Collection[int]) -> None:
        if not self._started:
            await self.start(listen=False)
        if tags:
            await self._sender.send(list(tags))

    async def notify(self, tags: list[int]) -> None:
        """Notify until every watcher acked, or the OSD gave up on the slow ones after
        NOTIFY_TIMEOUT_S (they distrust by then); any other failure is retried, on
        the next channel (its object may sit on another OSD)."""
        msg = encode_tags(tags)
        for attempt in range(1 << 30):
            if self._closed:
                raise StorageError("change feed closed")
            self._turn = (self._turn + 1) % CHANNELS
            oid = channel_oid(self._turn)
            started = time.monotonic()
            try:
                io = await self.pool._ioctx()
                await self.pool._b._require().aio(
                    partial(io.aio_notify, oid, msg=msg, timeout_ms=NOTIFY_TIMEOUT_S * 1000),
                    ("notify", self.pool.name, oid),
                )
                return
            except StorageError as exc:
                if self._listeners_timed_out(exc, time.monotonic() - started):
                    return
                log.warning("change feed: notify %s failed (%s); retrying", oid, exc)
                if isinstance(exc, ObjectNotFound):  # a channel object went missing
                    with contextlib.suppress(StorageError):
                        await self._create_channels()
            await asyncio.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)])

    def _listeners_timed_out(self, exc: StorageError, elapsed: float) -> bool:
        """ETIMEDOUT from the OSD's notify timeout, not from the client giving up."""
        timed_out = getattr(exc, "errno", None) == errno.ETIMEDOUT
        return timed_out and NOTIFY_TIMEOUT_S - 0.5 <= elapsed < self.pool._b.op_timeout - 1
