"""Trained zstd dictionaries, one current per tier, so small chunks compress like big files.

Compressing each chunk on its own loses the context a whole-file compressor
has: on text logs, 16 KiB chunks at zstd -3 reach only ~80% of ``zstd -3``'s
ratio on the whole file. A dictionary trained on a sample of the tier's own
chunks restores it (~99%, measured in docs/design-dedupe.md).

Layout in each tier's pool:

- ``zdict.<id:08x>``: the dictionary bytes, created exclusively and never
  changed or removed (chunks name it by id; it is ~110 KiB).
- ``zdict.current``: the id new chunks should use (plain data, last writer
  wins: several gateways training at once each publish a complete dictionary,
  and every chunk records the one it used).

Learning: until a tier has a dictionary, writers offer the chunks that zstd
could compress; once ``sample_bytes`` are collected, one of them trains (in the
CpuPool) and publishes. Readers load a dictionary by id on first need and keep
it (they are immutable). Writers re-read ``zdict.current`` at most every
``refresh_seconds``, so other gateways' dictionaries are picked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

import zstandard

from dedupe.errors import DedupeError
from dedupe.workers import CpuPool
from storage import ObjectExists, ObjectNotFound, Pool, StorageError, WriteOp

DICT_PREFIX = "zdict."
CURRENT_OID = "zdict.current"
ZstdDict = zstandard.ZstdCompressionDict


def dict_oid(dict_id: int) -> str:
    return f"{DICT_PREFIX}{dict_id:08x}"


class DictionaryMissing(DedupeError):
    pass


class _Tier:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.by_id: dict[int, ZstdDict] = {}
        self.current: ZstdDict | None = None
        self.checked_at = float("-inf")
        self.samples: list[bytes] = []
        self.sampled = 0
        self.training: asyncio.Event | None = None  # set when a training run ends
        self.failures = 0


class Dictionaries:
    """The zstd dictionaries of every tier of a ChunkStore."""

    def __init__(
        self,
        tiers: Mapping[str, Pool],
        *,
        learn: bool = True,
        sample_bytes: int = 2 * 1024 * 1024,
        dict_size: int = 112_640,
        refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tiers = {name: _Tier(pool) for name, pool in tiers.items()}
        self.learn = learn
        self.sample_bytes = sample_bytes
        self.dict_size = dict_size
        self.refresh_seconds = refresh_seconds
        self.clock = clock

    def add_tier(self, name: str, pool: Pool) -> None:
        """Know a tier added after start (or the new pool of one)."""
        self._tiers[name] = _Tier(pool)

    async def get(self, tier: str, dict_id: int) -> ZstdDict:
        """The dictionary ``dict_id`` of a tier (loaded once, then cached)."""
        t = self._tiers[tier]
        found = t.by_id.get(dict_id)
        if found is None:
            try:
                data = await t.pool.read(dict_oid(dict_id))
            except ObjectNotFound:
                raise DictionaryMissing(f"zstd dictionary {dict_id} missing in {tier}") from None
            found = ZstdDict(data)
            if found.dict_id() != dict_id:
                raise DictionaryMissing(f"object {dict_oid(dict_id)} holds another dictionary")
            t.by_id[dict_id] = found
        return found

    async def current(self, tier: str) -> ZstdDict | None:
        """The dictionary new chunks of this tier use (None until one is trained)."""
        t = self._tiers[tier]
        now = self.clock()
        if now - t.checked_at >= self.refresh_seconds:
            t.checked_at = now
            try:
                dict_id = int(await t.pool.read(CURRENT_OID))
            except (ObjectNotFound, ValueError):
                dict_id = 0
            if dict_id:
                t.current = await self.get(tier, dict_id)
        return t.current

    def known(self, tier: str) -> ZstdDict | None:
        """The current dictionary as last seen, without I/O (for every chunk of a write)."""
        return self._tiers[tier].current

    def wants_samples(self, tier: str) -> bool:
        t = self._tiers[tier]
        return self.learn and t.current is None and t.training is None and t.failures < 3

    async def settle(self, tier: str) -> None:
        """Wait for a training run in progress (once per tier: ~0.5 s), so the
        chunks that follow it use the new dictionary instead of racing past it."""
        event = self._tiers[tier].training
        if event is not None:
            await event.wait()

    async def offer(self, tier: str, raw: bytes, cpu: CpuPool) -> None:
        """A compressible chunk written without a dictionary: sample it, train when enough."""
        if not self.wants_samples(tier):
            return
        t = self._tiers[tier]
        t.samples.append(raw)
        t.sampled += len(raw)
        if t.sampled < self.sample_bytes:
            return
        t.training = event = asyncio.Event()
        samples, t.samples, t.sampled = t.samples, [], 0
        try:
            data = await cpu.run(_train, self.dict_size, samples)
            if data is None:
                t.failures += 1  # too little variety: sample again
                return
            await self.publish(tier, data)
        except StorageError:
            t.failures += 1  # a dictionary is an optimisation: never fail the upload for it
        finally:
            t.training = None
            event.set()

    async def publish(self, tier: str, data: bytes) -> int:
        """Store a dictionary and make it the tier's current one; returns its id."""
        t = self._tiers[tier]
        zdict = ZstdDict(data)
        dict_id = zdict.dict_id()
        # The same id again: dictionaries are immutable, keep the stored one.
        with contextlib.suppress(ObjectExists):
            op = WriteOp().create(exclusive=True).write_full(data)
            await t.pool.operate(dict_oid(dict_id), op)
        await t.pool.write_full(CURRENT_OID, str(dict_id).encode())
        t.by_id[dict_id] = zdict
        t.current = zdict
        t.checked_at = self.clock()
        return dict_id


def _train(dict_size: int, samples: list[bytes]) -> bytes | None:
    try:
        return zstandard.train_dictionary(dict_size, samples).as_bytes()
    except zstandard.ZstdError:
        return None
