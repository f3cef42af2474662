"""Deferred release of large payloads: a durable queue, drained in the background.

Releasing a payload drops one reference per chunk (or removes one object per
stripe). For a 10 GiB object that is ~320,000 backend operations: done inline,
a DeleteObject or an overwrite would keep its client waiting for minutes, past
its read timeout. (RGW hands an object's tail to its garbage collector for
the same reason.) So a release of more than ``inline_bytes`` is written as one
record to a queue object after the commit, and a background task releases it;
smaller payloads are released inline, as before, and their space comes back at
once.

Queue: ``release.<shard>`` in the meta pool, omap ``<time>.<random> -> JSON
list of segments``. Ordering and crash safety:

- the record is written after the index change that made the payload garbage
  (the commit); a crash between the two leaves stale references, which
  ``atonix-cli fsck --repair`` drops, as for a crash during an inline release;
- a record is removed only after its release finished; a crash while draining
  leaves it, and releasing again is harmless (dropping a reference or
  removing a stripe twice changes nothing).

Who drains what: a process releases the records it queued itself at once, and
adopts another's only once that record is ``adopt_after`` old (default 10
minutes; the key starts with the time it was queued). So gateways (and the
worker processes of one gateway) do not all release the same 10 GiB object
while its own gateway is still at it; a record whose gateway crashed is
finished by whichever process looks after that time (several may, and only
repeat work). ``atonix-cli gc`` and ``fsck`` adopt everything at once.

fsck counts the manifests of queued records as *pending release*, not orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from engine.records import Segment
from storage import ObjectNotFound, Pool

log = logging.getLogger("atonix.release")

QUEUE_SHARDS = 8
QUEUE_PREFIX = "release."
DEFAULT_INLINE_BYTES = 64 * 1024 * 1024
_PAGE = 100
RECHECK_SECONDS = 60.0
ADOPT_SECONDS = 600.0


def queue_object(shard: int) -> str:
    return f"{QUEUE_PREFIX}{shard}"


def encode_segments(segments: list[Segment]) -> bytes:
    return json.dumps(
        [[s.data_prefix, s.size, s.stripe_size, s.stripes, s.kind] for s in segments]
    ).encode()


def decode_segments(raw: bytes) -> list[Segment]:
    return [Segment(p, size, stripe, n, kind) for p, size, stripe, n, kind in json.loads(raw)]


class ReleaseQueue:
    """Releases payloads inline when small, through the durable queue when large."""

    def __init__(
        self,
        meta: Pool,
        remove: Callable[[list[Segment]], Awaitable[None]],
        *,
        inline_bytes: int = DEFAULT_INLINE_BYTES,
        adopt_after: float = ADOPT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.meta = meta
        self.remove = remove  # the release itself (PayloadStore.remove)
        self.inline_bytes = inline_bytes
        self.adopt_after = adopt_after
        self.clock = clock
        self._mine: set[str] = set()  # keys of the records this process queued
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._lock: asyncio.Lock | None = None  # one drain at a time per process
        self.failed = 0  # records whose release failed (kept, retried later)

    async def release(self, segments: list[Segment]) -> None:
        """Release what a committed change made garbage (now, or soon in the background)."""
        if not segments:
            return
        if sum(s.size for s in segments) <= self.inline_bytes:
            await self.remove(segments)
            return
        key = f"{self.clock():017.6f}.{secrets.token_hex(8)}"
        shard = secrets.randbelow(QUEUE_SHARDS)
        self._mine.add(key)
        await self.meta.omap_set(queue_object(shard), {key: encode_segments(segments)})
        self._kick()

    async def pending(self) -> list[Segment]:
        """Every segment waiting in the queue (for fsck)."""
        out: list[Segment] = []
        for shard in range(QUEUE_SHARDS):
            async for key, value in self._records(shard):
                try:
                    out += decode_segments(value)
                except (ValueError, TypeError):
                    log.warning("release queue: unreadable record %s", key)
        return out

    async def drain(self, adopt_after: float | None = None) -> int:
        """Release this process's records, and others' older than ``adopt_after``
        (default: the queue's; 0 adopts every record); the number released.

        A record that fails (backend trouble, an unreadable record) is logged and
        kept for a later drain; it never stops the records after it.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        adopt = self.adopt_after if adopt_after is None else adopt_after
        done = 0
        async with self._lock:
            for shard in range(QUEUE_SHARDS):
                async for key, value in self._records(shard):
                    if key not in self._mine and not self._adoptable(key, adopt):
                        continue  # its own process is releasing it
                    try:
                        await self.remove(decode_segments(value))
                    except Exception:
                        self.failed += 1
                        log.exception("release queue: record %s failed; kept for later", key)
                        continue
                    with contextlib.suppress(ObjectNotFound):
                        await self.meta.omap_rm(queue_object(shard), [key])
                    self._mine.discard(key)
                    done += 1
        return done

    def _adoptable(self, key: str, adopt_after: float) -> bool:
        try:
            queued = float(key.rsplit(".", 1)[0])  # "<time>.<random>"
        except ValueError:
            return True  # not a key we write: nobody else will release it either
        return self.clock() - queued >= adopt_after

    def start(self) -> None:
        """Start the background drainer now, with one pass (for records left by others)."""
        self._kick()

    async def stop(self) -> None:
        """Stop the background drainer (queued records stay for the next one)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- internals -------------------------------------------------------------
    async def _records(self, shard: int):
        after = ""
        while True:
            try:
                page = await self.meta.omap_list(queue_object(shard), after, "", _PAGE)
            except ObjectNotFound:
                return
            for key, value in page:
                yield key, value
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._drain_forever(), name="release-queue"
            )
        assert self._wakeup is not None
        self._wakeup.set()

    async def _drain_forever(self) -> None:
        """Drain when kicked, and every ``RECHECK_SECONDS`` for records other
        (perhaps crashed) gateways left behind."""
        assert self._wakeup is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), RECHECK_SECONDS)
            self._wakeup.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. the backend is unreachable: try again later
                log.exception("release queue: drain failed")
