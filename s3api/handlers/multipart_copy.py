"""UploadPartCopy: a part whose bytes come from an existing object (or a range of it).

The source is read through ``ObjectService.open`` and streamed into the
part's stripes like any upload body, so a copied part never sits in memory.
The parsing and the copy-source conditions are pure functions below.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from engine import MAX_PART_SIZE, ObjectEntry, normalize_etag
from s3api import headers as h
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers import multipart_xml as mx
from s3api.handlers.access import authorized_bucket, source_bucket
from s3api.handlers.multipart_checksums import copy_opener
from s3api.responses import xml_response

_COPY_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: str
    key: str
    version: str | None = None


def parse_copy_source(value: str) -> CopySource:
    """``[/]bucket/key[?versionId=...]``, URL-encoded, as x-amz-copy-source carries it."""
    path, _, query = value.partition("?")
    path = unquote(path)
    if path.startswith("/"):
        path = path[1:]
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise S3Error(S3ErrorCode.InvalidArgument, "Invalid copy source object key")
    version = None
    if query:
        name, _, raw = query.partition("=")
        if name != "versionId":
            raise S3Error(S3ErrorCode.InvalidArgument, "Invalid version id specified")
        version = h.version_id({"versionId": unquote(raw)})
    return CopySource(bucket, key, version)


def parse_copy_range(value: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of ``bytes=first-last``; None when absent (the whole source)."""
    if value is None:
        return None
    m = _COPY_RANGE.match(value.strip())
    if not m or int(m.group(2)) < int(m.group(1)):
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where "
            "first and last are the zero-based offsets of the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=value,
        )
    first, last = int(m.group(1)), int(m.group(2))
    if last >= size:  # well formed, but past the source's end: unsatisfiable
        raise S3Error(
            S3ErrorCode.InvalidRange,
            f"Range specified is not valid for source object of size: {size}",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=value,
        )
    return first, last + 1


def _etag_matches(header: str, etag: str) -> bool:
    wanted = {normalize_etag(tag) for tag in header.split(",")}
    return "*" in wanted or normalize_etag(etag) in wanted


def check_copy_conditions(headers: Mapping[str, str], entry: ObjectEntry) -> None:
    """The x-amz-copy-source-if-* conditions, with the precedence S3 documents.

    If-Match true wins over If-Unmodified-Since false, and If-None-Match
    decides alone over If-Modified-Since (as in RFC 7232). Dates compare at
    one-second precision, the precision of Last-Modified.
    """
    mtime = int(entry.mtime)
    if_match = headers.get("x-amz-copy-source-if-match")
    if_none_match = headers.get("x-amz-copy-source-if-none-match")
    unmodified_since = h.parse_http_date(headers.get("x-amz-copy-source-if-unmodified-since"))
    modified_since = h.parse_http_date(headers.get("x-amz-copy-source-if-modified-since"))
    if if_match is not None:
        if not _etag_matches(if_match, entry.etag):
            raise S3Error(S3ErrorCode.PreconditionFailed, Condition="x-amz-copy-source-If-Match")
    elif unmodified_since is not None and mtime > unmodified_since:
        raise S3Error(
            S3ErrorCode.PreconditionFailed, Condition="x-amz-copy-source-If-Unmodified-Since"
        )
    if if_none_match is not None:
        if _etag_matches(if_none_match, entry.etag):
            raise S3Error(
                S3ErrorCode.PreconditionFailed, Condition="x-amz-copy-source-If-None-Match"
            )
    elif modified_since is not None and mtime <= modified_since:
        raise S3Error(
            S3ErrorCode.PreconditionFailed, Condition="x-amz-copy-source-If-Modified-Since"
        )


async def upload_part_copy(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    assert ctx.endpoint.key is not None
    headers = ctx.request.headers
    number = mx.part_number(ctx.endpoint.query.get("partNumber"))
    source = parse_copy_source(headers["x-amz-copy-source"])
    readable = await source_bucket(ctx, source.bucket, source.key)  # may it read the source?
    reader = readable.read(await readable.head(source.key, source.version))
    check_copy_conditions(headers, reader.entry)
    span = parse_copy_range(headers.get("x-amz-copy-source-range"), reader.entry.size)
    if span is not None:
        reader = dataclasses.replace(reader, start=span[0], end=span[1])
    if reader.length > MAX_PART_SIZE:
        raise S3Error(
            S3ErrorCode.InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy "
            f"source: {MAX_PART_SIZE}",
        )
    part = await bucket.upload_part(
        ctx.endpoint.key,
        ctx.endpoint.query.get("uploadId", ""),
        number,
        copy_opener(reader),
    )
    response = xml_response(mx.copy_part_result(part))
    response.headers.update(h.version_headers(reader.entry, "x-amz-copy-source-version-id"))
    return response
