"""Fixtures for the engine's own tests: an ``Engine`` over a fresh namespace of each backend.

Tests here call the engine's exported interface (``engine.Engine``) the way a
front end or a background service does: with a principal, on both backends.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from engine import Engine, EngineSettings, ManualClock, Principal
from tests.contract.conftest import make_backend

OWNER = Principal.user("alice")
OTHER = Principal.user("bob")
ANONYMOUS = Principal.anonymous()
SERVICE = Principal.service("test-runner")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()  # starts at the real time: storage mtimes and it agree


@contextlib.asynccontextmanager
async def engine_over(
    backend_kind: str, tmp_path, clock: ManualClock, *, serving: bool = False,
    keep_pools: bool = False, backend=None, **settings
) -> AsyncIterator[Engine]:
    """A connected engine on a fresh namespace of the backend (its pools removed after,
    unless ``keep_pools``: a second engine opens them again); ``serving``: started as a
    gateway process is (listening to changes, caching); ``backend``: an unconnected
    backend of the test's own instead of the session's."""
    backend = backend or make_backend(backend_kind, tmp_path)
    prefix = settings.pop("pool_prefix", None) or "t" + uuid.uuid4().hex[:10]
    eng = Engine.over(backend, EngineSettings(pool_prefix=prefix, **settings), clock=clock)
    await (eng.start() if serving else eng.connect())
    try:
        yield eng
    finally:
        pools = ("meta", "data", "chunks", "chunks.warm", "chunks.warm.ec", "chunks.cold",
                 "chunks.glacier")
        for pool in () if keep_pools else pools:
            with contextlib.suppress(Exception):
                await backend.delete_pool(f"{prefix}.{pool}")
        await (eng.stop() if serving else eng.close())


@pytest.fixture
async def engine(backend_kind, tmp_path, clock):
    async with engine_over(
        backend_kind, tmp_path, clock, gc_grace_seconds=3600.0, release_inline_bytes=1 << 40
    ) as eng:
        yield eng
