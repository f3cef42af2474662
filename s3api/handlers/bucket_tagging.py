"""PutBucketTagging, GetBucketTagging, DeleteBucketTagging, with AWS's tag rules."""

from __future__ import annotations

import json
import unicodedata

from aiohttp import web

from engine import Operation
from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.bucket_config import read_config_body, read_owned_config, write_owned_config
from s3api.responses import empty, xml_response

TAGGING_ITEM = "tagging"
MAX_BUCKET_TAGS = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _allowed_text(text: str) -> bool:
    """Letters, digits, spaces and ``_ . : / = + - @`` (AWS's tag character set)."""
    return all(
        c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in "LNZ" for c in text
    )


def _tag_pair(tag) -> tuple[str, str]:
    key, value = xml.child_text(tag, "Key"), xml.child_text(tag, "Value")
    names = [xml.local_name(child.tag) for child in tag]
    if key is None or value is None or sorted(names) != ["Key", "Value"]:
        raise S3Error(S3ErrorCode.MalformedXML)
    return key, value


def _check_tag(key: str, value: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not _allowed_text(key):
        raise S3Error(S3ErrorCode.InvalidTag, "The TagKey you have provided is invalid")
    if len(value) > MAX_VALUE_LENGTH or not _allowed_text(value):
        raise S3Error(S3ErrorCode.InvalidTag, "The TagValue you have provided is invalid")
    if key.startswith("aws:"):
        raise S3Error(S3ErrorCode.InvalidTag, "System tags cannot be added/updated by requester")
    if key[:4].lower() == "aws:":
        raise S3Error(
            S3ErrorCode.InvalidTag,
            'Invalid Tag. Tags cannot start with "aws:"(case insensitive) unless they are '
            'System Tags that start with "aws:"(case sensitive)',
        )


def parse_tagging(body: bytes) -> list[tuple[str, str]]:
    """The (key, value) pairs of a Tagging document, or the S3Error AWS answers."""
    if not body.strip():
        raise S3Error(S3ErrorCode.MalformedXML)
    root = xml.parse(body)
    tag_sets = xml.children(root, "TagSet")
    if xml.local_name(root.tag) != "Tagging" or len(tag_sets) != 1:
        raise S3Error(S3ErrorCode.MalformedXML)
    tags = xml.children(tag_sets[0], "Tag")
    if len(tags) != len(tag_sets[0]):
        raise S3Error(S3ErrorCode.MalformedXML)
    pairs = [_tag_pair(tag) for tag in tags]
    if len(pairs) > MAX_BUCKET_TAGS:
        raise S3Error(S3ErrorCode.BadRequest, "Bucket tag count cannot be greater than 50")
    seen: set[str] = set()
    for key, value in pairs:
        _check_tag(key, value)
        if key in seen:
            raise S3Error(S3ErrorCode.InvalidTag, "Cannot provide multiple Tags with the same key")
        seen.add(key)
    return pairs


async def put_bucket_tagging(ctx: RequestContext) -> web.StreamResponse:
    bucket, body = await read_config_body(ctx)
    pairs = parse_tagging(body)
    # An empty TagSet leaves the bucket untagged, as S3 does.
    stored = json.dumps(pairs, ensure_ascii=False).encode() if pairs else None
    await write_owned_config(ctx, TAGGING_ITEM, stored, bucket)
    return empty(204)


async def get_bucket_tagging(ctx: RequestContext) -> web.StreamResponse:
    record, stored = await read_owned_config(ctx, TAGGING_ITEM)
    if stored is None:
        raise S3Error(S3ErrorCode.NoSuchTagSet, BucketName=record.name)
    tags = [("Tag", [("Key", k), ("Value", v)]) for k, v in json.loads(stored)]
    return xml_response(xml.render("Tagging", [("TagSet", tags)]))


async def delete_bucket_tagging(ctx: RequestContext) -> web.StreamResponse:
    await write_owned_config(ctx, TAGGING_ITEM, None)
    return empty(204)


HANDLERS = {
    Operation.PUT_BUCKET_TAGGING: put_bucket_tagging,
    Operation.GET_BUCKET_TAGGING: get_bucket_tagging,
    Operation.DELETE_BUCKET_TAGGING: delete_bucket_tagging,
}
