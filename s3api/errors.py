"""S3 errors: every code the gateway can answer, its HTTP status and message, in one place.

Handlers raise ``S3Error(S3ErrorCode.X)``; engine and storage errors are turned
into S3 errors by ``to_s3_error`` and nowhere else, so the mapping from an
internal failure to what a client sees is reviewable on one screen.
"""

from __future__ import annotations

from enum import Enum

import engine
from storage import errors as storage


class S3ErrorCode(Enum):
    """(HTTP status, default message) for each AWS error code we return."""

    AccessDenied = (403, "Access Denied")
    AccessForbidden = (403, "CORSResponse: This CORS request is not allowed.")
    AuthorizationHeaderMalformed = (400, "The authorization header is malformed.")
    AuthorizationQueryParametersError = (
        400,
        "Query-string authentication version 4 requires the X-Amz-Algorithm, "
        "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
        "and X-Amz-Expires parameters.",
    )
    BadRequest = (400, "Bad Request")
    BadDigest = (400, "The Content-MD5 you specified did not match what we received.")
    BucketAlreadyExists = (
        409,
        "The requested bucket name is not available. The bucket namespace is shared by all "
        "users of the system. Please select a different name and try again.",
    )
    BucketAlreadyOwnedByYou = (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    )
    BucketNotEmpty = (409, "The bucket you tried to delete is not empty")
    EntityTooLarge = (400, "Your proposed upload exceeds the maximum allowed object size.")
    EntityTooSmall = (400, "Your proposed upload is smaller than the minimum allowed object size.")
    IncompleteBody = (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )
    ConditionalRequestConflict = (
        409,
        "A conflicting conditional operation is currently in progress against this resource. "
        "Please try again.",
    )
    InternalError = (500, "We encountered an internal error. Please try again.")
    InvalidAccessKeyId = (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    )
    InvalidArgument = (400, "Invalid Argument")
    InvalidPolicyDocument = (
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
    )
    InvalidBucketName = (400, "The specified bucket is not valid.")
    InvalidChunkSizeError = (
        400,
        "Only the last chunk is allowed to have a size less than 8192 bytes",
    )
    InvalidDigest = (400, "The Content-MD5 you specified is not valid.")
    InvalidLocationConstraint = (400, "The specified location-constraint is not valid.")
    InvalidPart = (
        400,
        "One or more of the specified parts could not be found.  The part may not have been "
        "uploaded, or the specified entity tag may not match the part's entity tag.",
    )
    InvalidPartNumber = (416, "The requested partnumber is not satisfiable")
    InvalidPartOrder = (
        400,
        "The list of parts was not in ascending order. Parts must be ordered by part number.",
    )
    InvalidRange = (416, "The requested range is not satisfiable")
    InvalidTag = (400, "The tag provided was not a valid tag.")
    InvalidRequest = (400, "Invalid Request")
    InvalidBucketState = (409, "The request is not valid with the current state of the bucket.")
    InvalidObjectState = (403, "The operation is not valid for the object's storage class")
    InvalidStorageClass = (400, "The storage class you specified is not valid")
    InvalidURI = (400, "Couldn't parse the specified URI.")
    KeyTooLongError = (400, "Your key is too long")
    MalformedTrailerError = (
        400,
        "The request contained trailing data that was not well-formed or did not "
        "conform to our published schema.",
    )
    MalformedACLError = (
        400,
        "The XML you provided was not well-formed or did not validate against our "
        "published schema",
    )
    MalformedPOSTRequest = (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
    )
    MalformedXML = (
        400,
        "The XML you provided was not well-formed or did not validate against our "
        "published schema.",
    )
    MaxPostPreDataLengthExceeded = (
        400,
        "Your POST request fields preceeding the upload file was too large.",
    )
    MethodNotAllowed = (405, "The specified method is not allowed against this resource.")
    MissingRequestBodyError = (400, "Request Body is empty.")
    MissingContentLength = (411, "You must provide the Content-Length HTTP header.")
    MissingSecurityHeader = (400, "Your request is missing a required header.")
    NoSuchBucket = (404, "The specified bucket does not exist")
    NoSuchCORSConfiguration = (404, "The CORS configuration does not exist")
    NoSuchKey = (404, "The specified key does not exist.")
    NoSuchTagSet = (404, "The TagSet does not exist")
    NoSuchBucketPolicy = (404, "The bucket policy does not exist")
    NoSuchLifecycleConfiguration = (404, "The lifecycle configuration does not exist")
    NoSuchWebsiteConfiguration = (404, "The specified bucket does not have a website configuration")
    ServerSideEncryptionConfigurationNotFoundError = (
        404, "The server side encryption configuration was not found",
    )
    ReplicationConfigurationNotFoundError = (
        404, "The replication configuration was not found",
    )
    NoSuchObjectLockConfiguration = (
        404, "The specified object does not have a ObjectLock configuration",
    )
    ObjectLockConfigurationNotFoundError = (
        404, "Object Lock configuration does not exist for this bucket",
    )
    OwnershipControlsNotFoundError = (404, "The bucket ownership controls were not found")
    NoSuchPublicAccessBlockConfiguration = (
        404, "The public access block configuration was not found",
    )
    NoSuchUpload = (404, "The specified upload does not exist.")
    NoSuchVersion = (
        404,
        "The specified version does not exist.",
    )
    NotImplemented = (501, "A header you provided implies functionality that is not implemented.")
    PreconditionFailed = (412, "At least one of the pre-conditions you specified did not hold")
    RequestTimeTooSkewed = (
        403,
        "The difference between the request time and the server's time is too large.",
    )
    ServiceUnavailable = (503, "Please reduce your request rate.")
    SignatureDoesNotMatch = (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    )
    UnexpectedContent = (400, "This request does not support content")
    UnresolvableGrantByEmailAddress = (
        400, "The e-mail address you provided does not match any account on record.",
    )
    XAmzContentSHA256Mismatch = (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def default_message(self) -> str:
        return self.value[1]


class S3Error(Exception):
    """An error answered to the client as S3 XML."""

    def __init__(
        self,
        code: S3ErrorCode,
        message: str | None = None,
        *,
        resource: str | None = None,
        **details: str,
    ) -> None:
        super().__init__(message or code.default_message)
        self.code = code
        self.message = message or code.default_message
        self.resource = resource
        # Extra child elements AWS adds for some codes (BucketName, Key, ...).
        self.details = details

    @property
    def status(self) -> int:
        return self.code.status


def to_s3_error(exc: Exception) -> S3Error:
    """Map an engine or storage error to the S3 error a client sees."""
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, engine.AccessDenied):
        return S3Error(S3ErrorCode.AccessDenied)  # why is the engine's to log, not to tell
    mapped = _ENGINE_TO_S3.get(type(exc))
    if mapped is not None:
        return S3Error(mapped, str(exc) or None, **getattr(exc, "details", {}))
    if isinstance(exc, storage.BackendUnavailable):
        return S3Error(S3ErrorCode.ServiceUnavailable, "The storage backend is unavailable.")
    return S3Error(S3ErrorCode.InternalError)


