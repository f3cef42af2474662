"""The RADOS change feed: watch/notify on a few channel objects of one pool.

Like RGW's cache notifications (``notify.0`` .. ``notify.7``), each process
watches ``CHANNELS`` fixed objects ``changes.<n>``, whatever the number of
buckets or index shards, and a tag goes to channel ``tag % CHANNELS``. The
watch callback runs on a librados thread and bumps this process's counter of
the tag's slot before it returns, i.e. before the notifier hears the ack.
Publishes to one channel are coalesced: while a notify is in flight, new
tags wait for the next one, so a burst of writes costs a few notifies.

When is a generation trusted? librados pings every watch each
``objecter_tick_interval`` (set to 1 s) and ``Watch.check`` says how long ago
the watch was last confirmed. A process answers generations only while every
watch was confirmed within ``TRUST_S``; after a watch error it answers None,
re-watches, and then bumps its epoch so that nothing cached before comes
back. A notify waits at most ``NOTIFY_TIMEOUT_S`` (> ``TRUST_S``) for acks;
a listener that did not ack in time has not been confirmed since the notify
was sent, so by the time the publish returns it no longer trusts its
generations. The cost: after a gateway dies (kill -9), writes to a channel
wait up to ``NOTIFY_TIMEOUT_S`` until the OSD drops its watch
(``WATCH_TIMEOUT_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from array import array
from collections.abc import Collection
from typing import TYPE_CHECKING

import rados

from storage.errors import ObjectExists, StorageError
from storage.protocol import WriteOp

if TYPE_CHECKING:
    from storage.rados import RadosPool

log = logging.getLogger("atonix.storage.changes")

CHANNELS = 8
SLOTS = 1 << 16
_MASK = SLOTS - 1
TRUST_S = 2.0
NOTIFY_TIMEOUT_S = 3.0
WATCH_TIMEOUT_S = 5
_RECHECK_S = 0.1  # Watch.check at most this often per process (well inside TRUST_S)
_REWATCH_BACKOFF_S = 1.0


def channel_oid(channel: int) -> str:
    return f"changes.{channel}"


def encode_tags(tags: Collection[int]) -> str:
    return ",".join(format(tag, "x") for tag in tags)


def decode_tags(data: bytes) -> list[int]:
    return [int(part, 16) for part in data.split(b",") if part]


class _Channel:
    """One channel's coalescing sender: at most one notify in flight."""

    def __init__(self, feed: RadosChangeFeed, oid: str) -> None:
        self.feed, self.oid = feed, oid
        self.pending: list[int] = []
        self.next_batch: asyncio.Future | None = None
        self.sender: asyncio.Task | None = None

    async def send(self, tags: list[int]) -> None:
        if self.next_batch is None:
            self.next_batch = asyncio.get_running_loop().create_future()
        self.pending.extend(tags)
        batch = self.next_batch
        if self.sender is None:
            self.sender = asyncio.create_task(self._drain())
        await asyncio.shield(batch)

    async def _drain(self) -> None:
        try:
            while self.pending:
                tags, done = self.pending, self.next_batch
                self.pending, self.next_batch = [], None
                assert done is not None
                try:
                    await self.feed.notify(self.oid, tags)
                except Exception as exc:  # (notify itself absorbs storage errors)
                    done.set_exception(exc)
                    continue
                done.set_result(None)
        finally:
            self.sender = None


