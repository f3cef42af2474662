"""Read stats beside the tiering walk: each version with its last read and its reads
in the promotion window of the rule that places it.

The gateways count clients' reads and flush them to one stats object per
bucket (engine.read_log), kept in the bucket's key order. The walk lists
versions in that same order, so the stats are read in step with it, a page
at a time (``ReadsCursor``), never one read per object. Stats found for a
version the walk did not list belong to a version deleted by a path that did
not drop them (another process, a crash before its flush); ``tier apply``
removes them once it has walked the whole bucket, plans only read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from engine import NULL, BucketReads, ReadsCursor, ReadStats
from tiering.policy import ObjectFacts, Policy

if TYPE_CHECKING:
    from tiering.service import Version


def with_reads(
    facts: ObjectFacts, stats: ReadStats | None, policy: Policy, now: float
) -> ObjectFacts:
    """``facts`` with the version's last read and the reads within the promotion window
    of the rule that matches it (rules match on what a read does not change)."""
    if stats is None:
        return facts
    facts = dataclasses.replace(facts, last_read=stats.last_read)
    rule = policy.rule_for(facts)
    if rule is None or rule.promote is None:
        return facts
    return dataclasses.replace(facts, recent_reads=stats.reads_within(rule.promote.within_s, now))


async def versions_with_stats(
    versions: AsyncIterator[Version], reads: BucketReads, drop_stale: bool = False
) -> AsyncIterator[tuple[Version, ReadStats | None]]:
    """Each version of the walk with its stored read stats (None: never read, or not
    since it was written). ``drop_stale``: once the walk is through, remove the stats
    of versions it did not list."""
    cursor = reads.cursor()
    group: list[Version] = []  # the versions of one key: its stats are judged together
    async for v in versions:
        if group and v.key != group[0].key:
            for item in await _joined(group, cursor):
                yield item
            group = []
        group.append(v)
    if group:
        for item in await _joined(group, cursor):
            yield item
    if drop_stale:
        await cursor.finish()
        await reads.forget(cursor.stale)


async def stored_stats(reads: BucketReads, v: Version) -> ReadStats | None:
    """One version's stats (explain): None if never read since it was written."""
    stats = await reads.of(v.key, _token(v))
    return stats if stats is not None and stats.written == v.entry.mtime else None


async def _joined(
    group: list[Version], cursor: ReadsCursor
) -> list[tuple[Version, ReadStats | None]]:
    listed = {_token(v): v.entry.mtime for v in group}
    found = await cursor.take(group[0].key, listed)
    return [(v, found.get(_token(v))) for v in group]


def _token(v: Version) -> str:
    return v.entry.version_id or NULL
