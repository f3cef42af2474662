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
  removing a stripe twice changes nothing), so several gateways may drain the
  same queue at once: they only repeat work.

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

from gateway.engine.records import Segment
from storage import ObjectNotFound, Pool

log = logging.getLogger("atonix.release")

QUEUE_SHARDS = 8
QUEUE_PREFIX = "release."
DEFAULT_INLINE_BYTES = 64 * 1024 * 1024
_PAGE = 100
RECHECK_SECONDS = 60.0


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
    ) -> None:
        self.meta = meta
        self.remove = remove  # the release itself (PayloadStore.remove)
        self.inline_bytes = inline_bytes
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
        key = f"{time.time():017.6f}.{secrets.token_hex(8)}"
        shard = secrets.randbelow(QUEUE_SHARDS)
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

    async def drain(self) -> int:
        """Release every queued record; the number released.

        A record that fails (backend trouble, an unreadable record) is logged and
        kept for a later drain; it never stops the records after it.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        done = 0
        async with self._lock:
            for shard in range(QUEUE_SHARDS):
                async for key, value in self._records(shard):
                    try:
                        await self.remove(decode_segments(value))
                    except Exception:
                        self.failed += 1
                        log.exception("release queue: record %s failed; kept for later", key)
                        continue
                    with contextlib.suppress(ObjectNotFound):
                        await self.meta.omap_rm(queue_object(shard), [key])
                    done += 1
        return done

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
