"""Errors of the object engine (protocol-neutral: front ends map them to their codes)."""

from __future__ import annotations


class EngineError(Exception):
    """Base of object-engine errors. ``details`` names the resource for the client."""

    def __init__(self, message: str = "", **details: str) -> None:
        super().__init__(message)
        self.details = details


class NoSuchBucket(EngineError):
    pass


class NoSuchKey(EngineError):
    pass


class BucketAlreadyExists(EngineError):
    pass


class BucketAlreadyOwnedByYou(EngineError):
    pass


class BucketNotEmpty(EngineError):
    pass


class InvalidBucketName(EngineError):
    pass


class KeyTooLong(EngineError):
    pass


class EntityTooLarge(EngineError):
    pass


class IncompleteBody(EngineError):
    """The body ended before the announced length."""


class BadDigest(EngineError):
    """The body did not match the digest the client announced."""


class InvalidRange(EngineError):
    pass


class PreconditionFailed(EngineError):
    pass


class NoSuchUser(EngineError):
    pass


class UserExists(EngineError):
    pass


class AccessKeyExists(EngineError):
    pass


class InvalidKey(EngineError):
    """An object key that can never be stored (empty, or holding NUL)."""
