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


class NoSuchUpload(EngineError):
    """The multipart upload does not exist (never did, aborted or completed)."""


class InvalidPart(EngineError):
    """A part named in a completion was not uploaded or its ETag does not match."""


class InvalidPartOrder(EngineError):
    """The parts of a completion are not in strictly ascending part-number order."""


class EntityTooSmall(EngineError):
    """A part other than the last is below the minimum part size."""


class InvalidPartNumber(EngineError):
    """A partNumber read beyond the parts the object has."""


class ConcurrentUpdate(EngineError):
    """A read-modify-write of an entry kept losing to concurrent writers."""


class CopySourceTooLarge(EngineError):
    """A copy source above the largest object one CopyObject may copy."""


class AccessDenied(EngineError):
    """The principal may not perform the operation on this bucket or object."""


class NoSuchVersion(EngineError):
    """The key has no version of that id."""


class DeleteMarkerCurrent(NoSuchKey):
    """A read without a version id of a key whose current version is a delete marker."""

    def __init__(self, version_id: str, **details: str) -> None:
        super().__init__("", **details)
        self.version_id = version_id


class DeleteMarkerVersion(EngineError):
    """A read of a version that is a delete marker (S3: MethodNotAllowed)."""

    def __init__(self, version_id: str, mtime: float) -> None:
        super().__init__("The specified method is not allowed against this resource.")
        self.version_id = version_id
        self.mtime = mtime


class NoncurrentVersionChange(EngineError):
    """Tags or ACLs of a version that is not the current one (not changed in place)."""


class InvalidBucketState(EngineError):
    """The request conflicts with the bucket's state (versioning, object lock)."""


class InvalidRequestForBucket(EngineError):
    """The request needs something the bucket lacks (S3: InvalidRequest)."""


class InvalidRestore(EngineError):
    """A restore that cannot be done as asked (a time in the future, an unversioned bucket)."""


class InvalidStorageClass(EngineError):
    """A storage class S3 does not define, or one no tier of the deployment serves."""


class InvalidObjectState(EngineError):
    """The version is archived (a cold archive tier) and not restored, or a restore
    was asked of a version that is not archived."""


class TransitionFailed(EngineError):
    """A tier move's copy did not read back the same: nothing was switched."""


class UnknownTier(EngineError):
    """A tier name the deployment's tiers do not have."""
