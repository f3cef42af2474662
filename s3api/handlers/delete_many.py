"""DeleteObjects: POST ``?delete`` with up to 1,000 keys, reported key by key.

As AWS: the request must carry Content-MD5 or an ``x-amz-checksum-*``
(verified by the body layer); no keys or more than 1,000 is MalformedXML;
``<Quiet>true</Quiet>`` reports only the failures; a key that does not
exist is reported deleted; ``VersionId`` may only be ``null`` (the one
version of an unversioned bucket's objects). Parsing and rendering are pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from engine import DeleteCondition, InvalidVersionId, ObjectEntry, Operation, check_version_id
from s3api import checksums, xml
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode, to_s3_error
from s3api.handlers.access import authorized_bucket
from s3api.handlers.conditions import delete_condition
from s3api.handlers.object_lock import bypass_asked
from s3api.headers import NULL_VERSION
from s3api.responses import xml_response

MAX_KEYS = 1000
MAX_DELETE_BODY = 4 * 1024 * 1024  # 1,000 keys of 1,024 bytes, escaped, fit


@dataclass(frozen=True, slots=True)
class DeleteItem:
    key: str
    version_id: str | None = None
    condition: DeleteCondition | None = None  # ETag, LastModifiedTime, Size (as RGW)


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    items: list[DeleteItem]
    quiet: bool


def require_integrity_header(headers: Mapping[str, str]) -> None:
    """AWS refuses a DeleteObjects body that carries neither Content-MD5 nor a checksum."""
    if "Content-MD5" in headers or checksums.parse_request(headers) is not None:
        return
    raise S3Error(
        S3ErrorCode.InvalidRequest, "Missing required header for this request: Content-MD5"
    )


def parse_delete(body: bytes) -> DeleteRequest:
    if not body.strip():
        raise S3Error(S3ErrorCode.MissingRequestBodyError)
    root = xml.parse(body)
    if xml.local_name(root.tag) != "Delete":
        raise S3Error(S3ErrorCode.MalformedXML)
    items = []
    for obj in xml.children(root, "Object"):
        key = xml.child_text(obj, "Key")
        if key is None:
            raise S3Error(S3ErrorCode.MalformedXML)
        condition = delete_condition(
            xml.child_text(obj, "ETag"),
            xml.child_text(obj, "LastModifiedTime"),
            xml.child_text(obj, "Size"),
        )
        items.append(DeleteItem(key, xml.child_text(obj, "VersionId"), condition))
    if not items or len(items) > MAX_KEYS:
        raise S3Error(S3ErrorCode.MalformedXML)
    quiet = (xml.child_text(root, "Quiet") or "").strip().lower() == "true"
    return DeleteRequest(items, quiet)


def _version_error(item: DeleteItem) -> S3Error | None:
    if item.version_id is None:
        return None
    try:
        check_version_id(item.version_id)
    except InvalidVersionId:
        return S3Error(S3ErrorCode.InvalidArgument, "Invalid version id specified")
    return None


def _deleted(item: DeleteItem, done: ObjectEntry | None) -> list[xml.Node]:
    """A Deleted element: the key, the version named, the delete marker made or removed."""
    children: list[xml.Node] = [("Key", item.key), ("VersionId", item.version_id)]
    if done is not None and done.delete_marker:
        children.append(("DeleteMarker", True))
        if item.version_id is None:
            children.append(("DeleteMarkerVersionId", done.version_id or NULL_VERSION))
    return children


def delete_result(
    request: DeleteRequest, outcomes: Mapping[DeleteItem, ObjectEntry | Exception | None]
) -> bytes:
    """The DeleteResult document, in request order (only errors when quiet)."""
    children: list[xml.Node] = []
    for item in request.items:
        error = outcomes.get(item)
        if not isinstance(error, Exception):
            if not request.quiet:
                children.append(("Deleted", _deleted(item, error)))
            continue
        err = to_s3_error(error)
        children.append(
            (
                "Error",
                [
                    ("Key", item.key),
                    ("VersionId", item.version_id),
                    ("Code", err.code.name),
                    ("Message", err.message),
                ],
            )
        )
    return xml.render("DeleteResult", children)


async def delete_objects(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    require_integrity_header(ctx.request.headers)
    request = parse_delete(await read_small_body(ctx, MAX_DELETE_BODY))
    outcomes: dict[DeleteItem, ObjectEntry | Exception | None] = {}
    to_delete: list[tuple[str, str | None]] = []
    conditions: dict[str, DeleteCondition] = {}
    for item in request.items:
        outcomes[item] = _version_error(item)
        if outcomes[item] is None:
            to_delete.append((item.key, item.version_id))
            if item.condition is not None:
                conditions.setdefault(item.key, item.condition)
    # A key (version) named twice is deleted once (under its first condition) and
    # reported for each.
    unique = list(dict.fromkeys(to_delete))
    bypass = bypass_asked(ctx.request.headers)
    mfa = ctx.request.headers.get("x-amz-mfa")
    results = dict(await bucket.delete_many(unique, conditions, bypass, mfa))
    for item in request.items:
        if outcomes[item] is None:
            outcomes[item] = results.get((item.key, item.version_id))
    return xml_response(delete_result(request, outcomes))


HANDLERS = {Operation.DELETE_OBJECTS: delete_objects}
