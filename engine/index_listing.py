"""Listing a bucket across range shards: ordered pages whose cost does not grow with the bucket.

A page starts in the shard that covers its first key (one route lookup),
scans it in key order and continues into ``next`` when the shard's range
ends before the page is full; a delimiter roll-up seeks past the common
prefix (``start_after = prefix + U+10FFFF``), which may jump shards. So a page
reads O(page size) entries from one or two shards, whatever the bucket holds.

List-after-write across gateways: scans trust the shard headers this process
has cached, and the page is accepted only if a read of each shard's header
*after* the scans shows the same range and split state (``ShardView.epoch``).
Header values never repeat, so the shard did not change in between: every
write acknowledged before the page began is in the shard the page read.
Otherwise the page is computed again with the fresh headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from engine import layout
from engine.index_router import ShardRouter
from engine.index_shards import ShardView
from engine.index_split import ShardSplitter
from engine.records import ObjectEntry

# Sorts after every valid UTF-8 continuation of a prefix (U+10FFFF is the largest code point).
AFTER_ALL = "\U0010ffff"
MAX_SCAN = 1001  # entries per backend read: a page of 1000 and one to see if more follow
MAX_PASSES = 16  # a page is recomputed only when a shard split under it
T = TypeVar("T")
S = TypeVar("S", bound="ShardScan")


@dataclass(slots=True)
class ListPage:
    entries: list[tuple[str, ObjectEntry]]
    common_prefixes: list[str]
    is_truncated: bool
    next_marker: str | None  # the last key or prefix returned, for the next page


class ShardScan:
    """One attempt at a page: ordered scans across shards, remembering the views used."""

    def __init__(self, router: ShardRouter, splitter: ShardSplitter, bucket_id: str) -> None:
        self.router = router
        self.splitter = splitter
        self.bucket_id = bucket_id
        self.used: dict[str, ShardView] = {}

    async def scan(self, cursor: str, prefix: str, count: int) -> list[tuple[str, bytes]]:
        """Up to ``count`` (key, entry bytes) with keys > cursor under prefix, in order."""
        table = await self.router.loaded(self.bucket_id)
        shard: str | None = (
            table.for_key(prefix) if prefix > cursor else table.for_keys_after(cursor)
        )
        out: list[tuple[str, bytes]] = []
        while shard is not None and len(out) < count:
            view = await self._view(shard)
            want = count - len(out)
            items = await self.router.meta.omap_list(
                self.router.oid(self.bucket_id, shard),
                start_after=layout.index_key(cursor) if cursor else "",
                prefix=layout.index_key(prefix),
                max_items=want,
            )
            ended = len(items) < want
            for ikey, raw in items:
                key = layout.object_key(ikey)
                if view.upto is not None and key > view.upto:
                    self.splitter.clean_later(self.bucket_id, view)  # left by a split
                    ended = True
                    break
                out.append((key, raw))
            if not ended or view.upto is None or past_prefix(view.upto, prefix):
                break
            cursor, shard = max(cursor, view.upto), view.next
        return out

    async def _view(self, shard: str) -> ShardView:
        view = self.used.get(shard)
        if view is None:
            view = self.router.table(self.bucket_id).fresh_view(shard)
            if view is None:
                view = (await self.router.read(self.bucket_id, shard)).view
            self.used[shard] = view
        return view

    async def still_valid(self) -> bool:
        """Re-read every shard header the scans relied on: unchanged means the page holds."""
        shards = list(self.used)
        reads = await asyncio.gather(*(self.router.read(self.bucket_id, s) for s in shards))
        return all(r.view.epoch == self.used[s].epoch for s, r in zip(shards, reads, strict=True))


def past_prefix(upto: str, prefix: str) -> bool:
    """Whether every key under ``prefix`` is <= upto (nothing further to find)."""
    return bool(prefix) and upto >= prefix and not upto.startswith(prefix)


async def list_page(
    router: ShardRouter,
    splitter: ShardSplitter,
    bucket_id: str,
    prefix: str,
    delimiter: str,
    start_after: str,
    max_keys: int,
) -> ListPage:
    return await validated(
        router,
        bucket_id,
        lambda: ShardScan(router, splitter, bucket_id),
        lambda scan: _page(scan, prefix, delimiter, start_after, max_keys),
    )


async def validated(
    router: ShardRouter,
    bucket_id: str,
    new_scan: Callable[[], S],
    compute: Callable[[S], Awaitable[T]],
) -> T:
    """A page computed by ``compute`` over a fresh scan until the shard headers it used
    are unchanged after it (a split in between means computing it again)."""
    for _ in range(MAX_PASSES):
        scan = new_scan()
        page = await compute(scan)
        if await scan.still_valid():
            await router.confirm_map(bucket_id)
            return page
    raise RuntimeError(f"bucket index {bucket_id} kept splitting under a listing")


async def _page(
    scan: ShardScan, prefix: str, delimiter: str, start_after: str, max_keys: int
) -> ListPage:
    """One page of keys > start_after under prefix, rolled up at the delimiter.

    A read serves as many results as it holds: keys under a prefix already
    rolled up are skipped in memory. When a read was mostly such keys, the
    next one is a small seek past the prefix (``prefix + U+10FFFF``) rather
    than a scan through it, so a directory of a million keys costs one seek.
    """
    entries: list[tuple[str, ObjectEntry]] = []
    prefixes: list[str] = []
    cursor = start_after
    if delimiter and start_after.startswith(prefix):
        # A marker inside a rolled-up prefix resumes after that whole prefix.
        rest = start_after[len(prefix) :]
        cut = rest.find(delimiter)
        if cut >= 0:
            cursor = prefix + rest[: cut + len(delimiter)] + AFTER_ALL
    last: str | None = None
    count = MAX_SCAN
    while True:
        # One result more than the page holds tells whether it is truncated.
        count = min(max_keys - len(entries) - len(prefixes) + 1, count)
        batch = await scan.scan(cursor, prefix, count)
        useful = 0
        for key, raw in batch:
            if key <= cursor:
                continue  # under the common prefix just rolled up
            if len(entries) + len(prefixes) >= max_keys:
                return ListPage(entries, prefixes, True, last)
            useful += 1
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                last = key[: cut + len(delimiter)]
                prefixes.append(last)
                cursor = last + AFTER_ALL
            else:
                entry = ObjectEntry.decode(raw)
                last = cursor = key
                if entry.delete_marker:
                    useful -= 1  # the key's current version is a delete marker: not listed
                    continue
                entries.append((key, entry))
        if len(batch) < count:  # the scan reached the end of the listing
            return ListPage(entries, prefixes, False, last)
        count = MAX_SCAN if useful == len(batch) else max(2, 2 * useful)
