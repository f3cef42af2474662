"""The object engine: one value that front ends and services use, built over a backend."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.engine import layout
from gateway.engine.buckets import BucketService
from gateway.engine.iam import IdentityStore
from gateway.engine.index import BucketIndex, IndexSettings
from gateway.engine.index_shards import DEFAULT_SPLIT_LEASE_S, DEFAULT_SPLIT_THRESHOLD
from gateway.engine.multipart import UploadService
from gateway.engine.objects import ObjectService
from storage import Backend


@dataclass(slots=True)
class EngineSettings:
    pool_prefix: str = "atonix"
    inline_limit: int = layout.DEFAULT_INLINE_LIMIT
    stripe_size: int = layout.DEFAULT_STRIPE_SIZE
    # Bucket index shards split in two past this many keys (see index_shards).
    index_split_threshold: int = DEFAULT_SPLIT_THRESHOLD
    index_split_lease_s: float = DEFAULT_SPLIT_LEASE_S
    index_split_in_background: bool = True

    def index_settings(self) -> IndexSettings:
        return IndexSettings(
            split_threshold=self.index_split_threshold,
            split_lease_s=self.index_split_lease_s,
            split_in_background=self.index_split_in_background,
        )


class ObjectEngine:
    """Buckets, objects and identities over one backend; holds no state of its own."""

    def __init__(self, backend: Backend, settings: EngineSettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or EngineSettings()
        prefix = self.settings.pool_prefix
        self.meta = backend.pool(layout.pool_name(prefix, layout.META_POOL))
        self.data = backend.pool(layout.pool_name(prefix, layout.DATA_POOL))
        self.index = BucketIndex(self.meta, self.settings.index_settings())
        self.buckets = BucketService(self.meta, self.index)
        self.objects = ObjectService(
            self.buckets,
            self.index,
            self.data,
            inline_limit=self.settings.inline_limit,
            stripe_size=self.settings.stripe_size,
        )
        self.uploads = UploadService(
            self.buckets,
            self.index,
            self.objects,
            self.meta,
            self.data,
            stripe_size=self.settings.stripe_size,
        )
        # DeleteBucket discards the bucket's in-progress uploads, as AWS does.
        self.buckets.before_destroy.append(self.uploads.purge_bucket)
        self.identities = IdentityStore(self.meta)

    async def prepare(self) -> None:
        """Create the engine's pools if they are missing (idempotent, safe to race)."""
        prefix = self.settings.pool_prefix
        for pool in (layout.META_POOL, layout.DATA_POOL):
            await self.backend.create_pool(layout.pool_name(prefix, pool))

    async def healthy(self) -> None:
        await self.backend.ping()
