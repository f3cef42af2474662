"""ListObjectVersions, GetBucketVersioning and PutBucketVersioning.

A bucket's versioning is off until enabled, then Enabled or Suspended (never
off again), as on AWS; the engine keeps the versions (``engine.versioning``).
ListObjectVersions pages through every version of every key, a key's
current version first and the rest newest first, with delete markers as
``DeleteMarker`` elements; objects written before versioning are the
``null`` version.
"""

from __future__ import annotations

from aiohttp import web

from engine import (
    ENABLED,
    MFA_DELETE_CONFIG,
    SUSPENDED,
    VERSIONING_CONFIG,
    ObjectEntry,
    Operation,
    VersionsPage,
)
from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket, person
from s3api.handlers.bucket_config import read_config_body, read_owned_config
from s3api.handlers.listing import _encoder, _max_keys
from s3api.headers import NULL_VERSION, storage_class, version_id
from s3api.responses import empty, xml_response


def _markers(query) -> tuple[str, str]:
    """(key-marker, version-id-marker) of a ListObjectVersions request."""
    key_marker = query.get("key-marker", "")
    version_marker = version_id(query, "version-id-marker") or ""
    if version_marker and not key_marker:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    return key_marker, version_marker


def _version(key: str, entry: ObjectEntry, latest: bool, encode, owner) -> xml.Node:
    common: list[xml.Node] = [
        ("Key", encode(key)),
        ("VersionId", entry.version_id or NULL_VERSION),
        ("IsLatest", latest),
        ("LastModified", xml.timestamp(entry.mtime)),
    ]
    if entry.delete_marker:
        return ("DeleteMarker", [*common, ("Owner", owner)])
    return (
        "Version",
        [
            *common,
            ("ETag", entry.etag),
            ("Size", entry.size),
            ("StorageClass", storage_class(entry)),
            ("Owner", owner),
        ],
    )


def _versions(page: VersionsPage, encode, owner: list[xml.Node]) -> list[xml.Node]:
    nodes = [_version(k, e, latest, encode, owner) for k, e, latest in page.versions]
    nodes += [("CommonPrefixes", [("Prefix", encode(p))]) for p in page.common_prefixes]
    return nodes


async def list_object_versions(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    q = ctx.endpoint.query
    max_keys, encode = _max_keys(q), _encoder(q)
    key_marker, version_marker = _markers(q)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    if max_keys == 0:
        page = VersionsPage([], [], False, None, None)
    else:
        page = await bucket.list_versions(
            prefix, delimiter, key_marker, version_marker, max_keys
        )
    next_version = None
    if page.is_truncated and page.versions and page.versions[-1][0] == page.next_key:
        next_version = page.versions[-1][1].version_id or NULL_VERSION
    children: list[xml.Node] = [
        ("Name", bucket.name),
        ("Prefix", encode(prefix)),
        ("KeyMarker", encode(key_marker)),
        ("VersionIdMarker", version_marker),
        ("NextKeyMarker", encode(page.next_key) if page.is_truncated else None),
        ("NextVersionIdMarker", next_version if page.is_truncated else None),
        ("MaxKeys", max_keys),
        ("Delimiter", encode(delimiter) if delimiter else None),
        ("IsTruncated", page.is_truncated),
        ("EncodingType", "url" if "encoding-type" in q else None),
    ]
    children += _versions(page, encode, await person(ctx, bucket.owner))
    return xml_response(xml.render("ListVersionsResult", children))


async def get_bucket_versioning(ctx: RequestContext) -> web.StreamResponse:
    _, stored = await read_owned_config(ctx, VERSIONING_CONFIG)
    _, mfa = await read_owned_config(ctx, MFA_DELETE_CONFIG)
    status = stored.decode() if stored is not None else None
    children: list[xml.Node] = [("Status", status)]
    if mfa is not None:
        children.append(("MfaDelete", mfa.decode()))
    return xml_response(xml.render("VersioningConfiguration", children))


def _requested(body: bytes) -> tuple[str | None, str | None]:
    """(versioning status, MFA delete state) asked for; either may be absent."""
    root = xml.parse(body)
    if xml.local_name(root.tag) != "VersioningConfiguration":
        raise S3Error(S3ErrorCode.MalformedXML)
    status = xml.child_text(root, "Status")
    mfa_delete = xml.child_text(root, "MfaDelete")
    if status not in (None, ENABLED, SUSPENDED):
        raise S3Error(S3ErrorCode.MalformedXML)
    if mfa_delete not in (None, "Enabled", "Disabled"):
        raise S3Error(S3ErrorCode.MalformedXML)
    return status, mfa_delete


async def put_bucket_versioning(ctx: RequestContext) -> web.StreamResponse:
    bucket, body = await read_config_body(ctx)
    status, mfa_delete = _requested(body)
    if status is not None or mfa_delete is not None:
        await bucket.set_versioning(status, mfa_delete, ctx.request.headers.get("x-amz-mfa"))
    return empty()


HANDLERS = {
    Operation.LIST_OBJECT_VERSIONS: list_object_versions,
    Operation.GET_BUCKET_VERSIONING: get_bucket_versioning,
    Operation.PUT_BUCKET_VERSIONING: put_bucket_versioning,
}
