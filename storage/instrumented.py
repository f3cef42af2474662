"""A backend wrapper that times every pool operation and reports it to an observer.

Kept outside the backends (like restic's wrappers) so every backend is timed
the same way; the observer is a small protocol so the storage layer never
imports the metrics library.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol

from storage.protocol import Backend, Pool, WriteOp


class OpObserver(Protocol):
    def backend_op(self, op: str, seconds: float, ok: bool) -> None: ...


_TIMED = (
    "read",
    "write",
    "write_full",
    "append",
    "truncate",
    "remove",
    "stat",
    "get_xattr",
    "get_xattrs",
    "set_xattr",
    "omap_get",
    "omap_list",
    "omap_set",
    "omap_rm",
)


class InstrumentedPool:
    def __init__(self, inner: Pool, observer: OpObserver) -> None:
        self._inner = inner
        self._observer = observer
        self.name = inner.name
        for op in _TIMED:
            setattr(self, op, self._timed(op, getattr(inner, op)))

    def _timed(self, op: str, fn):
        observer = self._observer

        async def call(*args, **kwargs):
            started = time.perf_counter()
            ok = False
            try:
                result = await fn(*args, **kwargs)
                ok = True
                return result
            finally:
                observer.backend_op(op, time.perf_counter() - started, ok)

        return call

    async def operate(self, oid: str, op: WriteOp) -> None:
        started = time.perf_counter()
        ok = False
        try:
            await self._inner.operate(oid, op)
            ok = True
        finally:
            self._observer.backend_op("operate", time.perf_counter() - started, ok)

    def list_objects(self, prefix: str = "") -> AsyncIterator[str]:
        return self._inner.list_objects(prefix)


class InstrumentedBackend:
    def __init__(self, inner: Backend, observer: OpObserver) -> None:
        self._inner = inner
        self._observer = observer
        self.kind = inner.kind
        self.connect = inner.connect
        self.close = inner.close
        self.ping = inner.ping
        self.create_pool = inner.create_pool
        self.delete_pool = inner.delete_pool
        self.pool_exists = inner.pool_exists
        self.changes = inner.changes
        self._pools: dict[str, InstrumentedPool] = {}

    def pool(self, name: str) -> Pool:
        if name not in self._pools:
            self._pools[name] = InstrumentedPool(self._inner.pool(name), self._observer)
        return self._pools[name]  # type: ignore[return-value]
