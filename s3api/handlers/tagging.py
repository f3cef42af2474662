"""Object tagging: Put/Get/DeleteObjectTagging and the ``x-amz-tagging`` header.

The parsing and S3's rules are pure functions (usable for any tag set):
at most 10 tags on an object (InvalidTag, as Ceph RGW; AWS says BadRequest),
keys of 1..128 and values of
0..256 characters from ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``, unique keys, no
``aws:`` prefix (InvalidTag, naming the offending key and value).

Tags live in the object's index entry; a change is a read-modify-write of
that entry (``ObjectService.update``), atomic against concurrent overwrites.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from urllib.parse import unquote_plus

from aiohttp import web

from engine import AuthorizedBucket, Operation
from s3api import xml
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket
from s3api.headers import version_headers, version_id
from s3api.responses import empty, xml_response

MAX_OBJECT_TAGS = 10
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
MAX_TAGGING_BODY = 64 * 1024
_EXTRA_CHARACTERS = frozenset("_.:/=+-@")
_ALLOWED_CATEGORIES = ("L", "Z", "N")  # letters, separators (spaces), numbers
_SYSTEM_PREFIX = "aws:"


def _allowed_text(text: str) -> bool:
    return all(
        c in _EXTRA_CHARACTERS or unicodedata.category(c)[0] in _ALLOWED_CATEGORIES for c in text
    )


def _invalid_tag(message: str, **details: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidTag, message, **details)


def validate_tags(pairs: list[tuple[str, str]], max_tags: int = MAX_OBJECT_TAGS) -> dict[str, str]:
    """The tag set as a dict (order kept), or the S3 error for the first rule it breaks."""
    if len(pairs) > max_tags:
        raise _invalid_tag(f"Object tags cannot be greater than {max_tags}")
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not key or len(key) > MAX_KEY_LENGTH or not _allowed_text(key):
            raise _invalid_tag("The TagKey you have provided is invalid", TagKey=key)
        if key.lower().startswith(_SYSTEM_PREFIX):
            raise _invalid_tag("System tags cannot be added/updated by requester", TagKey=key)
        if len(value) > MAX_VALUE_LENGTH or not _allowed_text(value):
            raise _invalid_tag(
                "The TagValue you have provided is invalid", TagKey=key, TagValue=value
            )
        if key in tags:
            raise _invalid_tag("Cannot provide multiple Tags with the same key", TagKey=key)
        tags[key] = value
    return tags


def _bad_header(value: str) -> S3Error:
    return S3Error(
        S3ErrorCode.InvalidArgument,
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
        "parameters without tag name duplicates.",
        ArgumentName="x-amz-tagging",
        ArgumentValue=value,
    )


def parse_tagging_header(value: str | None) -> dict[str, str]:
    """Tags from ``x-amz-tagging`` (``k1=v1&k2=v2``, URL-encoded, ``+`` is a space)."""
    if not value:
        return {}
    pairs: list[tuple[str, str]] = []
    for item in value.split("&"):
        if not item:
            continue
        raw_key, _, raw_value = item.partition("=")
        try:
            key = unquote_plus(raw_key, errors="strict")
            tag_value = unquote_plus(raw_value, errors="strict")
        except UnicodeDecodeError:
            raise _bad_header(value) from None
        if not key or any(key == seen for seen, _ in pairs):
            raise _bad_header(value)
        pairs.append((key, tag_value))
    return validate_tags(pairs)


def parse_tagging_document(body: bytes, max_tags: int = MAX_OBJECT_TAGS) -> dict[str, str]:
    """Tags from a ``<Tagging><TagSet><Tag><Key/><Value/></Tag>...`` document."""
    if not body.strip():
        raise S3Error(S3ErrorCode.MissingRequestBodyError)
    root = xml.parse(body)
    tag_sets = xml.children(root, "TagSet")
    if xml.local_name(root.tag) != "Tagging" or len(tag_sets) != 1:
        raise S3Error(S3ErrorCode.MalformedXML)
    pairs: list[tuple[str, str]] = []
    for tag in xml.children(tag_sets[0], "Tag"):
        key, value = xml.child_text(tag, "Key"), xml.child_text(tag, "Value")
        if key is None or value is None:
            raise S3Error(S3ErrorCode.MalformedXML)
        pairs.append((key, value))
    return validate_tags(pairs, max_tags)


def tagging_document(tags: dict[str, str]) -> bytes:
    """The tag set, ordered by key (as Ceph RGW lists it, whatever order it was set in)."""
    tag_set = [("Tag", [("Key", k), ("Value", tags[k])]) for k in sorted(tags)]
    return xml.render("Tagging", [("TagSet", tag_set)])


# -- handlers -----------------------------------------------------------------


async def _target(ctx: RequestContext) -> tuple[AuthorizedBucket, str, str | None]:
    bucket = await authorized_bucket(ctx)
    assert ctx.endpoint.key is not None
    return bucket, ctx.endpoint.key, version_id(ctx.endpoint.query)


async def put_object_tagging(ctx: RequestContext) -> web.StreamResponse:
    bucket, key, version = await _target(ctx)
    tags = parse_tagging_document(await read_small_body(ctx, MAX_TAGGING_BODY))
    entry = await bucket.update(key, lambda e: dataclasses.replace(e, tags=tags), version)
    return empty(headers=version_headers(entry))


async def get_object_tagging(ctx: RequestContext) -> web.StreamResponse:
    bucket, key, version = await _target(ctx)
    entry = await bucket.head(key, version)
    response = xml_response(tagging_document(entry.tags))
    response.headers.update(version_headers(entry))
    return response


async def delete_object_tagging(ctx: RequestContext) -> web.StreamResponse:
    bucket, key, version = await _target(ctx)
    entry = await bucket.update(key, lambda e: dataclasses.replace(e, tags={}), version)
    return empty(204, headers=version_headers(entry))


HANDLERS = {
    Operation.PUT_OBJECT_TAGGING: put_object_tagging,
    Operation.GET_OBJECT_TAGGING: get_object_tagging,
    Operation.DELETE_OBJECT_TAGGING: delete_object_tagging,
}