class RadosChangeFeed:
    """``storage.protocol.ChangeFeed`` over watch/notify in one RADOS pool."""

    def __init__(self, pool: RadosPool) -> None:
        self.pool = pool
        self._counts = array("Q", bytes(8 * SLOTS))
        self._lock = threading.Lock()  # librados threads bump counts and the epoch
        self._epoch = 0
        self._broken = False
        self._watches: list[rados.Watch] = []
        self._listening = False
        self._started = False
        self._trusted_until = 0.0
        self._channels = [_Channel(self, channel_oid(n)) for n in range(CHANNELS)]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rewatch: asyncio.Task | None = None

    # --- attach -----------------------------------------------------------------------
    async def start(self, listen: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._started:
            for n in range(CHANNELS):
                with contextlib.suppress(ObjectExists):
                    await self.pool.operate(channel_oid(n), WriteOp().create(exclusive=False))
            self._started = True
        if listen and not self._listening:
            self._listening = True
            await self._watch_all()

    async def _watch_all(self) -> None:
        io = await self.pool._ioctx()
        bridge = self.pool._b._require()
        watches = []
        try:
            for n in range(CHANNELS):
                watches.append(
                    await bridge.blocking(
                        f"watch {channel_oid(n)}",
                        io.watch,
                        channel_oid(n),
                        self._heard,
                        self._lost,
                        WATCH_TIMEOUT_S,
                    )
                )
        except BaseException:
            await self._unwatch(watches)
            raise
        old, self._watches = self._watches, watches
        await self._unwatch(old)
        with self._lock:
            self._epoch += 1
            self._broken = False

    async def _unwatch(self, watches: list[rados.Watch]) -> None:
        bridge = self.pool._b._bridge
        for watch in watches:
            with contextlib.suppress(rados.Error, StorageError, RuntimeError):
                if bridge is not None:
                    await bridge.run_in_pool(watch.close)

    async def close(self) -> None:
        if self._rewatch is not None:
            self._rewatch.cancel()
            with contextlib.suppress(BaseException):
                await self._rewatch
        self._listening = False
        watches, self._watches = self._watches, []
        await self._unwatch(watches)

    # --- librados threads -----------------------------------------------------------
    def _heard(self, notify_id: int, notifier_id: int, watch_id: int, data: bytes) -> None:
        try:
            tags = decode_tags(data)
        except ValueError:
            tags = None
        with self._lock:
            if tags is None:  # not ours to read: forget everything rather than guess
                self._epoch += 1
                return
            counts = self._counts
            for tag in tags:
                counts[tag & _MASK] += 1

    def _lost(self, watch_id: int, err: int) -> None:
        with self._lock:
            self._broken = True
            self._epoch += 1
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads
                loop.call_soon_threadsafe(self._start_rewatch)

    # --- the event loop --------------------------------------------------------------
    def _start_rewatch(self) -> None:
        if self._listening and (self._rewatch is None or self._rewatch.done()):
            self._rewatch = asyncio.create_task(self._rewatch_until_done())

    async def _rewatch_until_done(self) -> None:
        while self._listening and self._broken:
            try:
                await self._watch_all()
                log.info("change feed: watches re-established")
            except StorageError as exc:
                log.warning("change feed: re-watch failed (%s); retrying", exc)
                await asyncio.sleep(_REWATCH_BACKOFF_S)

    def generation(self, tag: int) -> int | None:
        if not self._trusted():
            return None
        return (self._epoch << 40) | self._counts[tag & _MASK]

    def _trusted(self) -> bool:
        if not self._listening or self._broken:
            return False
        now = time.monotonic()
        if now < self._trusted_until:
            return True
        if not self._watches:
            return False
        try:
            oldest = max(watch.check().total_seconds() for watch in self._watches)
        except rados.Error:
            self._lost(0, -1)
            return False
        if oldest >= TRUST_S:
            return False
        self._trusted_until = now + min(_RECHECK_S, TRUST_S - oldest)
        return True

    async def publish(self, tags: Collection[int]) -> None:
        if not self._started:
            await self.start(listen=False)
        by_channel: dict[int, list[int]] = {}
        for tag in tags:
            by_channel.setdefault(tag % CHANNELS, []).append(tag)
        sends = [self._channels[n].send(batch) for n, batch in by_channel.items()]
        if len(sends) == 1:
            await sends[0]
        elif sends:
            await asyncio.gather(*sends)

    async def notify(self, oid: str, tags: list[int]) -> None:
        """One notify; returns once every watcher acked, or after NOTIFY_TIMEOUT_S."""
        started = time.monotonic()
        msg = encode_tags(tags)
        io = await self.pool._ioctx()
        timeout_ms = int(NOTIFY_TIMEOUT_S * 1000)
        try:
            await self.pool._b._require().aio(
                lambda done: io.aio_notify(oid, done, msg=msg, timeout_ms=timeout_ms),
                ("notify", self.pool.name, oid),
            )
        except StorageError as exc:
            # Unacked (a dead or cut-off listener): by the timeout it no longer trusts
            # what it cached, so waiting it out keeps the promise.
            log.debug("change feed: notify %s: %s", oid, exc)
            await asyncio.sleep(max(0.0, NOTIFY_TIMEOUT_S - (time.monotonic() - started)))
