"""The storage-backend protocol: a small, RADOS-shaped object store.

Every backend (the embedded ``local`` store, ``rados``) implements exactly this
surface, and one contract suite (``tests/contract``) runs unchanged against
each. Higher layers never see backend-specific types: only these classes, the
``WriteOp`` description of a compound atomic operation and the typed errors of
``storage.errors``.

Model (same as RADOS): a backend holds named pools; a pool holds objects
addressed by a string id. An object has a byte payload, extended attributes
(xattrs) and an omap (ordered key -> bytes map that supports range scans).
Every successful mutation bumps the object's version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ObjectStat:
    size: int
    mtime: float
    version: int


class CmpOp(Enum):
    """Comparison operators for omap guards (same meaning as librados)."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    LT = "lt"


@dataclass(frozen=True, slots=True)
class ErasureCode:
    """An erasure-coded pool's layout: ``k`` data and ``m`` coding chunks per object,
    no two of them in one ``failure_domain`` (a CRUSH bucket type: host, osd, rack).

    Such a pool holds object data and xattrs but no omap, and in RADOS only
    whole-object writes and appends: what stores the bytes of packs (``storage.
    split_pool``), never the references kept beside them."""

    k: int = 2
    m: int = 1
    failure_domain: str = "host"

    @property
    def profile_name(self) -> str:
        return f"atonix-k{self.k}-m{self.m}-{self.failure_domain}"


@dataclass(slots=True)
class WriteOp:
    """A compound write applied atomically to one object.

    Guards are checked first; if any fails nothing is applied. Mutations are
    then applied in the order they were added. Build with the fluent methods:

        op = WriteOp().create(exclusive=True).write_full(b"x").omap_set({"k": b"v"})

    Guard semantics (identical on every backend):
    - ``create(exclusive=True)``: fails with ``ObjectExists`` if the object exists.
    - ``assert_exists()``: fails with ``ObjectNotFound`` if it does not.
    - ``assert_version(v)``: fails with ``GuardFailed`` unless the version is v
      (``ObjectNotFound`` if the object does not exist).
    - ``omap_cmp(key, value, op)``: fails with ``GuardFailed`` unless
      ``stored <op> value`` holds (bytewise); a missing key fails the guard.
    """

    exclusive_create: bool | None = None
    must_exist: bool = False
    expected_version: int | None = None
    omap_guards: list[tuple[str, bytes, CmpOp]] = field(default_factory=list)
    steps: list[tuple] = field(default_factory=list)

    # guards -------------------------------------------------------------
    def create(self, exclusive: bool = True) -> WriteOp:
        self.exclusive_create = exclusive
        return self

    def assert_exists(self) -> WriteOp:
        self.must_exist = True
        return self

    def assert_version(self, version: int) -> WriteOp:
        self.expected_version = version
        return self

    def omap_cmp(self, key: str, value: bytes, op: CmpOp = CmpOp.EQ) -> WriteOp:
        self.omap_guards.append((key, bytes(value), op))
        return self

    # mutations ----------------------------------------------------------
    def write_full(self, data: bytes) -> WriteOp:
        self.steps.append(("write_full", bytes(data)))
        return self

    def write(self, data: bytes, offset: int) -> WriteOp:
        self.steps.append(("write", bytes(data), offset))
        return self

    def append(self, data: bytes) -> WriteOp:
        self.steps.append(("append", bytes(data)))
        return self

    def truncate(self, size: int) -> WriteOp:
        self.steps.append(("truncate", size))
        return self

    def set_xattr(self, name: str, value: bytes) -> WriteOp:
        self.steps.append(("set_xattr", name, bytes(value)))
        return self

    def rm_xattr(self, name: str) -> WriteOp:
        self.steps.append(("rm_xattr", name))
        return self

    def omap_set(self, items: dict[str, bytes]) -> WriteOp:
        self.steps.append(("omap_set", {k: bytes(v) for k, v in items.items()}))
        return self

    def omap_rm(self, keys: list[str] | tuple[str, ...]) -> WriteOp:
        self.steps.append(("omap_rm", list(keys)))
        return self

    def omap_clear(self) -> WriteOp:
        self.steps.append(("omap_clear",))
        return self

    def remove(self) -> WriteOp:
        self.steps.append(("remove",))
        return self


