"""Bucket configurations this gateway cannot store yet: reads say "none configured".

Clients probe these (s3cmd info asks for the policy, SDKs for encryption and
lifecycle). Since the matching Put operations answer NotImplemented, no such
configuration can exist, and the truthful answer is AWS's own "not found"
error or empty document, not a 501 that makes tools give up.
"""

from __future__ import annotations

from aiohttp import web

from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import owned_bucket
from s3api.responses import empty, xml_response

# Get<name> -> the error AWS answers when the bucket has no such configuration.
_MISSING: dict[str, S3ErrorCode] = {
    "GetBucketPolicy": S3ErrorCode.NoSuchBucketPolicy,
    "GetBucketPolicyStatus": S3ErrorCode.NoSuchBucketPolicy,
    "GetBucketLifecycle": S3ErrorCode.NoSuchLifecycleConfiguration,
    "GetBucketWebsite": S3ErrorCode.NoSuchWebsiteConfiguration,
    "GetBucketEncryption": S3ErrorCode.ServerSideEncryptionConfigurationNotFoundError,
    "GetBucketReplication": S3ErrorCode.ReplicationConfigurationNotFoundError,
    "GetBucketObjectLock": S3ErrorCode.ObjectLockConfigurationNotFoundError,
    "GetBucketOwnershipControls": S3ErrorCode.OwnershipControlsNotFoundError,
    "GetBucketPublicAccessBlock": S3ErrorCode.NoSuchPublicAccessBlockConfiguration,
}

# Get<name> -> (root element, children) of the empty document AWS returns.
_EMPTY: dict[str, tuple[str, list]] = {
    "GetBucketNotification": ("NotificationConfiguration", []),
    "GetBucketLogging": ("BucketLoggingStatus", []),
    "GetBucketAccelerate": ("AccelerateConfiguration", []),
    "GetBucketRequestPayment": ("RequestPaymentConfiguration", [("Payer", "BucketOwner")]),
}

# Deleting a configuration that cannot exist succeeds, as on AWS.
_DELETES = ("DeleteBucketPolicy", "DeleteBucketLifecycle", "DeleteBucketWebsite",
            "DeleteBucketEncryption", "DeleteBucketReplication",
            "DeleteBucketOwnershipControls", "DeleteBucketPublicAccessBlock")


def _missing(code: S3ErrorCode):
    async def handler(ctx: RequestContext) -> web.StreamResponse:
        record = await owned_bucket(ctx)
        raise S3Error(code, BucketName=record.name)

    return handler


def _empty_document(root: str, children: list):
    async def handler(ctx: RequestContext) -> web.StreamResponse:
        await owned_bucket(ctx)
        return xml_response(xml.render(root, children))

    return handler


async def delete_nothing(ctx: RequestContext) -> web.StreamResponse:
    await owned_bucket(ctx)
    return empty(204)


HANDLERS = {
    **{name: _missing(code) for name, code in _MISSING.items()},
    **{name: _empty_document(root, kids) for name, (root, kids) in _EMPTY.items()},
    **dict.fromkeys(_DELETES, delete_nothing),
}
