"""The object engine: buckets, objects, uploads and identities over a storage backend.

This module is the engine's exported interface, and the only part of it that
front ends (``s3api``, ``nfs``), services (``tiering``, ``replication``) and
the running process (``gateway``) may import; ``.importlinter`` enforces
that. Work starts at ``Engine``: every call that reads or writes takes a
``Principal`` and is decided by the engine's one access layer.

The submodules are the engine's internals: services over the backend
(``buckets``, ``objects``, ``multipart``, ``index*``, ``payload``,
``chunked``, ``release_queue``), the access decision (``access``),
background coordination (``lease``, ``clock``) and upkeep (``maintenance``).
"""

from engine.access.acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    BUCKET_ACLS,
    FULL_CONTROL,
    OBJECT_ACLS,
    PRIVATE,
    READ,
    READ_ACP,
    WRITE,
    WRITE_ACP,
    Grants,
    canned_for_grants,
    decode_grants,
    effective_acl,
    encode_grants,
)
from engine.access.decision import (
    BUCKET_ACL_ITEM,
    CORS_ITEM,
    OBJECT_ACL_HEADER,
    AccessPolicy,
    AccessRequest,
    Verdict,
    object_acl,
    with_object_acl,
)
from engine.access.principal import Principal, PrincipalKind
from engine.assembly import EngineSettings
from engine.authorized_bucket import AuthorizedBucket
from engine.chunked import DataPathObserver
from engine.clock import Clock, ManualClock, SystemClock
from engine.conditions import ANY_ETAG, DeleteCondition, WriteCondition, bare_etag, etag_matches
from engine.copy import CopyPlan
from engine.errors import (
    AccessDenied,
    AccessKeyExists,
    BadDigest,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    ConcurrentUpdate,
    CopySourceTooLarge,
    DeleteMarkerCurrent,
    DeleteMarkerVersion,
    EngineError,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InvalidBucketName,
    InvalidKey,
    InvalidPart,
    InvalidPartNumber,
    InvalidPartOrder,
    InvalidRange,
    KeyTooLong,
    NoncurrentVersionChange,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NoSuchUser,
    NoSuchVersion,
    PreconditionFailed,
    UserExists,
)
from engine.facade import Engine
from engine.iam import ADMIN_UID, AccessKey, User
from engine.index import ListPage
from engine.lease import Lease, LeaseLost
from engine.maintenance import FsckResult, GcResult, SpaceStats
from engine.multipart import NewUpload, ObjectChecksums, PartBody, PartOpener, PartsPage
from engine.objects import ObjectReader, PutRequest
from engine.operations import Operation, Permission
from engine.records import BucketDedupe, BucketRecord, ObjectEntry, Segment
from engine.upload_records import (
    MAX_PART_NUMBER,
    MAX_PART_SIZE,
    PartRecord,
    UploadInfo,
    UploadMeta,
    normalize_etag,
)
from engine.upload_store import UploadSnapshot
from engine.uploads_registry import UploadsPage, UploadsQuery
from engine.version_listing import VersionsPage
from engine.versioning import ENABLED, SUSPENDED, VERSIONING_CONFIG
from engine.versions import NULL, InvalidVersionId, check_version_id

__all__ = [
    "ADMIN_UID",
    "ALL_USERS",
    "ANY_ETAG",
    "AUTHENTICATED_USERS",
    "BUCKET_ACLS",
    "BUCKET_ACL_ITEM",
    "CORS_ITEM",
    "ENABLED",
    "FULL_CONTROL",
    "MAX_PART_NUMBER",
    "MAX_PART_SIZE",
    "NULL",
    "OBJECT_ACLS",
    "OBJECT_ACL_HEADER",
    "PRIVATE",
    "READ",
    "READ_ACP",
    "SUSPENDED",
    "VERSIONING_CONFIG",
    "WRITE",
    "WRITE_ACP",
    "AccessDenied",
    "AccessKey",
    "AccessKeyExists",
    "AccessPolicy",
    "AccessRequest",
    "AuthorizedBucket",
    "BadDigest",
    "BucketAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "BucketDedupe",
    "BucketNotEmpty",
    "BucketRecord",
    "Clock",
    "ConcurrentUpdate",
    "CopyPlan",
    "CopySourceTooLarge",
    "DataPathObserver",
    "DeleteCondition",
    "DeleteMarkerCurrent",
    "DeleteMarkerVersion",
    "Engine",
    "EngineError",
    "EngineSettings",
    "EntityTooLarge",
    "EntityTooSmall",
    "FsckResult",
    "GcResult",
    "Grants",
    "IncompleteBody",
    "InvalidBucketName",
    "InvalidKey",
    "InvalidPart",
    "InvalidPartNumber",
    "InvalidPartOrder",
    "InvalidRange",
    "InvalidVersionId",
    "KeyTooLong",
    "Lease",
    "LeaseLost",
    "ListPage",
    "ManualClock",
    "NewUpload",
    "NoSuchBucket",
    "NoSuchKey",
    "NoSuchUpload",
    "NoSuchUser",
    "NoSuchVersion",
    "NoncurrentVersionChange",
    "ObjectChecksums",
    "ObjectEntry",
    "ObjectReader",
    "Operation",
    "PartBody",
    "PartOpener",
    "PartRecord",
    "PartsPage",
    "Permission",
    "PreconditionFailed",
    "Principal",
    "PrincipalKind",
    "PutRequest",
    "Segment",
    "SpaceStats",
    "SystemClock",
    "UploadInfo",
    "UploadMeta",
    "UploadSnapshot",
    "UploadsPage",
    "UploadsQuery",
    "User",
    "UserExists",
    "Verdict",
    "VersionsPage",
    "WriteCondition",
    "bare_etag",
    "canned_for_grants",
    "check_version_id",
    "decode_grants",
    "effective_acl",
    "encode_grants",
    "etag_matches",
    "normalize_etag",
    "object_acl",
    "with_object_acl",
]
