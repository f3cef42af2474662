"""Fixtures for the backend contract suite: one fresh pool per test, on each backend."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from storage.factory import open_backend
from tests.conftest import ceph_conf


def make_backend(kind: str, tmp_path):
    if kind == "local":
        return open_backend("local", data_dir=tmp_path / "store")
    return open_backend("rados", ceph_conf=ceph_conf())


@pytest.fixture
async def backend(backend_kind, tmp_path):
    b = make_backend(backend_kind, tmp_path)
    await b.connect()
    created: list[str] = []
    b.test_created_pools = created  # type: ignore[attr-defined]
    yield b
    for name in created:
        with contextlib.suppress(Exception):
            await b.delete_pool(name)
    await b.close()


@pytest.fixture
async def pool(backend):
    name = "contract-" + uuid.uuid4().hex[:12]
    await backend.create_pool(name)
    backend.test_created_pools.append(name)
    return backend.pool(name)
