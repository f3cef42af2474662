"""RestoreObject: bring an archived version (GLACIER, DEEP_ARCHIVE on a cold archive
tier) back for a number of days, as S3 does.

The restore itself is the engine's (``AuthorizedBucket.restore``): a copy of the
payload in the hot tier, read by GETs until the expiry date HEAD reports in
``x-amz-restore``. The first restore answers 202 Accepted, one of a version
already restored 200 OK (its expiry moves out if the new one is later). Only
the restore of whole objects exists here: ``Type=SELECT`` is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from engine import Operation
from s3api import xml
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket
from s3api.headers import version_headers, version_id
from s3api.responses import empty

MAX_RESTORE_BODY = 64 * 1024
RETRIEVAL_TIERS = ("Standard", "Bulk", "Expedited")
MAX_DAYS = 2**31 - 1


@dataclass(frozen=True, slots=True)
class RestoreRequest:
    days: int
    tier: str = "Standard"  # how fast AWS would fetch it; every restore here is immediate


def parse_restore_request(body: bytes) -> RestoreRequest:
    """The RestoreRequest document (pure)."""
    root = xml.parse(body)
    if xml.local_name(root.tag) != "RestoreRequest":
        raise S3Error(S3ErrorCode.MalformedXML)
    if xml.child_text(root, "Type") is not None or xml.children(root, "SelectParameters"):
        raise S3Error(S3ErrorCode.NotImplemented, "Restore of type SELECT is not implemented")
    days_text = xml.child_text(root, "Days")
    if days_text is None:
        raise S3Error(S3ErrorCode.MalformedXML, "Days is required to restore an archived object")
    try:
        days = int(days_text)
    except ValueError:
        raise S3Error(S3ErrorCode.MalformedXML, "Days must be a whole number") from None
    if not 1 <= days <= MAX_DAYS:
        raise S3Error(S3ErrorCode.InvalidArgument, "Days must be at least 1",
                      ArgumentName="Days", ArgumentValue=days_text)
    tier = "Standard"
    for params in xml.children(root, "GlacierJobParameters"):
        tier = xml.child_text(params, "Tier") or tier
    if tier not in RETRIEVAL_TIERS:
        raise S3Error(S3ErrorCode.MalformedXML, f"Tier must be one of {', '.join(RETRIEVAL_TIERS)}")
    return RestoreRequest(days, tier)


async def restore_object(ctx: RequestContext) -> web.StreamResponse:
    assert ctx.endpoint.key is not None
    bucket = await authorized_bucket(ctx)
    request = parse_restore_request(await read_small_body(ctx, MAX_RESTORE_BODY))
    version = version_id(ctx.endpoint.query)
    entry, fresh = await bucket.restore(ctx.endpoint.key, request.days, version)
    return empty(202 if fresh else 200, version_headers(entry))


HANDLERS = {Operation.RESTORE_OBJECT: restore_object}
