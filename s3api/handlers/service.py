"""Service-level operations: ListBuckets, with AWS's paging and filters."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from engine import Operation
from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import person
from s3api.responses import xml_response

MAX_BUCKETS = 10000  # the most one page holds, and the page size when none is asked
_TOKEN_TAG = "b:"


def _max_buckets(query) -> int:
    raw = query.get("max-buckets")
    if raw is None:
        return MAX_BUCKETS
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_BUCKETS:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            f"Argument max-buckets must be an integer between 1 and {MAX_BUCKETS}",
            ArgumentName="max-buckets",
            ArgumentValue=raw,
        )
    return int(raw)


def encode_token(last_name: str) -> str:
    return base64.urlsafe_b64encode((_TOKEN_TAG + last_name).encode()).decode()


def decode_token(token: str) -> str:
    """The bucket name a continuation token resumes after (opaque to clients)."""
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith(_TOKEN_TAG):
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
            ArgumentValue=token,
        )
    return raw[len(_TOKEN_TAG) :]


async def list_buckets(ctx: RequestContext) -> web.StreamResponse:
    if ctx.user is None:
        # Anonymous callers own nothing: an empty list, as Ceph RGW answers.
        return xml_response(xml.render("ListAllMyBucketsResult", [("Buckets", [])]))
    user = ctx.user
    q = ctx.endpoint.query
    limit = _max_buckets(q)
    token = q.get("continuation-token")
    prefix = q.get("prefix", "")
    records, more = await ctx.engine.list_buckets(
        ctx.principal,
        prefix=prefix,
        start_after=decode_token(token) if token else "",
        region=q.get("bucket-region") or None,
        limit=limit,
    )
    buckets = [
        (
            "Bucket",
            [
                ("Name", r.name),
                ("CreationDate", xml.timestamp(r.created)),
                ("BucketRegion", r.region),
            ],
        )
        for r in records
    ]
    body = xml.render(
        "ListAllMyBucketsResult",
        [
            ("Owner", await person(ctx, user)),
            ("Buckets", buckets),
            ("ContinuationToken", encode_token(records[-1].name) if more else None),
            ("Prefix", prefix if "prefix" in q else None),
        ],
    )
    return xml_response(body)


HANDLERS = {Operation.LIST_BUCKETS: list_buckets}
