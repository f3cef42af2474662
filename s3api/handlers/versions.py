"""ListObjectVersions, GetBucketVersioning and PutBucketVersioning for unversioned buckets.

Versioning is never enabled yet, so every object has exactly one version,
``null``, which is the latest. Listing versions is therefore listing keys
(through ``ObjectService.list``), shaped as ListVersionsResult. A bucket may
be put in the Suspended state, which AWS and RGW record and report, and which
behaves exactly like never-enabled (new writes get the ``null`` version);
enabling versioning answers NotImplemented until it exists.
"""

from __future__ import annotations

from aiohttp import web

from engine import ListPage, Operation
from s3api import xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket, person
from s3api.handlers.bucket_config import read_config_body, read_owned_config, write_owned_config
from s3api.handlers.listing import _encoder, _max_keys
from s3api.responses import empty, xml_response

NULL_VERSION = "null"
VERSIONING_ITEM = "versioning"
SUSPENDED = "Suspended"


def _start_after(query) -> str:
    """Where the page starts: after key-marker (whose only version is ``null``)."""
    key_marker = query.get("key-marker", "")
    version_marker = query.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "A version-id marker cannot be specified without a key marker.",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    if version_marker and version_marker != NULL_VERSION:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "Invalid version id specified",
            ArgumentName="version-id-marker",
            ArgumentValue=version_marker,
        )
    return key_marker


def _versions(page: ListPage, encode, owner: list[xml.Node]) -> list[xml.Node]:
    nodes: list[xml.Node] = []
    for key, entry in page.entries:
        nodes.append(
            (
                "Version",
                [
                    ("Key", encode(key)),
                    ("VersionId", NULL_VERSION),
                    ("IsLatest", True),
                    ("LastModified", xml.timestamp(entry.mtime)),
                    ("ETag", entry.etag),
                    ("Size", entry.size),
                    ("StorageClass", "STANDARD"),
                    ("Owner", owner),
                ],
            )
        )
    nodes += [("CommonPrefixes", [("Prefix", encode(p))]) for p in page.common_prefixes]
    return nodes


async def list_object_versions(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    q = ctx.endpoint.query
    max_keys, encode = _max_keys(q), _encoder(q)
    start_after = _start_after(q)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    if max_keys == 0:
        page = ListPage([], [], False, None)
    else:
        page = await bucket.list(prefix, delimiter, start_after, max_keys)
    truncated = page.is_truncated and page.next_marker is not None
    children: list[xml.Node] = [
        ("Name", bucket.name),
        ("Prefix", encode(prefix)),
        ("KeyMarker", encode(q.get("key-marker", ""))),
        ("VersionIdMarker", q.get("version-id-marker", "")),
        ("NextKeyMarker", encode(page.next_marker) if truncated else None),
        ("NextVersionIdMarker", NULL_VERSION if truncated else None),
        ("MaxKeys", max_keys),
        ("Delimiter", encode(delimiter) if delimiter else None),
        ("IsTruncated", truncated),
        ("EncodingType", "url" if "encoding-type" in q else None),
    ]
    children += _versions(page, encode, await person(ctx, bucket.owner))
    return xml_response(xml.render("ListVersionsResult", children))


async def get_bucket_versioning(ctx: RequestContext) -> web.StreamResponse:
    _, stored = await read_owned_config(ctx, VERSIONING_ITEM)
    status = stored.decode() if stored is not None else None
    return xml_response(xml.render("VersioningConfiguration", [("Status", status)]))


def _requested_status(body: bytes) -> str | None:
    root = xml.parse(body)
    if xml.local_name(root.tag) != "VersioningConfiguration":
        raise S3Error(S3ErrorCode.MalformedXML)
    status = xml.child_text(root, "Status")
    mfa_delete = xml.child_text(root, "MfaDelete")
    if status not in (None, "Enabled", SUSPENDED):
        raise S3Error(S3ErrorCode.MalformedXML)
    if mfa_delete not in (None, "Enabled", "Disabled"):
        raise S3Error(S3ErrorCode.MalformedXML)
    if mfa_delete == "Enabled":
        raise S3Error(S3ErrorCode.NotImplemented, "MFA delete is not implemented by this gateway.")
    if status == "Enabled":
        raise S3Error(
            S3ErrorCode.NotImplemented,
            "Bucket versioning is not implemented by this gateway yet.",
        )
    return status


async def put_bucket_versioning(ctx: RequestContext) -> web.StreamResponse:
    status = _requested_status(await read_config_body(ctx))
    if status == SUSPENDED:
        # Recorded so GetBucketVersioning reports it; writes behave as unversioned.
        await write_owned_config(ctx, VERSIONING_ITEM, SUSPENDED.encode())
    return empty()


HANDLERS = {
    Operation.LIST_OBJECT_VERSIONS: list_object_versions,
    Operation.GET_BUCKET_VERSIONING: get_bucket_versioning,
    Operation.PUT_BUCKET_VERSIONING: put_bucket_versioning,
}
