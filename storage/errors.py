"""Typed errors of the storage layer; every backend raises only these."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every storage-layer error."""


class ObjectNotFound(StorageError):
    pass


class ObjectExists(StorageError):
    """An exclusive create found the object already there."""


class GuardFailed(StorageError):
    """A version or omap guard of a compound operation did not hold."""


class NoSuchAttribute(StorageError):
    pass


class PoolNotFound(StorageError):
    pass


class BackendUnavailable(StorageError):
    """The cluster (or data directory) cannot be reached or used."""
