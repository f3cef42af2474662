"""The hot cache: current index entries this worker read lately, kept coherent
across every gateway process through the backend's change feed.

A small object's bytes live inside its index entry (``layout`` inline limit),
so a cached entry answers a small GET with no backend round trip. Coherence:

- Every index write publishes the tags of the keys it changed after the write
  is durable and before the caller is answered (``BucketIndex``), and every
  process attached to the meta pool hears it (``storage.ChangeFeed``).
- An entry is cached with the generation its key's tag had when the read that
  produced it *started*, and only if the generation has not moved by the time
  the read returned: a write racing the read leaves nothing behind.
- A lookup serves an entry only while the feed still answers that very
  generation; a feed that cannot vouch for itself answers None and the cache
  steps aside (reads go to the backend) until it can.

Only current entries are cached (not versions, not listings) and only entries
that exist: a miss on a bucket deleted meanwhile must still read the shard to
tell NoSuchBucket from NoSuchKey.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

import xxhash

from engine.records import ObjectEntry
from storage import ChangeFeed

ENTRY_OVERHEAD = 512  # rough bytes of a decoded entry beyond its inline payload
# A write that failed in flight may still land this much later (the rados client's op
# timeout, plus a margin): its keys are published again then.
LATE_WRITE_S = 40.0
Ticket = tuple[int, int]  # (tag, generation) at the start of a backend read


class HotCacheObserver(Protocol):
    def hot_cache(self, hit: bool, cached_bytes: int) -> None:
        """A lookup was served from the hot cache (or not); what it holds now."""

    def hot_cache_invalidated(self, keys: int) -> None:
        """This process published changes of this many keys."""


def key_tag(bucket_id: str, key: str) -> int:
    return xxhash.xxh3_64_intdigest(f"{bucket_id}/{key}".encode("utf-8", "surrogatepass"))


class HotCache:
    """LRU of (bucket id, key) -> current entry, bounded in bytes (0: keeps nothing)."""

    def __init__(
        self, feed: ChangeFeed | None, max_bytes: int, observer: HotCacheObserver | None = None
    ) -> None:
        self.feed = feed
        self.max_bytes = max_bytes if feed is not None else 0
        self.observer = observer
        self._entries: OrderedDict[tuple[str, str], tuple[int, ObjectEntry, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.bypassed = 0
        self._late: set[asyncio.Task] = set()

    def lookup(self, bucket_id: str, key: str) -> tuple[ObjectEntry | None, Ticket | None]:
        """(the cached entry, None) on a hit; (None, a ticket for ``keep``) on a miss;
        (None, None) when nothing may be cached now."""
        if not self.max_bytes:
            return None, None
        tag = key_tag(bucket_id, key)
        generation = self.feed.generation(tag)  # type: ignore[union-attr]
        if generation is None:
            self.bypassed += 1
            return None, None
        slot = (bucket_id, key)
        held = self._entries.get(slot)
        if held is not None:
            if held[0] == generation:
                self._entries.move_to_end(slot)
                self.hits += 1
                self._report(True)
                return held[1], None
            self._drop(slot)
        self.misses += 1
        self._report(False)
        return None, (tag, generation)

    def keep(self, bucket_id: str, key: str, entry: ObjectEntry, ticket: Ticket) -> None:
        """Cache what a read that started with ``ticket`` returned, unless a write
        was published meanwhile."""
        tag, generation = ticket
        if self.feed.generation(tag) != generation:  # type: ignore[union-attr]
            return
        size = (
            len(entry.inline) + len(key) + ENTRY_OVERHEAD + 64 * len(entry.segments)
            + sum(len(k) + len(v) for k, v in entry.user_meta.items())
            + sum(len(k) + len(v) for k, v in entry.headers.items())
        )
        if size > self.max_bytes // 8:
            return
        slot = (bucket_id, key)
        self._drop(slot)
        self._entries[slot] = (generation, entry, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, _, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted

    async def changed(self, bucket_id: str, keys: Iterable[str]) -> None:
        """Tell every process that these keys changed (their new state is durable)."""
        keys = list(keys)
        for key in keys:
            self._drop((bucket_id, key))
        if self.feed is None or not keys:
            return
        await self.feed.publish([key_tag(bucket_id, key) for key in keys])
        if self.observer is not None:
            self.observer.hot_cache_invalidated(len(keys))

    def changed_later(self, bucket_id: str, keys: Iterable[str]) -> None:
        """Publish the keys again once a write that failed in flight can no longer land."""
        if self.feed is None:
            return
        keys = list(keys)

        def again() -> None:
            task = asyncio.ensure_future(self.changed(bucket_id, keys))
            self._late.add(task)
            task.add_done_callback(self._late.discard)

        with contextlib.suppress(RuntimeError):  # no loop: nothing is served either
            asyncio.get_running_loop().call_later(LATE_WRITE_S, again)

    def _drop(self, slot: tuple[str, str]) -> None:
        held = self._entries.pop(slot, None)
        if held is not None:
            self.bytes -= held[2]

    def _report(self, hit: bool) -> None:
        if self.observer is not None:
            self.observer.hot_cache(hit, self.bytes)
