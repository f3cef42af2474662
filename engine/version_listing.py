"""ListObjectVersions across range shards: every version of every key, in S3's order.

Within a shard the current versions (``o<key>``) and the noncurrent ones
(``v<key>\\x01\\x01<token>``) are two ordered key spaces; a scan reads both from
the cursor and merges them into (key, version) order, a key's current
version first and its noncurrent ones newest first. A merged item is kept
only while both reads are known to be complete up to it (a full read of
either space bounds what the other may contribute), so a page costs reads
proportional to its size, however many versions the bucket holds. Pages are
checked against the shard headers as object listings are (``ShardScan``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import layout
from engine.index_listing import AFTER_ALL, MAX_SCAN, ShardScan, past_prefix, validated
from engine.index_router import ShardRouter
from engine.index_split import ShardSplitter
from engine.records import ObjectEntry

# A cursor: (object key, where in it). None: after all of the key's versions (or, with
# key "", at the start); "": after its current version; a token: after that version.
Cursor = tuple[str, str | None]


@dataclass(slots=True)
class VersionItem:
    key: str
    order: str  # "" for the current version, else its token
    raw: bytes

    @property
    def is_latest(self) -> bool:
        return self.order == ""


@dataclass(slots=True)
class VersionsPage:
    versions: list[tuple[str, ObjectEntry, bool]]  # (key, entry, is the current version)
    common_prefixes: list[str]
    is_truncated: bool
    next_key: str | None
    next_order: str | None  # with next_key: the cursor's position inside that key


class VersionScan(ShardScan):
    async def scan_versions(self, cursor: Cursor, prefix: str, count: int) -> list[VersionItem]:
        """Up to ``count`` versions after ``cursor`` under ``prefix``, in (key, order) order."""
        ckey, corder = cursor
        table = await self.router.loaded(self.bucket_id)
        if prefix > ckey:
            shard: str | None = table.for_key(prefix)
        else:
            shard = table.for_key(ckey) if corder is not None else table.for_keys_after(ckey)
        out: list[VersionItem] = []
        while shard is not None and len(out) < count:
            view = await self._view(shard)
            items, complete = await self._merged(shard, (ckey, corder), prefix, count - len(out))
            for item in items:
                if view.upto is not None and item.key > view.upto:
                    self.splitter.clean_later(self.bucket_id, view)  # left by a split
                    complete = True
                    break
                out.append(item)
                ckey, corder = item.key, item.order
            if not complete or view.upto is None or past_prefix(view.upto, prefix):
                break
            ckey, corder = view.upto, None  # every version up to the shard's bound was read
            shard = view.next
        return out

    async def _merged(
        self, shard: str, cursor: Cursor, prefix: str, want: int
    ) -> tuple[list[VersionItem], bool]:
        """The shard's versions after ``cursor``; whether they are all it holds there."""
        ckey, corder = cursor
        oid = self.router.oid(self.bucket_id, shard)
        o_after = layout.index_key(ckey) if ckey else ""
        if corder is None:
            v_after = layout.versions_after(ckey) if ckey else ""
        else:
            v_after = layout.version_key(ckey, corder) if corder else layout.versions_of(ckey)
        currents = await self.router.meta.omap_list(
            oid, start_after=o_after, prefix=layout.index_key(prefix), max_items=want
        )
        others = await self.router.meta.omap_list(
            oid, start_after=v_after, prefix=layout.versions_under(prefix), max_items=want
        )
        items = [VersionItem(layout.object_key(k), "", raw) for k, raw in currents]
        for vkey, raw in others:
            key, tok = layout.split_version_key(vkey)
            items.append(VersionItem(key, tok, raw))
        items.sort(key=lambda i: (i.key, i.order))
        complete = True
        if len(currents) == want:  # keys past the last current read are unknown
            last = layout.object_key(currents[-1][0])
            items = [i for i in items if i.key <= last]
            complete = False
        if len(others) == want:  # versions past the last one read are unknown
            bound = layout.split_version_key(others[-1][0])
            items = [i for i in items if (i.key, i.order) <= bound]
            complete = False
        return items[:want], complete and len(items) <= want


async def list_versions(
    router: ShardRouter,
    splitter: ShardSplitter,
    bucket_id: str,
    prefix: str,
    delimiter: str,
    cursor: Cursor,
    max_keys: int,
) -> VersionsPage:
    return await validated(
        router,
        bucket_id,
        lambda: VersionScan(router, splitter, bucket_id),
        lambda scan: _page(scan, prefix, delimiter, cursor, max_keys),
    )


async def _page(
    scan: VersionScan, prefix: str, delimiter: str, cursor: Cursor, max_keys: int
) -> VersionsPage:
    versions: list[tuple[str, ObjectEntry, bool]] = []
    prefixes: list[str] = []
    last: Cursor | None = None
    if delimiter and cursor[0].startswith(prefix):
        # A marker inside a rolled-up prefix resumes after that whole prefix.
        rest = cursor[0][len(prefix) :]
        cut = rest.find(delimiter)
        if cut >= 0:
            cursor = (prefix + rest[: cut + len(delimiter)] + AFTER_ALL, None)
    while True:
        count = min(max_keys - len(versions) - len(prefixes) + 1, MAX_SCAN)
        batch = await scan.scan_versions(cursor, prefix, count)
        for item in batch:
            if (item.key, item.order) <= _comparable(cursor):
                continue  # under the common prefix just rolled up
            if len(versions) + len(prefixes) >= max_keys:
                assert last is not None
                return VersionsPage(versions, prefixes, True, last[0], last[1])
            cut = item.key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                rolled = item.key[: cut + len(delimiter)]
                prefixes.append(rolled)
                last = (rolled, None)
                cursor = (rolled + AFTER_ALL, None)
                continue
            versions.append((item.key, ObjectEntry.decode(item.raw), item.is_latest))
            last = cursor = (item.key, item.order)
        if len(batch) < count:
            return VersionsPage(versions, prefixes, False, None, None)


def _comparable(cursor: Cursor) -> tuple[str, str]:
    """A cursor as a (key, order) bound: None is after every order of the key."""
    key, order = cursor
    return (key, AFTER_ALL) if order is None else (key, order)