_ENGINE_TO_S3: dict[type[Exception], S3ErrorCode] = {
    engine.NoSuchBucket: S3ErrorCode.NoSuchBucket,
    engine.NoSuchKey: S3ErrorCode.NoSuchKey,
    engine.BucketAlreadyExists: S3ErrorCode.BucketAlreadyExists,
    engine.BucketAlreadyOwnedByYou: S3ErrorCode.BucketAlreadyOwnedByYou,
    engine.BucketNotEmpty: S3ErrorCode.BucketNotEmpty,
    engine.InvalidBucketName: S3ErrorCode.InvalidBucketName,
    engine.KeyTooLong: S3ErrorCode.KeyTooLongError,
    engine.InvalidKey: S3ErrorCode.InvalidArgument,
    engine.EntityTooLarge: S3ErrorCode.EntityTooLarge,
    engine.IncompleteBody: S3ErrorCode.IncompleteBody,
    engine.BadDigest: S3ErrorCode.BadDigest,
    engine.InvalidRange: S3ErrorCode.InvalidRange,
    engine.PreconditionFailed: S3ErrorCode.PreconditionFailed,
    engine.NoSuchUpload: S3ErrorCode.NoSuchUpload,
    engine.InvalidPart: S3ErrorCode.InvalidPart,
    engine.InvalidPartOrder: S3ErrorCode.InvalidPartOrder,
    engine.InvalidPartNumber: S3ErrorCode.InvalidPartNumber,
    engine.EntityTooSmall: S3ErrorCode.EntityTooSmall,
    engine.ConcurrentUpdate: S3ErrorCode.ConditionalRequestConflict,
    engine.CopySourceTooLarge: S3ErrorCode.InvalidRequest,
    engine.AccessDenied: S3ErrorCode.AccessDenied,
    engine.NoSuchVersion: S3ErrorCode.NoSuchVersion,
    engine.DeleteMarkerCurrent: S3ErrorCode.NoSuchKey,
    engine.DeleteMarkerVersion: S3ErrorCode.MethodNotAllowed,
    engine.NoncurrentVersionChange: S3ErrorCode.NotImplemented,
    engine.ObjectLocked: S3ErrorCode.AccessDenied,
    engine.InvalidRetention: S3ErrorCode.InvalidArgument,
    engine.ObjectLockNotEnabled: S3ErrorCode.InvalidRequest,
    engine.InvalidRequestForBucket: S3ErrorCode.InvalidRequest,
    engine.InvalidBucketState: S3ErrorCode.InvalidBucketState,
    engine.PassiveCopy: S3ErrorCode.InvalidBucketState,
    engine.ReplicaFenced: S3ErrorCode.InvalidBucketState,
    engine.BadFrames: S3ErrorCode.InvalidRequest,
    engine.TooManyVersions: S3ErrorCode.InvalidRequest,
    engine.InvalidRestore: S3ErrorCode.InvalidArgument,
    engine.InvalidStorageClass: S3ErrorCode.InvalidStorageClass,
    engine.InvalidObjectState: S3ErrorCode.InvalidObjectState,
    engine.UnknownTier: S3ErrorCode.InvalidArgument,
}
