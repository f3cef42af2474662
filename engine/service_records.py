"""Durable records of the deployment's services (backup runs, schedules, checkpoints).

Gateways keep no state of their own, so a service that must remember
something between runs (which backup ran last, what it copied) keeps it
here, in the meta pool, where every gateway and the CLI find it:

- ``svc.<namespace>``: one object whose omap maps a record name to a small
  document (a run's summary), listed in name order;
- ``svc.<namespace>/<name>``: a blob per record for what does not fit an
  omap value (a run's catalogue of every object it holds).

A blob is written before the summary that names it, so a summary never
points at a missing blob; a crash between the two leaves a blob that the
next write of the same name replaces.
"""

from __future__ import annotations

import contextlib
import re

from storage import ObjectNotFound, Pool, WriteOp

_NAMESPACE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_PAGE = 1000


def records_oid(namespace: str) -> str:
    return f"svc.{namespace}"


def blob_oid(namespace: str, name: str) -> str:
    return f"svc.{namespace}/{name}"


class ServiceRecords:
    """Named documents of one service namespace."""

    def __init__(self, meta: Pool, namespace: str) -> None:
        if not _NAMESPACE.match(namespace):
            raise ValueError(f"a namespace is lowercase letters, digits and '-': {namespace!r}")
        self.meta = meta
        self.namespace = namespace
        self._oid = records_oid(namespace)

    async def put(self, name: str, summary: bytes, blob: bytes | None = None) -> None:
        """Store ``summary`` under ``name`` (and its ``blob``, written first)."""
        _check_name(name)
        if blob is not None:
            await self.meta.write_full(blob_oid(self.namespace, name), blob)
        await self.meta.operate(self._oid, WriteOp().omap_set({name: summary}))

    async def get(self, name: str) -> bytes | None:
        _check_name(name)
        try:
            got = await self.meta.omap_get(self._oid, [name])
        except ObjectNotFound:
            return None
        return got.get(name)

    async def blob(self, name: str) -> bytes | None:
        _check_name(name)
        try:
            return await self.meta.read(blob_oid(self.namespace, name))
        except ObjectNotFound:
            return None

    async def list(self, prefix: str = "", after: str = "") -> list[tuple[str, bytes]]:
        """Every (name, summary) under ``prefix`` after ``after``, in name order."""
        out: list[tuple[str, bytes]] = []
        while True:
            try:
                page = await self.meta.omap_list(self._oid, after, prefix, _PAGE)
            except ObjectNotFound:
                return out
            out.extend(page)
            if len(page) < _PAGE:
                return out
            after = page[-1][0]

    async def delete(self, name: str) -> None:
        _check_name(name)
        with contextlib.suppress(ObjectNotFound):
            await self.meta.operate(self._oid, WriteOp().omap_rm([name]))
        with contextlib.suppress(ObjectNotFound):
            await self.meta.remove(blob_oid(self.namespace, name))


def _check_name(name: str) -> None:
    if not name or len(name) > 512 or "\x00" in name:
        raise ValueError(f"a record name is 1-512 characters without NUL: {name!r}")