def omap_guard_holds(stored: bytes | None, value: bytes, op: CmpOp) -> bool:
    """Evaluate one omap guard; a missing key never satisfies a guard."""
    if stored is None:
        return False
    if op is CmpOp.EQ:
        return stored == value
    if op is CmpOp.NE:
        return stored != value
    if op is CmpOp.GT:
        return stored > value
    return stored < value


@runtime_checkable
class Pool(Protocol):
    """One pool: objects with data, xattrs and an ordered omap."""

    name: str

    async def read(self, oid: str, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes [offset, offset+length) (to the end when length is None)."""

    async def write(self, oid: str, data: bytes, offset: int = 0) -> None: ...

    async def write_full(self, oid: str, data: bytes) -> None: ...

    async def append(self, oid: str, data: bytes) -> None: ...

    async def truncate(self, oid: str, size: int) -> None: ...

    async def remove(self, oid: str) -> None:
        """Remove the object; ``ObjectNotFound`` if it does not exist."""

    async def stat(self, oid: str) -> ObjectStat: ...

    async def get_xattr(self, oid: str, name: str) -> bytes:
        """``ObjectNotFound`` for a missing object, ``NoSuchAttribute`` for a missing name."""

    async def get_xattrs(self, oid: str) -> dict[str, bytes]: ...

    async def set_xattr(self, oid: str, name: str, value: bytes) -> None: ...

    async def omap_get(self, oid: str, keys: list[str]) -> dict[str, bytes]:
        """Values of the keys that exist (missing keys are left out)."""

    async def omap_list(
        self, oid: str, start_after: str = "", prefix: str = "", max_items: int = 1000
    ) -> list[tuple[str, bytes]]:
        """Up to max_items (key, value) pairs in key order, keys > start_after."""

    async def omap_set(self, oid: str, items: dict[str, bytes]) -> None: ...

    async def omap_rm(self, oid: str, keys: list[str]) -> None: ...

    async def operate(self, oid: str, op: WriteOp) -> None:
        """Apply a compound WriteOp atomically (see WriteOp for guards)."""

    def list_objects(self, prefix: str = "") -> AsyncIterator[str]:
        """All object ids in the pool (unordered), optionally filtered by prefix."""


@runtime_checkable
class Backend(Protocol):
    """A connection to one storage cluster (or one data directory)."""

    kind: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``BackendUnavailable`` if the cluster cannot be reached."""

    async def create_pool(self, name: str, erasure: ErasureCode | None = None) -> None:
        """Create the pool (erasure-coded if ``erasure`` is given and the backend can);
        no error if it already exists, whatever its kind."""

    async def delete_pool(self, name: str) -> None: ...

    async def pool_exists(self, name: str) -> bool: ...

    def pool(self, name: str) -> Pool:
        """Handle on an existing pool (``PoolNotFound`` on first use if missing)."""

    def changes(self, pool: str) -> ChangeFeed:
        """The change feed of every process attached to ``pool`` (not started yet)."""


@runtime_checkable
class ChangeFeed(Protocol):
    """Change notices between all processes using one pool: gateways, workers, the CLI.

    A writer publishes tags (64-bit hashes of what it changed) after its
    change is durable; every process keeps a generation per tag slot. The one
    promise: once ``publish`` returns, no listening process still answers a
    generation it answered before the publish, so anything it cached under
    that generation is invalid. A process that cannot be sure it hears every
    notice (a broken watch, a lost connection) answers ``None`` until it is
    sure again, and its earlier generations never come back.
    Unrelated tags may share a slot (a spurious invalidation, never a stale one).
    """

    async def start(self, listen: bool = True) -> None:
        """Attach; ``listen=False``: publish only (a CLI command that caches nothing)."""

    async def publish(self, tags: Collection[int]) -> None: ...

    def generation(self, tag: int) -> int | None: ...

    async def close(self) -> None: ...
