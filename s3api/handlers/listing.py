"""ListObjects (v1) and ListObjectsV2."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from aiohttp import web

from engine import AuthorizedBucket, ListPage, Operation
from s3api import headers as h
from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket, person
from s3api.responses import xml_response

MAX_KEYS = 1000


def _max_keys(query) -> int:
    raw = query.get("max-keys", str(MAX_KEYS))
    try:
        value = int(raw)
    except ValueError:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "Provided max-keys not an integer or within integer range",
            ArgumentName="max-keys",
            ArgumentValue=raw,
        ) from None
    if value < 0:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "Argument maxKeys must be an integer between 0 and 2147483647",
            ArgumentName="maxKeys",
            ArgumentValue=raw,
        )
    return min(value, MAX_KEYS)


def _encoder(query):
    if "encoding-type" not in query:
        return lambda s: s
    if query["encoding-type"] != "url":
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=query["encoding-type"],
        )
    return lambda s: quote(s, safe="/") if s is not None else None


def _contents(
    page: ListPage, encode, owner: list[xml.Node] | None
) -> list[xml.Node | xml.Fragment]:
    """The page's Contents and CommonPrefixes, rendered in bulk (a page is up to a
    thousand entries: one f-string each, values escaped only when they need it)."""
    owner_xml = xml.render_fragment("Owner", owner) if owner is not None else ""
    escape, timestamp, storage_class = xml.escape, xml.timestamp, h.storage_class
    parts = [
        f"<Contents><Key>{escape(encode(key))}</Key>"
        f"<LastModified>{timestamp(entry.mtime)}</LastModified>"
        f"<ETag>{escape(entry.etag)}</ETag><Size>{entry.size}</Size>"
        f"<StorageClass>{storage_class(entry)}</StorageClass>{owner_xml}</Contents>"
        for key, entry in page.entries
    ]
    parts += [
        f"<CommonPrefixes><Prefix>{escape(encode(p))}</Prefix></CommonPrefixes>"
        for p in page.common_prefixes
    ]
    return [xml.Fragment("".join(parts))]


def _check_unordered(query) -> None:
    """``allow-unordered=true`` (a Ceph RGW extension; our listings are always ordered,
    which satisfies it) cannot be combined with a delimiter, as RGW refuses."""
    if query.get("allow-unordered", "").lower() == "true" and query.get("delimiter"):
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "allow-unordered cannot be used with a delimiter",
            ArgumentName="allow-unordered",
            ArgumentValue=query["allow-unordered"],
        )


async def _page(ctx: RequestContext, bucket: AuthorizedBucket, start_after: str, max_keys: int):
    q = ctx.endpoint.query
    _check_unordered(q)
    if max_keys == 0:
        return ListPage([], [], False, None)
    return await bucket.list(q.get("prefix", ""), q.get("delimiter", ""), start_after, max_keys)


async def list_objects(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    q = ctx.endpoint.query
    max_keys, encode = _max_keys(q), _encoder(q)
    marker = q.get("marker", "")
    page = await _page(ctx, bucket, marker, max_keys)
    delimiter = q.get("delimiter", "")
    children: list[xml.Node] = [
        ("Name", bucket.name),
        # Not url-encoded in v1: clients decode Marker and Delimiter there, not Prefix.
        ("Prefix", q.get("prefix", "")),
        ("Marker", encode(marker)),
        ("MaxKeys", max_keys),
        ("Delimiter", encode(delimiter) if delimiter else None),
        ("IsTruncated", page.is_truncated),
        ("NextMarker", encode(page.next_marker) if page.is_truncated and delimiter else None),
        ("EncodingType", "url" if "encoding-type" in q else None),
    ]
    children += _contents(page, encode, await person(ctx, bucket.owner))
    return xml_response(xml.render("ListBucketResult", children))


def encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(("1:" + marker).encode()).decode()


def decode_token(token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw.startswith("1:"):
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "The continuation token provided is incorrect",
            ArgumentName="continuation-token",
            ArgumentValue=token,
        )
    return raw[2:]


async def list_objects_v2(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    q = ctx.endpoint.query
    max_keys, encode = _max_keys(q), _encoder(q)
    token = q.get("continuation-token")
    start_after = q.get("start-after", "")
    cursor = decode_token(token) if token else start_after  # an empty token is no token
    page = await _page(ctx, bucket, max(cursor, start_after), max_keys)
    delimiter = q.get("delimiter", "")
    owner = await person(ctx, bucket.owner) if q.get("fetch-owner") == "true" else None
    children: list[xml.Node] = [
        ("Name", bucket.name),
        ("Prefix", encode(q.get("prefix", ""))),
        ("KeyCount", len(page.entries) + len(page.common_prefixes)),
        ("MaxKeys", max_keys),
        ("Delimiter", encode(delimiter) if delimiter else None),
        ("IsTruncated", page.is_truncated),
        ("ContinuationToken", token),
        (
            "NextContinuationToken",
            encode_token(page.next_marker) if page.is_truncated and page.next_marker else None,
        ),
        ("StartAfter", encode(start_after) if "start-after" in q else None),
        ("EncodingType", "url" if "encoding-type" in q else None),
    ]
    children += _contents(page, encode, owner)
    return xml_response(xml.render("ListBucketResult", children))


HANDLERS = {Operation.LIST_OBJECTS: list_objects, Operation.LIST_OBJECTS_V2: list_objects_v2}
