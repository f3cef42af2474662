"""``replication verify``: are a bucket and its same-region destination equal, and if not,
where (``replication.merkle`` narrows down by range digests), and ``repair``: ship
the differing keys again.

What is compared: the versions replication makes equal. On the source, the
versions its rules ship plus the replicas it holds from elsewhere (both
ways, in active-active); on the destination, every version (a version written
there directly is a difference too; repair leaves such extra versions alone).
``null`` versions are left out. Sides here are this deployment's buckets, listed
once each; a remote region's side (its gateway computing the digests) is not
built yet.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine import REPLICA, REPLICATION_STATUS_HEADER, ObjectEntry, ships
from replication.merkle import Item, cut, differences, summarize

_PAGE = 1000


class BucketSide:
    """A bucket of this deployment as a ``merkle.Side`` (listed once, then in memory)."""

    def __init__(self, bucket, keep: Callable[[str, ObjectEntry], bool]) -> None:
        self.bucket = bucket
        self.keep = keep
        self._items: list[Item] | None = None
        self.entries: dict[tuple[str, str], ObjectEntry] = {}

    async def _all(self) -> list[Item]:
        if self._items is None:
            items, key, version = [], "", ""
            while True:
                page = await self.bucket.list_versions(key_marker=key, version_marker=version,
                                                       max_keys=_PAGE)
                for k, entry, _ in page.versions:
                    if entry.version_id is not None and self.keep(k, entry):
                        items.append((k, entry.version_id, entry.etag, entry.delete_marker))
                        self.entries[(k, entry.version_id)] = entry
                if not page.is_truncated:
                    break
                key, version = page.next_key or "", page.next_order or ""
            self._items = sorted(items)
        return self._items

    async def _range(self, lo: str, hi: str | None) -> list[Item]:
        items = await self._all()  # sorted: a range is a slice, found by bisection
        end = len(items) if hi is None else bisect.bisect_left(items, (hi,))
        return items[bisect.bisect_left(items, (lo,)):end]

    async def bounds(self, lo: str, hi: str | None, pieces: int) -> list[str]:
        return cut(await self._range(lo, hi), lo, pieces)

    async def digests(self, bounds: Sequence[str], hi: str | None) -> list[tuple[int, str]]:
        return summarize(await self._range(bounds[0], hi), bounds)

    async def items(self, lo: str, hi: str | None) -> list[Item]:
        return await self._range(lo, hi)


@dataclass
class Verdict:
    keys: list[str]
    exchanges: int
    repaired: int = 0


async def verify(source, destination, rule_for_key, repair: bool = False) -> Verdict:
    """Compare ``source`` with ``destination`` (AuthorizedBuckets of the replication
    service); ``rule_for_key(key)`` gives the rule picker of a key for this destination."""

    def shipped(key: str, entry: ObjectEntry) -> bool:
        replica = entry.headers.get(REPLICATION_STATUS_HEADER) == REPLICA
        return replica or ships(entry, rule_for_key(key)(entry))

    mine = BucketSide(source, shipped)
    theirs = BucketSide(destination, lambda key, entry: True)
    found = await differences(mine, theirs)
    verdict = Verdict(found.keys, found.exchanges)
    if repair:
        # Versions missing or different there are shipped again. Extra ones are left
        # (and stay reported): a replica there may come from another source bucket.
        for key in found.keys:
            await source.replicate_key(key, (), destination, rule_for_key(key))
            verdict.repaired += 1
    return verdict
