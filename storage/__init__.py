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
from storage.protocol import Backend, CmpOp, ObjectStat, Pool, WriteOp

__all__ = [
    "Backend",
    "BackendUnavailable",
    "CmpOp",
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
