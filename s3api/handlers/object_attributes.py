"""GetObjectAttributes: GET ``?attributes`` with ``x-amz-object-attributes``.

Answers only the attributes named (ETag, Checksum, ObjectParts,
StorageClass, ObjectSize) that the object has: the ETag bare (without
quotes), as AWS does; ObjectParts only for a multipart object: its part
count and a page of its parts (number and size), paged by
``x-amz-max-parts`` / ``x-amz-part-number-marker`` as ListParts is, and
listed whether or not they carry checksums (as Ceph RGW lists them).
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from engine import ObjectEntry, Operation
from s3api import checksums, xml
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket
from s3api.headers import storage_class, version_headers, version_id
from s3api.responses import xml_response

HEADER = "x-amz-object-attributes"
ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def parse_attributes(headers: Mapping[str, str]) -> frozenset[str]:
    """The attribute names requested (case-sensitive, as AWS)."""
    value = headers.get(HEADER)
    if value is None:
        raise S3Error(
            S3ErrorCode.InvalidRequest, f"Missing required header for this request: {HEADER}"
        )
    names = [name.strip() for name in value.split(",")]
    if not names or any(name not in ATTRIBUTES for name in names):
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "Invalid attribute name specified.",
            ArgumentName=HEADER,
            ArgumentValue=value,
        )
    return frozenset(names)


def _checksum(entry: ObjectEntry) -> list[xml.Node] | None:
    if not entry.checksums:
        return None
    children: list[xml.Node] = []
    for algorithm, value in entry.checksums.items():
        children.append((checksums.element_name(algorithm), value))
        children.append(("ChecksumType", checksums.checksum_type(value)))
    return children


def _count(headers: Mapping[str, str], name: str, default: int) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit():
        raise S3Error(
            S3ErrorCode.InvalidArgument, f"Invalid {name}", ArgumentName=name, ArgumentValue=raw
        )
    return int(raw)


def _parts(entry: ObjectEntry, headers: Mapping[str, str]) -> list[xml.Node] | None:
    """A multipart object's parts page (each part is one segment of the entry)."""
    if not entry.parts:
        return None
    max_parts = min(_count(headers, "x-amz-max-parts", MAX_PARTS), MAX_PARTS)
    marker = _count(headers, "x-amz-part-number-marker", 0)
    numbered = list(enumerate(entry.segments, 1))[marker:]
    page, truncated = numbered[:max_parts], len(numbered) > max_parts
    children: list[xml.Node] = [
        ("PartsCount", entry.parts),
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", page[-1][0] if page else marker),
        ("MaxParts", max_parts),
        ("IsTruncated", truncated),
    ]
    children += [("Part", [("PartNumber", n), ("Size", seg.size)]) for n, seg in page]
    return children


def attributes_document(
    entry: ObjectEntry, wanted: frozenset[str], headers: Mapping[str, str] | None = None
) -> bytes:
    values: dict[str, object] = {
        "ETag": entry.etag.strip('"'),
        "Checksum": _checksum(entry),
        "ObjectParts": _parts(entry, headers or {}),
        "StorageClass": storage_class(entry),
        "ObjectSize": entry.size,
    }
    return xml.render(
        "GetObjectAttributesResponse",
        [(name, values[name]) for name in ATTRIBUTES if name in wanted],
    )


async def get_object_attributes(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    assert ctx.endpoint.key is not None
    version = version_id(ctx.endpoint.query)
    wanted = parse_attributes(ctx.request.headers)
    entry = await bucket.head(ctx.endpoint.key, version)
    response = xml_response(attributes_document(entry, wanted, ctx.request.headers))
    response.headers["Last-Modified"] = xml.http_date(entry.mtime)
    response.headers.update(version_headers(entry))
    return response


HANDLERS = {Operation.GET_OBJECT_ATTRIBUTES: get_object_attributes}
