"""Service-level operations: ListBuckets."""

from __future__ import annotations

from aiohttp import web

from s3api import xml
from s3api.context import RequestContext
from s3api.handlers.access import require_user
from s3api.responses import xml_response


async def list_buckets(ctx: RequestContext) -> web.StreamResponse:
    user = require_user(ctx)
    records = await ctx.engine.buckets.list(owner=user)
    body = xml.render(
        "ListAllMyBucketsResult",
        [
            ("Owner", [("ID", user), ("DisplayName", user)]),
            (
                "Buckets",
                [
                    ("Bucket", [("Name", r.name), ("CreationDate", xml.timestamp(r.created))])
                    for r in records
                ],
            ),
        ],
    )
    return xml_response(body)


HANDLERS = {"ListBuckets": list_buckets}
