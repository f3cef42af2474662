"""Bucket configurations this gateway cannot store yet: reads say "none configured".

Clients probe these (s3cmd info asks for the policy, SDKs for encryption and
lifecycle). Since the matching Put operations answer NotImplemented, no such
configuration can exist, and the truthful answer is AWS's own "not found"
error or empty document, not a 501 that makes tools give up.
"""

from __future__ import annotations

from aiohttp import web

from engine import Operation
from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket
from s3api.responses import empty, xml_response

# Get<name> -> the error AWS answers when the bucket has no such configuration.
_MISSING: dict[Operation, S3ErrorCode] = {
    Operation.GET_BUCKET_POLICY: S3ErrorCode.NoSuchBucketPolicy,
    Operation.GET_BUCKET_POLICY_STATUS: S3ErrorCode.NoSuchBucketPolicy,
    Operation.GET_BUCKET_WEBSITE: S3ErrorCode.NoSuchWebsiteConfiguration,
    Operation.GET_BUCKET_ENCRYPTION: S3ErrorCode.ServerSideEncryptionConfigurationNotFoundError,
    Operation.GET_BUCKET_OWNERSHIP_CONTROLS: S3ErrorCode.OwnershipControlsNotFoundError,
    Operation.GET_BUCKET_PUBLIC_ACCESS_BLOCK: S3ErrorCode.NoSuchPublicAccessBlockConfiguration,
}

# Get<name> -> (root element, children) of the empty document AWS returns.
_EMPTY: dict[Operation, tuple[str, list]] = {
    Operation.GET_BUCKET_NOTIFICATION: ("NotificationConfiguration", []),
    Operation.GET_BUCKET_LOGGING: ("BucketLoggingStatus", []),
    Operation.GET_BUCKET_ACCELERATE: ("AccelerateConfiguration", []),
    Operation.GET_BUCKET_REQUEST_PAYMENT: (
        "RequestPaymentConfiguration", [("Payer", "BucketOwner")]
    ),
}

# Deleting a configuration that cannot exist succeeds, as on AWS.
_DELETES = (
    Operation.DELETE_BUCKET_POLICY,
    Operation.DELETE_BUCKET_WEBSITE,
    Operation.DELETE_BUCKET_ENCRYPTION,
    Operation.DELETE_BUCKET_OWNERSHIP_CONTROLS,
    Operation.DELETE_BUCKET_PUBLIC_ACCESS_BLOCK,
)


def _missing(code: S3ErrorCode):
    async def handler(ctx: RequestContext) -> web.StreamResponse:
        bucket = await authorized_bucket(ctx)
        raise S3Error(code, BucketName=bucket.name)

    return handler


def _empty_document(root: str, children: list):
    async def handler(ctx: RequestContext) -> web.StreamResponse:
        await authorized_bucket(ctx)
        return xml_response(xml.render(root, children))

    return handler


async def delete_nothing(ctx: RequestContext) -> web.StreamResponse:
    await authorized_bucket(ctx)
    return empty(204)


HANDLERS = {
    **{name: _missing(code) for name, code in _MISSING.items()},
    **{name: _empty_document(root, kids) for name, (root, kids) in _EMPTY.items()},
    **dict.fromkeys(_DELETES, delete_nothing),
}
