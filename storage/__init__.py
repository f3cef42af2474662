"""Storage backends: one RADOS-shaped protocol, two implementations (local, rados)."""

from storage.errors import (
    BackendUnavailable,
    GuardFailed,
    NoSuchAttribute,
    ObjectExists,
    ObjectNotFound,
    PoolNotFound,
    StorageError,
)
from storage.protocol import (
    Backend,
    ChangeFeed,
    CmpOp,
    ErasureCode,
    ObjectStat,
    Pool,
    WriteOp,
)

__all__ = [
    "Backend",
    "BackendUnavailable",
    "ChangeFeed",
    "CmpOp",
    "ErasureCode",
    "GuardFailed",
    "NoSuchAttribute",
    "ObjectExists",
    "ObjectNotFound",
    "ObjectStat",
    "Pool",
    "PoolNotFound",
    "StorageError",
    "WriteOp",
]
