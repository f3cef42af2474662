"""Every operation the gateway knows, as one enumeration, and the permission each needs.

Routing names a request's operation with a member of ``Operation``; handler
tables are keyed by members and the access decision reads ``needs`` from
them, so a misspelled operation is an ``AttributeError`` at import, never a
501 at run time. The values are the names S3 clients and metrics see (S3's
own operation names, with sub-resources spelled as the router composes them:
``GetBucketAccelerate`` for ``GET /bucket?accelerate``).

``Permission`` says what a caller other than the bucket's owner must be
granted to perform an operation (as AWS maps ACL permissions to actions);
everything not listed stays with the owner.
"""

from __future__ import annotations

from enum import Enum, StrEnum


class Operation(StrEnum):
    UNKNOWN = "Unknown"  # a request that failed before it could be routed
    # The service.
    LIST_BUCKETS = "ListBuckets"
    # Buckets.
    CREATE_BUCKET = "CreateBucket"
    HEAD_BUCKET = "HeadBucket"
    DELETE_BUCKET = "DeleteBucket"
    GET_BUCKET_LOCATION = "GetBucketLocation"
    LIST_OBJECTS = "ListObjects"
    LIST_OBJECTS_V2 = "ListObjectsV2"
    LIST_OBJECT_VERSIONS = "ListObjectVersions"
    LIST_MULTIPART_UPLOADS = "ListMultipartUploads"
    OPTIONS_BUCKET = "OptionsBucket"
    # Bucket configurations.
    GET_BUCKET_ACL = "GetBucketAcl"
    PUT_BUCKET_ACL = "PutBucketAcl"
    GET_BUCKET_CORS = "GetBucketCors"
    PUT_BUCKET_CORS = "PutBucketCors"
    DELETE_BUCKET_CORS = "DeleteBucketCors"
    GET_BUCKET_TAGGING = "GetBucketTagging"
    PUT_BUCKET_TAGGING = "PutBucketTagging"
    DELETE_BUCKET_TAGGING = "DeleteBucketTagging"
    GET_BUCKET_VERSIONING = "GetBucketVersioning"
    PUT_BUCKET_VERSIONING = "PutBucketVersioning"
    GET_BUCKET_ACCELERATE = "GetBucketAccelerate"
    PUT_BUCKET_ACCELERATE = "PutBucketAccelerate"
    GET_BUCKET_ANALYTICS = "GetBucketAnalytics"
    PUT_BUCKET_ANALYTICS = "PutBucketAnalytics"
    DELETE_BUCKET_ANALYTICS = "DeleteBucketAnalytics"
    GET_BUCKET_ENCRYPTION = "GetBucketEncryption"
    PUT_BUCKET_ENCRYPTION = "PutBucketEncryption"
    DELETE_BUCKET_ENCRYPTION = "DeleteBucketEncryption"
    GET_BUCKET_INTELLIGENT_TIERING = "GetBucketIntelligentTiering"
    PUT_BUCKET_INTELLIGENT_TIERING = "PutBucketIntelligentTiering"
    DELETE_BUCKET_INTELLIGENT_TIERING = "DeleteBucketIntelligentTiering"
    GET_BUCKET_INVENTORY = "GetBucketInventory"
    PUT_BUCKET_INVENTORY = "PutBucketInventory"
    DELETE_BUCKET_INVENTORY = "DeleteBucketInventory"
    GET_BUCKET_LIFECYCLE = "GetBucketLifecycle"
    PUT_BUCKET_LIFECYCLE = "PutBucketLifecycle"
    DELETE_BUCKET_LIFECYCLE = "DeleteBucketLifecycle"
    GET_BUCKET_LOGGING = "GetBucketLogging"
    PUT_BUCKET_LOGGING = "PutBucketLogging"
    GET_BUCKET_METRICS = "GetBucketMetrics"
    PUT_BUCKET_METRICS = "PutBucketMetrics"
    DELETE_BUCKET_METRICS = "DeleteBucketMetrics"
    GET_BUCKET_NOTIFICATION = "GetBucketNotification"
    PUT_BUCKET_NOTIFICATION = "PutBucketNotification"
    GET_BUCKET_OBJECT_LOCK = "GetBucketObjectLock"
    PUT_BUCKET_OBJECT_LOCK = "PutBucketObjectLock"
    GET_BUCKET_OWNERSHIP_CONTROLS = "GetBucketOwnershipControls"
    PUT_BUCKET_OWNERSHIP_CONTROLS = "PutBucketOwnershipControls"
    DELETE_BUCKET_OWNERSHIP_CONTROLS = "DeleteBucketOwnershipControls"
    GET_BUCKET_POLICY = "GetBucketPolicy"
    PUT_BUCKET_POLICY = "PutBucketPolicy"
    DELETE_BUCKET_POLICY = "DeleteBucketPolicy"
    GET_BUCKET_POLICY_STATUS = "GetBucketPolicyStatus"
    GET_BUCKET_PUBLIC_ACCESS_BLOCK = "GetBucketPublicAccessBlock"
    PUT_BUCKET_PUBLIC_ACCESS_BLOCK = "PutBucketPublicAccessBlock"
    DELETE_BUCKET_PUBLIC_ACCESS_BLOCK = "DeleteBucketPublicAccessBlock"
    GET_BUCKET_REPLICATION = "GetBucketReplication"
    PUT_BUCKET_REPLICATION = "PutBucketReplication"
    DELETE_BUCKET_REPLICATION = "DeleteBucketReplication"
    GET_BUCKET_REQUEST_PAYMENT = "GetBucketRequestPayment"
    PUT_BUCKET_REQUEST_PAYMENT = "PutBucketRequestPayment"
    GET_BUCKET_WEBSITE = "GetBucketWebsite"
    PUT_BUCKET_WEBSITE = "PutBucketWebsite"
    DELETE_BUCKET_WEBSITE = "DeleteBucketWebsite"
    # Objects.
    PUT_OBJECT = "PutObject"
    POST_OBJECT = "PostObject"
    COPY_OBJECT = "CopyObject"
    GET_OBJECT = "GetObject"
    HEAD_OBJECT = "HeadObject"
    DELETE_OBJECT = "DeleteObject"
    DELETE_OBJECTS = "DeleteObjects"
    GET_OBJECT_ATTRIBUTES = "GetObjectAttributes"
    GET_OBJECT_ACL = "GetObjectAcl"
    PUT_OBJECT_ACL = "PutObjectAcl"
    GET_OBJECT_TAGGING = "GetObjectTagging"
    PUT_OBJECT_TAGGING = "PutObjectTagging"
    DELETE_OBJECT_TAGGING = "DeleteObjectTagging"
    GET_OBJECT_LEGAL_HOLD = "GetObjectLegalHold"
    PUT_OBJECT_LEGAL_HOLD = "PutObjectLegalHold"
    GET_OBJECT_RETENTION = "GetObjectRetention"
    PUT_OBJECT_RETENTION = "PutObjectRetention"
    GET_OBJECT_TORRENT = "GetObjectTorrent"
    RESTORE_OBJECT = "RestoreObject"
    # Not an S3 request: the tiering service moving an object's data between tiers.
    TRANSITION_OBJECT = "TransitionObject"
    SELECT_OBJECT_CONTENT = "SelectObjectContent"
    OPTIONS_OBJECT = "OptionsObject"
    # Multipart uploads.
    CREATE_MULTIPART_UPLOAD = "CreateMultipartUpload"
    UPLOAD_PART = "UploadPart"
    UPLOAD_PART_COPY = "UploadPartCopy"
    COMPLETE_MULTIPART_UPLOAD = "CompleteMultipartUpload"
    ABORT_MULTIPART_UPLOAD = "AbortMultipartUpload"
    LIST_PARTS = "ListParts"
    # Not S3: which chunks of a version another region's shipper is about to send the
    # receiver holds already (engine.chunk_transfer). The owner's only.
    POST_OBJECT_REPLICA_CHUNKS = "PostObjectReplicaChunks"
    # Not S3: digests of key ranges of the bucket's versions, for another region's
    # verify (engine.version_digest). The owner's only.
    POST_BUCKET_REPLICA_DIGEST = "PostBucketReplicaDigest"

    @property
    def needs(self) -> Permission:
        """What a caller who does not own the bucket must be granted."""
        return _NEEDS.get(self, Permission.OWNER)

    @property
    def from_requests(self) -> bool:
        """Whether an S3 request names it (not so: a service's own step)."""
        return self is not Operation.TRANSITION_OBJECT

    @property
    def is_preflight(self) -> bool:
        """A CORS preflight: never signed, answered from the bucket's CORS rules alone."""
        return self in (Operation.OPTIONS_BUCKET, Operation.OPTIONS_OBJECT)


