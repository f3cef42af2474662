"""CopyObject: PUT with ``x-amz-copy-source``, within a bucket or across buckets.

The request is parsed and checked here (pure parts first): the source
(``[/]bucket/key[?versionId=null]``, URL-encoded), the metadata and tagging
directives, a self-copy that changes nothing (refused as AWS does), the
``x-amz-copy-source-if-*`` conditions on the source entry and the
``If-Match``/``If-None-Match`` conditions on the destination. The bytes are
streamed by ``engine.copy`` into new stripes, with the checksum
computed on the way (the requested algorithm, else the source's, else
CRC64NVME).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from aiohttp import web

from engine import ObjectEntry, Operation, PutRequest, with_object_acl, without_lock
from s3api import checksums, xml
from s3api import headers as h
from s3api.body import hashed
from s3api.checksums import ChecksumVerifier
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket, source_bucket
from s3api.handlers.acl import check_request_acl
from s3api.handlers.conditions import check_copy_source, write_condition
from s3api.handlers.tagging import parse_tagging_header
from s3api.responses import xml_response

COPY, REPLACE = "COPY", "REPLACE"
# Headers that make a copy onto itself legal (they change the object).
_SELF_COPY_CHANGES = (
    "x-amz-storage-class",
    "x-amz-website-redirect-location",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-customer-algorithm",
)


@dataclass(frozen=True, slots=True)
class CopySource:
    bucket: str
    key: str
    version: str | None = None


def _bad_source(value: str) -> S3Error:
    return S3Error(
        S3ErrorCode.InvalidArgument,
        "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        ArgumentName="x-amz-copy-source",
        ArgumentValue=value,
    )


def parse_copy_source(value: str) -> CopySource:
    """``[/]bucket/key[?versionId=ID]``; the path is URL-decoded (``+`` is a space)."""
    path, sep, query = value.partition("?")
    version = None
    if sep:
        name, _, raw = query.partition("=")
        if name != "versionId":
            raise _bad_source(value)
        version = h.version_id({"versionId": unquote_plus(raw)})
    try:
        path = unquote_plus(path, errors="strict")
    except UnicodeDecodeError:
        raise _bad_source(value) from None
    bucket, _, key = path.removeprefix("/").partition("/")
    if not bucket or not key:
        raise _bad_source(value)
    return CopySource(bucket, key, version)


def parse_directive(headers: Mapping[str, str], name: str, what: str) -> str:
    value = headers.get(name, COPY)
    if value not in (COPY, REPLACE):
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            f"Unknown {what} directive.",
            ArgumentName=name,
            ArgumentValue=value,
        )
    return value


def check_self_copy(headers: Mapping[str, str], metadata_directive: str) -> None:
    """A copy onto itself must change metadata, storage class, redirect or encryption."""
    if metadata_directive == REPLACE or any(n in headers for n in _SELF_COPY_CHANGES):
        return
    raise S3Error(
        S3ErrorCode.InvalidRequest,
        "This copy request is illegal because it is trying to copy an object to itself "
        "without changing the object's metadata, storage class, website redirect location "
        "or encryption attributes.",
    )


def checksum_algorithm(headers: Mapping[str, str], source: ObjectEntry) -> str:
    """The requested algorithm, else the source's, else S3's default."""
    requested = headers.get("x-amz-checksum-algorithm")
    if requested:
        return checksums.parse_algorithm(requested)
    return next(iter(source.checksums), checksums.DEFAULT_ALGORITHM)


@dataclass(frozen=True, slots=True)
class _CopyRequest:
    """Everything a CopyObject request says, parsed before the source is read."""

    source: CopySource
    metadata_directive: str
    tagging_directive: str
    new_tags: dict[str, str]
    headers: Mapping[str, str]
    acl: str | None  # the copy's canned ACL (never the source's, as on AWS)
    now: float  # the engine clock's time when the request arrived

    def plan(self, entry: ObjectEntry, stream: AsyncIterator[bytes]) -> PutRequest:
        check_copy_source(self.headers, entry, self.now)
        verifier = ChecksumVerifier(None, default=checksum_algorithm(self.headers, entry))
        put = PutRequest(
            body=hashed(stream, verifier),
            size=entry.size,
            content_type=entry.content_type,
            user_meta=dict(entry.user_meta),
            headers=dict(entry.headers),
            tags=dict(entry.tags) if self.tagging_directive == COPY else self.new_tags,
            checksums=lambda: verifier.results,
            condition=write_condition(self.headers),
            # The copy's class is what this request asks (STANDARD if nothing), as on AWS.
            storage_class=self.headers.get("x-amz-storage-class"),
        )
        if self.metadata_directive == REPLACE:
            put.content_type = self.headers.get("Content-Type")
            put.user_meta = h.user_metadata(self.headers)
            put.headers = h.stored_headers({k.lower(): v for k, v in self.headers.items()})
        # The copy's own ACL and lock, never the source's (as on AWS).
        put.headers = without_lock(with_object_acl(put.headers, self.acl))
        return put


def copy_result(entry: ObjectEntry) -> bytes:
    children: list[xml.Node] = [
        ("ETag", entry.etag),
        ("LastModified", xml.timestamp(entry.mtime)),
    ]
    for algorithm, value in entry.checksums.items():
        children.append(("ChecksumType", checksums.checksum_type(value)))
        children.append((checksums.element_name(algorithm), value))
    return xml.render("CopyObjectResult", children)




async def copy_object(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    assert ctx.endpoint.key is not None
    headers = ctx.request.headers
    source = parse_copy_source(headers["x-amz-copy-source"])
    request = _CopyRequest(
        source=source,
        metadata_directive=parse_directive(headers, "x-amz-metadata-directive", "metadata"),
        tagging_directive=parse_directive(headers, "x-amz-tagging-directive", "tagging"),
        new_tags=parse_tagging_header(headers.get("x-amz-tagging")),
        headers=headers,
        acl=check_request_acl(headers, "object", writer=ctx.user, bucket_owner=bucket.owner),
        now=ctx.engine.clock.time(),
    )
    write_condition(headers)  # an unsupported condition fails before any read
    if (source.bucket, source.key, source.version) == (bucket.name, ctx.endpoint.key, None):
        check_self_copy(headers, request.metadata_directive)
    # The caller must be allowed to read the source (NoSuchBucket if it is missing); the
    # engine checks the ACL of the source entry actually copied.
    readable = await source_bucket(ctx, source.bucket, source.key)
    copied, entry = await ctx.engine.copy_object(
        readable, source.key, bucket, ctx.endpoint.key, request.plan, source.version
    )
    response = xml_response(copy_result(entry))
    response.headers.update(h.version_headers(entry))
    response.headers.update(h.version_headers(copied, "x-amz-copy-source-version-id"))
    return response


HANDLERS = {Operation.COPY_OBJECT: copy_object}
