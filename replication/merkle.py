"""Finding where two copies of a bucket differ by comparing digests of key ranges, then
narrowing down only into ranges whose digests differ (pure: each side is reached
through a ``Side``, so one side may be a remote region's gateway).

A version is summed up by (key, version id, ETag, delete marker; the digests
are ``engine.version_digest``'s). One side cuts a range into ``pieces`` parts of
about equal size, never inside a key; both sides digest exactly those parts;
equal parts are done, a differing part is either small enough to compare item
by item or cut again. Equal buckets cost one exchange; each difference costs
about log_pieces(n) more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine import VersionItem as Item


class Side(Protocol):
    async def bounds(self, lo: str, hi: str | None, pieces: int) -> list[str]:
        """Keys cutting [lo, hi) into about ``pieces`` parts (the first is ``lo``)."""

    async def digests(self, bounds: Sequence[str], hi: str | None) -> list[tuple[int, str]]:
        """(items, digest) of each part [bounds[i], bounds[i+1]) (the last up to ``hi``)."""

    async def items(self, lo: str, hi: str | None) -> list[Item]:
        """Every item with lo <= key < hi, in key order."""


@dataclass
class Differences:
    keys: list[str] = field(default_factory=list)  # keys whose versions differ
    exchanges: int = 0  # requests made to the two sides


async def differences(a: Side, b: Side, lo: str = "", hi: str | None = None,
                      pieces: int = 16, leaf: int = 256) -> Differences:
    """The keys in [lo, hi) whose versions differ between ``a`` and ``b``."""
    out = Differences()
    await _narrow(a, b, lo, hi, pieces, leaf, out)
    out.keys.sort()
    return out


async def _narrow(a: Side, b: Side, lo: str, hi: str | None, pieces: int, leaf: int,
                  out: Differences) -> None:
    bounds = await a.bounds(lo, hi, pieces)
    mine, theirs = await a.digests(bounds, hi), await b.digests(bounds, hi)
    out.exchanges += 3
    for n, ((count_a, dig_a), (count_b, dig_b)) in enumerate(zip(mine, theirs, strict=True)):
        if dig_a == dig_b:
            continue
        start = bounds[n]
        end = bounds[n + 1] if n + 1 < len(bounds) else hi
        if max(count_a, count_b) <= leaf or len(bounds) == 1:  # small, or cannot be cut
            out.keys += _differing(await a.items(start, end), await b.items(start, end))
            out.exchanges += 2
        else:
            await _narrow(a, b, start, end, pieces, leaf, out)


def _differing(mine: list[Item], theirs: list[Item]) -> list[str]:
    by_key: dict[str, list[set]] = {}
    for side, items in enumerate((mine, theirs)):
        for key, *rest in items:
            by_key.setdefault(key, [set(), set()])[side].add(tuple(rest))
    return [key for key, (x, y) in by_key.items() if x != y]
