"""``replication verify``: are a bucket and a destination equal, and if not, where
(``replication.merkle`` narrows down by range digests), and ``repair``: ship the
differing keys again.

What is compared: the versions replication makes equal. On the source, the
versions its rules ship plus the replicas it holds from elsewhere (both
ways, in active-active); on the destination, every version (a version written
there directly is a difference too; repair leaves such extra versions alone).
``null`` versions are left out. A bucket of this deployment is listed once
into memory (``BucketSide``); a bucket of another region is asked through its
gateways (``RemoteSide``), which digest their own listing, so equal buckets
cost one exchange and no listing crosses the link.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from engine import (
    REPLICA,
    REPLICATION_STATUS_HEADER,
    ObjectEntry,
    cut,
    in_range,
    ships,
    summarize,
    version_items,
)
from replication.merkle import Item, Side, differences
from replication.remote_region import RegionClient
from replication.remote_sync import sync_remote_key


class BucketSide:
    """A bucket of this deployment as a ``merkle.Side`` (listed once, then in memory)."""

    def __init__(self, bucket, keep: Callable[[str, ObjectEntry], bool]) -> None:
        self.bucket = bucket
        self.keep = keep
        self._items: list[Item] | None = None

    async def _range(self, lo: str, hi: str | None) -> Sequence[Item]:
        if self._items is None:
            self._items = await version_items(self.bucket, self.keep)
        return in_range(self._items, lo, hi)

    async def bounds(self, lo: str, hi: str | None, pieces: int) -> list[str]:
        return cut(await self._range(lo, hi), lo, pieces)

    async def digests(self, bounds: Sequence[str], hi: str | None) -> list[tuple[int, str]]:
        return summarize(await self._range(bounds[0], hi), bounds)

    async def items(self, lo: str, hi: str | None) -> list[Item]:
        return list(await self._range(lo, hi))


class RemoteSide:
    """A bucket of another region, its gateways computing the digests (one verify is
    one session there: they list the bucket once for all its questions)."""

    def __init__(self, client: RegionClient, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self.session = uuid.uuid4().hex

    async def bounds(self, lo: str, hi: str | None, pieces: int) -> list[str]:
        raise NotImplementedError("the local side cuts the ranges")

    async def digests(self, bounds: Sequence[str], hi: str | None) -> list[tuple[int, str]]:
        answer = await self.client.digest(self.bucket, {
            "session": self.session, "bounds": list(bounds), "hi": hi})
        return [(int(n), str(d)) for n, d in answer["digests"]]

    async def items(self, lo: str, hi: str | None) -> list[Item]:
        answer = await self.client.digest(self.bucket, {
            "session": self.session, "lo": lo, "hi": hi})
        return [(str(k), str(v), str(e), bool(m)) for k, v, e, m in answer["items"]]


@dataclass
class Verdict:
    keys: list[str]
    exchanges: int
    repaired: int = 0


async def verify(source, theirs: Side, rule_for_key,
                 repair: Callable[[str], Awaitable[object]] | None = None) -> Verdict:
    """Compare ``source`` (an AuthorizedBucket of the replication service) with a
    destination side; ``rule_for_key(key)`` gives the rule picker of a key for that
    destination; ``repair(key)``, if given, ships a differing key again."""

    def shipped(key: str, entry: ObjectEntry) -> bool:
        replica = entry.headers.get(REPLICATION_STATUS_HEADER) == REPLICA
        return replica or ships(entry, rule_for_key(key)(entry))

    found = await differences(BucketSide(source, shipped), theirs)
    verdict = Verdict(found.keys, found.exchanges)
    # Versions missing or different there are shipped again. Extra ones are left (and
    # stay reported): a replica there may come from another source bucket.
    for key in found.keys if repair is not None else ():
        await repair(key)
        verdict.repaired += 1
    return verdict


async def verify_local(source, destination, rule_for_key, repair: bool = False) -> Verdict:
    """``verify`` against a bucket of this deployment (an AuthorizedBucket)."""

    async def again(key: str):
        return await source.replicate_key(key, (), destination, rule_for_key(key))

    return await verify(source, BucketSide(destination, lambda key, entry: True),
                        rule_for_key, again if repair else None)


async def verify_remote(source, client: RegionClient, bucket: str, rule_for_key,
                        repair: bool = False) -> Verdict:
    """``verify`` against ``bucket`` of another region, reached through ``client``."""
    primacy = await source.primacy()

    async def again(key: str):
        everything = tuple(v.version_id or "null" for v in await source.key_versions(key))
        return await sync_remote_key(source, key, (), everything, client, bucket,
                                     rule_for_key(key), primacy)

    return await verify(source, RemoteSide(client, bucket), rule_for_key,
                        again if repair else None)
