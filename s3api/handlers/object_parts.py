"""GET/HEAD ``?partNumber=N``: read one part of an object, as a ranged request (AWS rules).

A multipart object's part N is its N-th segment; any other object has one
part, the whole object. The answer is 206 with Content-Range, plus
``x-amz-mp-parts-count`` when the object was uploaded in parts (AWS sends
that header only when a part was asked for).
"""

from __future__ import annotations

from engine import AuthorizedBucket, ObjectReader
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.multipart_xml import part_number


async def open_part(
    ctx: RequestContext, bucket: AuthorizedBucket, version: str | None = None
) -> tuple[ObjectReader, tuple[int, int] | None]:
    """(reader of the part, its inclusive byte range; None for an empty part)."""
    assert ctx.endpoint.key is not None
    number = part_number(ctx.endpoint.query.get("partNumber"))
    if "Range" in ctx.request.headers:
        raise S3Error(
            S3ErrorCode.InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        )
    reader = await bucket.open_part(ctx.endpoint.key, number, version)
    return reader, ((reader.start, reader.end - 1) if reader.length else None)


def part_headers(ctx: RequestContext, reader: ObjectReader) -> dict[str, str]:
    """Content-Range and x-amz-mp-parts-count of a partNumber read ({} otherwise)."""
    if "partNumber" not in ctx.endpoint.query:
        return {}
    out: dict[str, str] = {}
    if reader.length:
        out["Content-Range"] = f"bytes {reader.start}-{reader.end - 1}/{reader.entry.size}"
    if reader.entry.parts:
        out["x-amz-mp-parts-count"] = str(reader.entry.parts)
    return out
