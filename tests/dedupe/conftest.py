"""Fixtures for the dedupe tests: a chunk store on a fresh pool of each backend.

The backend fixtures are the contract suite's (one fresh pool per test, on
local and rados). ``Objects`` plays the engine's part of the write order — the
manifest object, then the index entry (the commit), then releasing what the
entry replaced — so the crash tests can fail between any two steps.
"""

from __future__ import annotations

import uuid

import pytest

from dedupe import (
    ChunkingConfig,
    ChunkStore,
    CpuPool,
    DedupeConfig,
    DedupeWriter,
    Manifest,
    decode_manifest,
    encode_manifest,
    failpoints,
    read_all,
)
from storage import GuardFailed, ObjectNotFound, Pool, WriteOp
from tests.contract.conftest import backend, pool  # noqa: F401  (fixtures)

# Small chunks so that tests with a few hundred KiB exercise many chunks.
SMALL = ChunkingConfig(min_size=1024, avg_size=3072, max_size=16384)
SMALL_CONFIG = DedupeConfig(chunking=SMALL, write_window=4, read_ahead=2, pack_bytes=0)
# The same with packs small enough that one upload fills several.
SMALL_PACKED = DedupeConfig(chunking=SMALL, write_window=4, read_ahead=2, pack_bytes=24 * 1024)


@pytest.fixture
def cpu():
    workers = CpuPool(threads=2)
    yield workers
    workers.close()


@pytest.fixture
def store(pool) -> ChunkStore:  # noqa: F811
    return ChunkStore({"hot": pool})


@pytest.fixture
async def meta_pool(backend) -> Pool:  # noqa: F811
    name = "dmeta-" + uuid.uuid4().hex[:12]
    await backend.create_pool(name)
    backend.test_created_pools.append(name)
    return backend.pool(name)


@pytest.fixture(autouse=True)
def _no_failpoints():
    yield
    failpoints.disarm()


async def pieces(data: bytes, size: int = 7000):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def write_manifest(store, cpu, data: bytes, owner: str | None = None, config=SMALL_CONFIG):
    writer = DedupeWriter(store, owner or uuid.uuid4().hex, config=config, cpu=cpu)
    return await writer.consume(pieces(data))


class Objects:
    """The engine's side of the write order, over a meta pool: m.<owner>, then index."""

    INDEX = "index"

    def __init__(
        self, store: ChunkStore, meta: Pool, cpu: CpuPool, config: DedupeConfig = SMALL_CONFIG
    ) -> None:
        self.store, self.meta, self.cpu, self.config = store, meta, cpu, config

    async def put(self, key: str, data: bytes) -> Manifest:
        writer = DedupeWriter(
            self.store, uuid.uuid4().hex, config=self.config, cpu=self.cpu, manifests=self
        )
        try:
            async for piece in pieces(data):
                await writer.write(piece)
            manifest = await writer.finish()
        except failpoints.FailpointHit:
            await writer.cancel()  # a crash: work stops, nothing is cleaned up
            raise
        await failpoints.hit("test.before_manifest")
        await self.meta.write_full("m." + manifest.owner, encode_manifest(manifest))
        await failpoints.hit("test.before_index")
        old = await self._entry(key)
        await self.meta.operate(self.INDEX, WriteOp().omap_set({key: manifest.owner.encode()}))
        await failpoints.hit("test.before_release")
        if old is not None:
            await self._release(old)
        return manifest

    async def delete(self, key: str) -> None:
        old = await self._entry(key)
        await self.meta.operate(self.INDEX, WriteOp().omap_rm([key]))
        await failpoints.hit("test.before_release")
        await self._release(old)

    async def get(self, key: str) -> bytes:
        owner = await self._entry(key)
        return await read_all(self.store, await self.manifest(owner), cpu=self.cpu)

    async def manifest(self, owner: str) -> Manifest:
        return decode_manifest(await self.meta.read("m." + owner))

    async def load_manifest(self, owner: str) -> Manifest | None:
        """``dedupe.ManifestSource``: writers find delta bases through it."""
        try:
            return await self.manifest(owner)
        except ObjectNotFound:
            return None

    async def stored_manifest(self, owner: str) -> Manifest | None:
        return await self.load_manifest(owner)  # nothing cached here

    async def rewrite_manifest(self, old: Manifest, new: Manifest) -> bool:
        """``dedupe.compaction.ManifestStore``, as the engine implements it."""
        oid = "m." + old.owner
        try:
            version = (await self.meta.stat(oid)).version
            if await self.meta.read(oid) != encode_manifest(old):
                return False
            await self.meta.operate(
                oid, WriteOp().assert_version(version).write_full(encode_manifest(new))
            )
        except (ObjectNotFound, GuardFailed):
            return False
        return True

    async def live(self) -> list[Manifest]:
        try:
            entries = await self.meta.omap_list(self.INDEX, max_items=100000)
        except ObjectNotFound:
            return []
        return [await self.manifest(v.decode()) for _, v in entries]

    async def _entry(self, key: str) -> str | None:
        try:
            got = await self.meta.omap_get(self.INDEX, [key])
        except ObjectNotFound:
            return None
        return got[key].decode() if key in got else None

    async def _release(self, owner: str) -> None:
        await self.store.release(await self.manifest(owner))
        await self.meta.remove("m." + owner)


@pytest.fixture
def objects(store, meta_pool, cpu) -> Objects:
    return Objects(store, meta_pool, cpu)


@pytest.fixture
def packed_objects(store, meta_pool, cpu) -> Objects:
    """``Objects`` whose uploads put new chunks in packs (several per upload)."""
    return Objects(store, meta_pool, cpu, SMALL_PACKED)
