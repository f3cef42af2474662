"""Fixtures for the engine's own tests: an ``Engine`` over a fresh namespace of each backend.

Tests here call the engine's exported interface (``engine.Engine``) the way a
front end or a background service does: with a principal, on both backends.
"""

from __future__ import annotations

import contextlib
import uuid

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


@pytest.fixture
async def engine(backend_kind, tmp_path, clock):
    backend = make_backend(backend_kind, tmp_path)
    prefix = "t" + uuid.uuid4().hex[:10]
    eng = Engine.over(
        backend,
        EngineSettings(pool_prefix=prefix, gc_grace_seconds=3600.0, release_inline_bytes=1 << 40),
        clock=clock,
    )
    await eng.connect()
    yield eng
    for pool in ("meta", "data", "chunks"):
        with contextlib.suppress(Exception):
            await backend.delete_pool(f"{prefix}.{pool}")
    await eng.close()
