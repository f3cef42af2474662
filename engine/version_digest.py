"""Digests of key ranges of a bucket's versions: what two copies compare to find where they
differ without listing each other (``replication.merkle`` narrows down with them; a
gateway answers another region's verify with them, ``s3api.handlers.replica_digest``).

A version is summed up by (key, version id, ETag, delete marker). ``cut`` finds
boundaries splitting sorted items into parts of about equal size (never inside
a key), ``summarize`` gives each part's count and digest. Pure, but for
``version_items``, which lists a bucket.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
from collections.abc import Callable, Iterable, Sequence

from engine.errors import InvalidRequestForBucket
from engine.records import ObjectEntry

Item = tuple[str, str, str, bool]  # (key, version id, ETag, delete marker)
_PAGE = 1000


def digest(items: Iterable[Item]) -> str:
    h = hashlib.sha256()
    for key, vid, etag, marker in items:
        h.update(f"{key}\0{vid}\0{etag}\0{int(marker)}\n".encode())
    return h.hexdigest()[:32]


def cut(items: Sequence[Item], lo: str, pieces: int) -> list[str]:
    """Boundaries cutting sorted ``items`` into about ``pieces`` parts of equal size."""
    out = [lo]
    step = max(1, len(items) // max(1, pieces))
    for i in range(step, len(items), step):
        key = items[i][0]
        if key > out[-1]:
            out.append(key)
    return out


def summarize(items: Sequence[Item], bounds: Sequence[str]) -> list[tuple[int, str]]:
    """(count, digest) per part [bounds[i], bounds[i+1]) of sorted ``items``."""
    out, i = [], 0
    for n, start in enumerate(bounds):
        end = bounds[n + 1] if n + 1 < len(bounds) else None
        while i < len(items) and items[i][0] < start:
            i += 1
        j = i
        while j < len(items) and (end is None or items[j][0] < end):
            j += 1
        out.append((j - i, digest(items[i:j])))
        i = j
    return out


def in_range(items: Sequence[Item], lo: str, hi: str | None) -> Sequence[Item]:
    """The items with lo <= key < hi (``hi`` None: to the end) of sorted ``items``."""
    end = len(items) if hi is None else bisect.bisect_left(items, (hi,))
    return items[bisect.bisect_left(items, (lo,)):end]


class TooManyVersions(InvalidRequestForBucket):
    """A listing for digests past its limit."""


async def version_items(
    bucket, keep: Callable[[str, ObjectEntry], bool] = lambda key, entry: True,
    limit: int | None = None,
) -> list[Item]:
    """Every version with an id of ``bucket`` (an AuthorizedBucket) that ``keep`` keeps, as
    sorted items; TooManyVersions past ``limit`` of them."""
    items: list[Item] = []
    key = version = ""
    while True:
        page = await bucket.list_versions(key_marker=key, version_marker=version, max_keys=_PAGE)
        for k, entry, _ in page.versions:
            if entry.version_id is not None and keep(k, entry):
                items.append((k, entry.version_id, entry.etag, entry.delete_marker))
        if limit is not None and len(items) > limit:
            raise TooManyVersions(f"More than {limit} versions to digest in one listing")
        if not page.is_truncated:
            return await asyncio.to_thread(sorted, items)
        key, version = page.next_key or "", page.next_order or ""