class Permission(Enum):
    OWNER = "owner"  # the bucket's owner only
    BUCKET_READ = "bucket READ"  # listing the bucket
    BUCKET_WRITE = "bucket WRITE"  # creating, replacing and deleting its objects
    OBJECT_READ = "object READ"  # reading one object (its own ACL decides)
    BUCKET_READ_ACP = "bucket READ_ACP"
    BUCKET_WRITE_ACP = "bucket WRITE_ACP"
    OBJECT_READ_ACP = "object READ_ACP"
    OBJECT_WRITE_ACP = "object WRITE_ACP"
    ANYONE = "anyone"  # CORS preflights, which carry no credentials

    @property
    def on_object(self) -> bool:
        """Decided by the ACL of the object itself, once its entry is read."""
        return self in (
            Permission.OBJECT_READ, Permission.OBJECT_READ_ACP, Permission.OBJECT_WRITE_ACP
        )


_NEEDS: dict[Operation, Permission] = {
    **dict.fromkeys(
        (
            Operation.LIST_OBJECTS,
            Operation.LIST_OBJECTS_V2,
            Operation.LIST_OBJECT_VERSIONS,
            Operation.LIST_MULTIPART_UPLOADS,
            Operation.HEAD_BUCKET,
        ),
        Permission.BUCKET_READ,
    ),
    **dict.fromkeys(
        (
            Operation.PUT_OBJECT,
            Operation.COPY_OBJECT,
            Operation.POST_OBJECT,
            Operation.DELETE_OBJECT,
            Operation.DELETE_OBJECTS,
            Operation.CREATE_MULTIPART_UPLOAD,
            Operation.UPLOAD_PART,
            Operation.UPLOAD_PART_COPY,
            Operation.COMPLETE_MULTIPART_UPLOAD,
            Operation.ABORT_MULTIPART_UPLOAD,
            Operation.LIST_PARTS,
        ),
        Permission.BUCKET_WRITE,
    ),
    Operation.GET_OBJECT: Permission.OBJECT_READ,
    Operation.HEAD_OBJECT: Permission.OBJECT_READ,
    Operation.GET_BUCKET_ACL: Permission.BUCKET_READ_ACP,
    Operation.PUT_BUCKET_ACL: Permission.BUCKET_WRITE_ACP,
    Operation.GET_OBJECT_ACL: Permission.OBJECT_READ_ACP,
    Operation.PUT_OBJECT_ACL: Permission.OBJECT_WRITE_ACP,
    Operation.OPTIONS_BUCKET: Permission.ANYONE,
    Operation.OPTIONS_OBJECT: Permission.ANYONE,
}
