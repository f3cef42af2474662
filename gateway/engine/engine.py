"""The object engine: one value that front ends and services use, built over a backend."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.engine import layout
from gateway.engine.buckets import BucketService
from gateway.engine.iam import IdentityStore
from gateway.engine.index import BucketIndex
from gateway.engine.objects import ObjectService
from storage import Backend


@dataclass(slots=True)
class EngineSettings:
    pool_prefix: str = "atonix"
    inline_limit: int = layout.DEFAULT_INLINE_LIMIT
    stripe_size: int = layout.DEFAULT_STRIPE_SIZE


class ObjectEngine:
    """Buckets, objects and identities over one backend; holds no state of its own."""

    def __init__(self, backend: Backend, settings: EngineSettings | None = None) -> None:
        self.backend = backend
        self.settings = settings or EngineSettings()
        prefix = self.settings.pool_prefix
        self.meta = backend.pool(layout.pool_name(prefix, layout.META_POOL))
        self.data = backend.pool(layout.pool_name(prefix, layout.DATA_POOL))
        self.index = BucketIndex(self.meta)
        self.buckets = BucketService(self.meta, self.index)
        self.objects = ObjectService(
            self.buckets,
            self.index,
            self.data,
            inline_limit=self.settings.inline_limit,
            stripe_size=self.settings.stripe_size,
        )
        self.identities = IdentityStore(self.meta)

    async def prepare(self) -> None:
        """Create the engine's pools if they are missing (idempotent, safe to race)."""
        prefix = self.settings.pool_prefix
        for pool in (layout.META_POOL, layout.DATA_POOL):
            await self.backend.create_pool(layout.pool_name(prefix, pool))

    async def healthy(self) -> None:
        await self.backend.ping()
