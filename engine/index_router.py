"""Finding a key's shard: a per-process route cache, checked by each shard's own header.

Gateways are stateless, so the cache is only a hint. Every read fetches the
shard header in the same operation as the entry and checks that the shard
still covers the key; every write guards on the header's exact bytes. An
out-of-date route therefore costs one extra read ("move right" to
``next``), never a wrong answer. The shard map itself (``m<lower bound> ->
shard``) lives in the root shard's omap and is read once per bucket and
process, then again only when a move right found a shard it did not list.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass

from engine import layout
from engine.index_shards import ROOT_SHARD, IndexSettings, RouteTable, ShardView
from storage import GuardFailed, ObjectNotFound, Pool, WriteOp

ACTIVE = "active"
DELETING = "deleting"
HEADER_KEYS = (layout.SHARD_HEADER, layout.SHARD_RANGE)
MAX_HOPS = 64  # moves right while locating a key; a split adds one shard at a time
_MAP_PAGE = 1000
_MAX_TABLES = 4096  # buckets whose routes one process remembers


class StaleBucket(Exception):
    """The shard header no longer names this bucket id in the active state."""


@dataclass(slots=True)
class Located:
    """A shard header as read, with the bucket state and any other keys read with it."""

    view: ShardView
    state: str  # the bucket's state in this shard: "active" or "deleting"
    values: dict[str, bytes]


def active_guard(bucket_id: str) -> WriteOp:
    return WriteOp().omap_cmp(layout.SHARD_HEADER, layout.shard_header(bucket_id, ACTIVE))


class ShardRouter:
    def __init__(self, meta: Pool, settings: IndexSettings) -> None:
        self.meta = meta
        self.settings = settings
        self._tables: OrderedDict[str, RouteTable] = OrderedDict()

    @staticmethod
    def oid(bucket_id: str, shard: str) -> str:
        return layout.index_shard_object(bucket_id, shard)

    def table(self, bucket_id: str) -> RouteTable:
        table = self._tables.get(bucket_id)
        if table is None:
            table = self._tables[bucket_id] = RouteTable()
            if len(self._tables) > _MAX_TABLES:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(bucket_id)
        return table

    def forget(self, bucket_id: str) -> None:
        self._tables.pop(bucket_id, None)

    async def loaded(self, bucket_id: str) -> RouteTable:
        table = self.table(bucket_id)
        if not table.loaded:
            await self.load_map(bucket_id)
        return table

    async def load_map(self, bucket_id: str) -> RouteTable:
        """Merge the backend's shard map into this process's table."""
        table = self.table(bucket_id)
        after = ""
        while True:
            try:
                items = await self.meta.omap_list(
                    self.oid(bucket_id, ROOT_SHARD),
                    start_after=after,
                    prefix=layout.SHARD_MAP_PREFIX,
                    max_items=_MAP_PAGE,
                )
            except ObjectNotFound:
                raise StaleBucket(bucket_id) from None
            for key, shard in items:
                table.add(key[len(layout.SHARD_MAP_PREFIX) :], shard.decode())
            if len(items) < _MAP_PAGE:
                table.loaded = True
                return table
            after = items[-1][0]

    def interpret(self, bucket_id: str, shard: str, got: dict[str, bytes]) -> Located:
        """Check the bucket id, decode the header and remember it."""
        header = got.get(layout.SHARD_HEADER)
        mine = f"{bucket_id}:".encode()
        if header is None or not header.startswith(mine):
            raise StaleBucket(bucket_id)
        raw = got.get(layout.SHARD_RANGE)
        if raw is None and shard != ROOT_SHARD:
            raise StaleBucket(bucket_id)  # only a root from before ranges lacks h.range
        view = ShardView.decode(shard, raw, self.settings.sample_rate)
        self.table(bucket_id).learn(view)
        return Located(view, header[len(mine) :].decode(), got)

    async def read(self, bucket_id: str, shard: str, extra: tuple[str, ...] = ()) -> Located:
        """One shard's header (plus ``extra`` keys) in one read."""
        try:
            got = await self.meta.omap_get(self.oid(bucket_id, shard), [*HEADER_KEYS, *extra])
        except ObjectNotFound:
            raise StaleBucket(bucket_id) from None
        return self.interpret(bucket_id, shard, got)

    async def locate(self, bucket_id: str, key: str, extra: tuple[str, ...] = ()) -> Located:
        """The shard that covers ``key`` now, read together with ``extra`` keys."""
        table = await self.loaded(bucket_id)
        for _ in range(MAX_HOPS):
            found = await self.read(bucket_id, table.for_key(key), extra)
            if found.view.covers(key):
                await self.confirm_map(bucket_id)
                return found
            if key <= found.view.after:
                raise RuntimeError(f"bucket index map of {bucket_id} routes {key!r} too far right")
        raise RuntimeError(f"bucket index of {bucket_id}: no shard covers {key!r}")

    async def confirm_map(self, bucket_id: str) -> None:
        """Make sure shards found by moving right are in the backend's map.

        The splitter writes the entry right after its commit; this repairs a
        split that crashed before doing so (a reload usually finds it there)."""
        table = self.table(bucket_id)
        if not table.unconfirmed:
            return
        await self.load_map(bucket_id)
        missing = dict(table.unconfirmed)
        if missing:
            await self.publish(bucket_id, missing)

    async def publish(self, bucket_id: str, entries: dict[str, str]) -> None:
        """Add ``lower bound -> shard`` entries to the map (facts: safe to write twice)."""
        op = active_guard(bucket_id).omap_set(
            {layout.shard_map_key(after): shard.encode() for after, shard in entries.items()}
        )
        with contextlib.suppress(GuardFailed, ObjectNotFound):  # being deleted: no repair
            await self.meta.operate(self.oid(bucket_id, ROOT_SHARD), op)
        table = self.table(bucket_id)
        for after, shard in entries.items():
            table.add(after, shard)

    async def chain(self, bucket_id: str) -> list[Located]:
        """Every committed shard, in key order, by following ``next`` from the root."""
        out: list[Located] = []
        shard: str | None = ROOT_SHARD
        while shard is not None:
            found = await self.read(bucket_id, shard)
            out.append(found)
            shard = found.view.next
        return out
