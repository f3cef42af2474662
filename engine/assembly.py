"""The object engine: one value that front ends and services use, built over a backend."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from dedupe import ChunkCache, ChunkingConfig, ChunkStore, CpuPool, DedupeConfig
from engine import layout
from engine.buckets import BucketService
from engine.chunked import ChunkedPayloads, DataPathObserver
from engine.clock import SYSTEM_CLOCK, Clock
from engine.clone import PayloadCloner
from engine.hot_cache import HotCache
from engine.iam import IdentityStore
from engine.index import BucketIndex, IndexSettings
from engine.index_shards import DEFAULT_SPLIT_LEASE_S, DEFAULT_SPLIT_THRESHOLD
from engine.mfa import MfaDevices
from engine.multipart import UploadService
from engine.objects import ObjectService
from engine.payload import PayloadStore
from engine.point_in_time import PointInTimeRestore
from engine.records import BucketDedupe, BucketRecord
from engine.release_queue import ADOPT_SECONDS, DEFAULT_INLINE_BYTES, ReleaseQueue
from engine.replicas import ReplicaWriter
from engine.replication_rules import REPLICATED_BUCKETS
from engine.service_records import ServiceRecords
from engine.tiers import DEFAULT_TIERS, RESTORES_NAMESPACE, TierMap, TierSettings, erasure_pool
from engine.transitions import TierMover
from storage import Backend, Pool
from storage.pool_objects import PoolObjects
from storage.remote_s3 import RemoteObjects
from storage.split_pool import ResolvingPool, SplitPool

# How long the remote client of a re-pointed cold tier lives on for reads in flight.
_RETIRE_S = 300.0


@dataclass(slots=True)
class EngineSettings:
    pool_prefix: str = "atonix"
    inline_limit: int = layout.DEFAULT_INLINE_LIMIT
    stripe_size: int = layout.DEFAULT_STRIPE_SIZE
    # Bucket index shards split in two past this many keys (see index_shards).
    index_split_threshold: int = DEFAULT_SPLIT_THRESHOLD
    index_split_lease_s: float = DEFAULT_SPLIT_LEASE_S
    index_split_in_background: bool = True
    # New payloads above inline_limit become deduplicated, compressed chunks
    # (buckets may opt out); off: fixed stripes. Both kinds are always readable.
    dedupe: bool = True
    compression_level: int = 3
    gc_grace_seconds: float = 3600.0
    manifest_span: int = layout.MANIFEST_SPAN
    # Decoded chunks kept in memory per process (S3-FIFO; 0 = no cache).
    cache_bytes: int = 64 * 1024 * 1024
    # Current index entries (small objects inline) kept per gateway process, coherent
    # across processes through the change feed (engine.hot_cache; 0 = no cache).
    hot_cache_bytes: int = 64 * 1024 * 1024
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    # Payloads larger than this are released by a background task through a
    # durable queue (a DeleteObject of a huge object must not wait for it).
    release_inline_bytes: int = DEFAULT_INLINE_BYTES
    # Another process's queued release is adopted once this old (its own gateway
    # may still be at it; see engine.release_queue).
    release_adopt_seconds: float = ADOPT_SECONDS
    compression_min_saving: float = 0.03
    # Store edited chunks as deltas against the chunks they replace (dedupe.delta).
    delta_chunks: bool = True
    # New chunks in packs of about this many bytes (dedupe.packs; 0 = one object per
    # chunk); the collector compacts packs whose live share falls below pack_min_live.
    pack_bytes: int = 4 * 1024 * 1024
    pack_min_live: float = 0.5
    # Config-file policies per bucket name (a policy set with the admin CLI wins).
    bucket_dedupe: dict[str, BucketDedupe] = field(default_factory=dict)
    # Chunk tiers, hottest first (engine.tiers; the tiering policy sets them).
    tiers: tuple[TierSettings, ...] = DEFAULT_TIERS
    # Other regions a replication rule may name (arn:aws:s3:REGION::BUCKET).
    regions: tuple[str, ...] = ()
    # This deployment's own name among the regions (engine.primacy: failover needs it).
    region_name: str = ""

    def dedupe_config(self) -> DedupeConfig:
        return DedupeConfig(
            chunking=self.chunking,
            zstd_level=self.compression_level,
            min_saving=self.compression_min_saving,
            delta_chunks=self.delta_chunks,
            pack_bytes=self.pack_bytes,
            pack_min_live=self.pack_min_live,
            gc_grace_seconds=self.gc_grace_seconds,
        )

    def index_settings(self) -> IndexSettings:
        return IndexSettings(
            split_threshold=self.index_split_threshold,
            split_lease_s=self.index_split_lease_s,
            split_in_background=self.index_split_in_background,
        )


class ObjectEngine:
    """Buckets, objects and identities over one backend; holds no state of its own."""

    def __init__(
        self,
        backend: Backend,
        settings: EngineSettings | None = None,
        observer: DataPathObserver | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or EngineSettings()
        # Every time-dependent path reads this one clock (tests pass a ManualClock).
        self.clock = clock or SYSTEM_CLOCK
        prefix = self.settings.pool_prefix
        self.meta = backend.pool(layout.pool_name(prefix, layout.META_POOL))
        self.data = backend.pool(layout.pool_name(prefix, layout.DATA_POOL))
        self.tiers = TierMap(self.settings.tiers, prefix, self._prepare_tier)
        # Cold tiers: their chunks' bytes in a remote bucket, their catalog in a pool.
        self.remotes = {t.name: self._remote(t) for t in self.tiers.tiers if t.remote}
        pools = self.tiers.pools()
        chunk_pools = {
            self.tiers.store_name(t): self._tier_pool(t, pools[self.tiers.store_name(t)])
            for t in self.tiers.tiers
        }
        self.chunk_pool = next(iter(chunk_pools.values()))  # the hot tier's
        self.cpu = CpuPool()
        observer = observer or DataPathObserver()
        cache = None
        if self.settings.cache_bytes > 0:
            cache = ChunkCache(self.settings.cache_bytes, on_access=observer.cache_access)
        self.chunks = ChunkedPayloads(
            self.meta,
            ChunkStore(
                chunk_pools, cache=cache, clock=self.clock.time,
                unknown_tier=self._dropped_tier_pool,
            ),
            self.cpu,
            self.settings.dedupe_config(),
            span=self.settings.manifest_span,
            observer=observer,
        )
        self.payloads = PayloadStore(self.data, self.chunks)
        self.releases = ReleaseQueue(
            self.meta,
            self.payloads.remove,
            inline_bytes=self.settings.release_inline_bytes,
            adopt_after=self.settings.release_adopt_seconds,
            clock=self.clock.time,
        )
        self.payloads.queue = self.releases
        self.changes = backend.changes(self.meta.name)
        self.hot_cache = HotCache(self.changes, self.settings.hot_cache_bytes, observer)
        self.index = BucketIndex(
            self.meta, self.settings.index_settings(), self.clock, self.hot_cache
        )
        self.buckets = BucketService(self.meta, self.index, self.clock)
        self.objects = ObjectService(
            self.buckets,
            self.index,
            self.payloads,
            inline_limit=self.settings.inline_limit,
            stripe_size=self.settings.stripe_size,
            dedupe=self.settings.dedupe,
            bucket_defaults=self.settings.bucket_dedupe,
            clock=self.clock,
            tiers=self.tiers,
        )
        self.uploads = UploadService(
            self.buckets,
            self.index,
            self.objects,
            self.meta,
            self.data,
            stripe_size=self.settings.stripe_size,
            clock=self.clock,
        )
        # DeleteBucket discards the bucket's in-progress uploads, as AWS does.
        self.buckets.before_destroy.append(self.uploads.purge_bucket)
        self.identities = IdentityStore(self.meta, self.clock)
        self.mfa = MfaDevices(self.meta, self.clock)
        self.cloner = PayloadCloner(self.objects)
        self.mover = TierMover(
            self.objects, self.tiers, ServiceRecords(self.meta, RESTORES_NAMESPACE)
        )
        self.restores = PointInTimeRestore(self.objects, self.cloner)
        self.replicas = ReplicaWriter(self.objects.versioning, self.cloner, self._move_replica)
        self.replicated = ServiceRecords(self.meta, REPLICATED_BUCKETS)

    async def _move_replica(
        self, record: BucketRecord, key: str, storage_class: str, version_id: str | None
    ) -> None:
        """A replica to the tier of its rule's storage class (a clone starts where its
        source is)."""
        tier = self.tiers.for_class(storage_class)
        await self.mover.move(record, record.bucket_id, key, tier.name, version_id, None)

    async def prepare(self) -> None:
        """Create the engine's pools if they are missing (idempotent, safe to race)."""
        prefix = self.settings.pool_prefix
        for pool in (layout.META_POOL, layout.DATA_POOL, layout.CHUNKS_POOL):
            await self.backend.create_pool(layout.pool_name(prefix, pool))

    async def attach(self, serving: bool) -> None:
        """Join the change feed: a serving process listens (and caches), others only publish."""
        listen = serving and self.hot_cache.max_bytes > 0
        if not listen:
            self.hot_cache.max_bytes = 0
        await self.changes.start(listen=listen)

    async def detach(self) -> None:
        await self.changes.close()

    async def healthy(self) -> None:
        await self.backend.ping()

    def replace_tiers(self, tiers: tuple[TierSettings, ...]) -> None:
        """Serve ``tiers`` from now on (a reloaded policy). Data on a tier the new
        list drops stays readable: its pool stays known to the chunk store."""
        new = TierMap(tiers, self.settings.pool_prefix, self._prepare_tier)
        store = self.chunks.store
        pools = new.pools()
        for gone in set(self.remotes) - {t.name for t in tiers if t.remote is not None}:
            # No longer a cold tier (dropped, or now a warm one): its endpoint retires.
            asyncio.get_running_loop().call_later(_RETIRE_S, self.remotes.pop(gone).close)
        for t in tiers:
            if t.remote is not None:
                remote = self._remote(t)
                old = self.remotes.get(t.name)
                if old is None or old.settings != remote.settings:
                    self.remotes[t.name] = remote
                    if old is not None:  # reads in flight may still use it: close it later
                        asyncio.get_running_loop().call_later(_RETIRE_S, old.close)
            name = new.store_name(t)
            store.set_pool(name, self._tier_pool(t, pools[name]))
        self.tiers = self.objects.tiers = self.mover.tiers = new

    def _remote(self, tier: TierSettings) -> RemoteObjects:
        """The remote bucket of a cold tier, its keys under ``<key prefix><deployment>/
        <tier>/``: tiers and deployments sharing a bucket never see each other's."""
        assert tier.remote is not None
        prefix = f"{tier.remote.prefix}{self.settings.pool_prefix}/{tier.name}/"
        return RemoteObjects(replace(tier.remote, prefix=prefix))

    def _dropped_tier_pool(self, name: str) -> Pool:
        """The pool of a tier manifests name but the policy no longer lists."""
        return ResolvingPool(self.backend.pool(self.tiers.default_pool(name)), self.backend.pool)

    def _tier_pool(self, tier: TierSettings, pool: str) -> Pool:
        local = self.backend.pool(pool)
        if tier.remote is not None:  # cold: the bytes in a remote bucket
            return SplitPool(local, self.remotes[tier.name], self.backend.pool)
        if tier.erasure is not None:  # the bytes in an erasure-coded pool beside it
            return SplitPool(local, PoolObjects(self.backend.pool(erasure_pool(pool))),
                             self.backend.pool)
        if pool == layout.pool_name(self.settings.pool_prefix, layout.CHUNKS_POOL):
            return local  # the hot tier
        # A replicated tier whose catalog records another place (the policy turned an
        # erasure-coded or cold tier into a plain one): the record wins.
        return ResolvingPool(local, self.backend.pool)

    async def _prepare_tier(self, tier: TierSettings, pool: str) -> None:
        await self.backend.create_pool(pool)
        if tier.erasure is not None:
            await self.backend.create_pool(erasure_pool(pool), tier.erasure)
        if tier.remote is not None:
            await self.remotes[tier.name].check()  # unreachable: fails before data moves
        split = self.chunks.store.pool(self.tiers.store_name(tier))
        if isinstance(split, SplitPool):
            await split.claim_location()  # or refuse: the catalog holds another place's

    def close(self) -> None:
        """Stop the CPU pool's and remote tiers' threads (after the backend is closed)."""
        self.cpu.close()
        for remote in self.remotes.values():
            remote.close()
