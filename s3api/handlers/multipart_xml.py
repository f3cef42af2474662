"""Multipart request parsing and response bodies (pure: no I/O, unit-testable)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from engine import (
    MAX_PART_NUMBER,
    S3_STORAGE_CLASSES,
    ObjectEntry,
    PartRecord,
    UploadInfo,
    UploadSnapshot,
    UploadsPage,
    UploadsQuery,
)
from s3api import checksums, xml
from s3api.errors import S3Error, S3ErrorCode

LIST_LIMIT = 1000
# A completion names at most 10,000 parts of ~100 bytes each (plus checksums).
MAX_COMPLETE_BODY = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """One Part of a CompleteMultipartUpload body."""

    number: int
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)  # {"CRC32": base64}


def _invalid_part_number(value: str) -> S3Error:
    return S3Error(
        S3ErrorCode.InvalidArgument,
        f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
        ArgumentName="partNumber",
        ArgumentValue=value,
    )


def part_number(value: str | None) -> int:
    """A partNumber parameter: an integer 1..10000 (InvalidArgument otherwise)."""
    raw = value if value is not None else ""
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PART_NUMBER:
        raise _invalid_part_number(raw)
    return int(raw)


def count_param(query: Mapping[str, str], name: str, default: int, cap: int | None) -> int:
    """A non-negative integer parameter (max-parts, part-number-marker, max-uploads)."""
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > 2**31 - 1:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=raw,
        )
    value = int(raw)
    return min(value, cap) if cap is not None else value


def storage_class(headers: Mapping[str, str]) -> str:
    value = headers.get("x-amz-storage-class", "STANDARD")
    if value not in S3_STORAGE_CLASSES:
        raise S3Error(S3ErrorCode.InvalidStorageClass)
    return value


def url_encoder(query: Mapping[str, str]) -> Callable[[str], str]:
    if "encoding-type" not in query:
        return lambda s: s
    if query["encoding-type"] != "url":
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=query["encoding-type"],
        )
    return lambda s: quote(s, safe="/")


def parse_complete(body: bytes) -> list[CompletedPart]:
    """The parts a CompleteMultipartUpload body names, in request order.

    Order, existence and ETags are checked by the engine; here only the shape:
    a CompleteMultipartUpload root with at least one Part, each with a
    PartNumber and an ETag (MalformedXML otherwise), part numbers 1..10000
    (InvalidArgument otherwise).
    """
    if not body.strip():
        raise S3Error(S3ErrorCode.MalformedXML)
    root = xml.parse(body)
    if xml.local_name(root.tag) != "CompleteMultipartUpload":
        raise S3Error(S3ErrorCode.MalformedXML)
    parts: list[CompletedPart] = []
    for elem in xml.children(root, "Part"):
        number, etag = xml.child_text(elem, "PartNumber"), xml.child_text(elem, "ETag")
        if number is None or etag is None:
            raise S3Error(S3ErrorCode.MalformedXML)
        number = number.strip()
        if not number.lstrip("-").isdigit():
            raise S3Error(S3ErrorCode.MalformedXML)
        if not 1 <= int(number) <= MAX_PART_NUMBER:
            raise _invalid_part_number(number)
        named = {
            alg: value.strip()
            for alg in checksums.ALGORITHMS
            if (value := xml.child_text(elem, checksums.element_name(alg))) is not None
        }
        part = CompletedPart(int(number), etag.strip(), named)
        if parts and parts[-1].number == part.number:
            parts[-1] = part  # named again right away: the later mention counts (as RGW)
        else:
            parts.append(part)
    if not parts:
        raise S3Error(S3ErrorCode.MalformedXML)
    return parts


# -- responses --------------------------------------------------------------------


def _person(uid: str, names: Mapping[str, str] | None = None) -> list[xml.Node]:
    return [("ID", uid), ("DisplayName", (names or {}).get(uid, uid))]


def initiate_result(bucket: str, key: str, upload_id: str) -> bytes:
    return xml.render(
        "InitiateMultipartUploadResult", [("Bucket", bucket), ("Key", key), ("UploadId", upload_id)]
    )


def complete_result(location: str, bucket: str, key: str, entry: ObjectEntry) -> bytes:
    children: list[xml.Node] = [
        ("Location", location),
        ("Bucket", bucket),
        ("Key", key),
        ("ETag", entry.etag),
    ]
    for algorithm, value in entry.checksums.items():
        children.append((checksums.element_name(algorithm), value))
        children.append(("ChecksumType", checksums.checksum_type(value)))
    return xml.render("CompleteMultipartUploadResult", children)


def copy_part_result(part: PartRecord) -> bytes:
    children: list[xml.Node] = [("LastModified", xml.timestamp(part.mtime)), ("ETag", part.etag)]
    children += [(checksums.element_name(alg), v) for alg, v in part.checksums.items()]
    return xml.render("CopyPartResult", children)


def _part(part: PartRecord) -> xml.Node:
    fields: list[xml.Node] = [
        ("PartNumber", part.number),
        ("LastModified", xml.timestamp(part.mtime)),
        ("ETag", part.etag),
        ("Size", part.size),
    ]
    fields += [(checksums.element_name(alg), value) for alg, value in part.checksums.items()]
    return ("Part", fields)


def list_parts_result(
    bucket: str,
    upload: UploadSnapshot,
    parts: list[PartRecord],
    marker: int,
    max_parts: int,
    truncated: bool,
    names: Mapping[str, str] | None = None,
) -> bytes:
    info = upload.meta.info
    children: list[xml.Node] = [
        ("Bucket", bucket),
        ("Key", info.key),
        ("UploadId", info.upload_id),
        ("Initiator", _person(info.owner, names)),
        ("Owner", _person(info.owner, names)),
        ("StorageClass", info.storage_class),
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", parts[-1].number if parts else marker),
        ("MaxParts", max_parts),
        ("IsTruncated", truncated),
        ("ChecksumAlgorithm", info.checksum_algorithm or None),
        ("ChecksumType", info.checksum_type or None),
    ]
    children += [_part(p) for p in parts]
    return xml.render("ListPartsResult", children)


def _upload(
    info: UploadInfo, encode: Callable[[str], str], names: Mapping[str, str] | None
) -> xml.Node:
    return (
        "Upload",
        [
            ("Key", encode(info.key)),
            ("UploadId", info.upload_id),
            ("Initiator", _person(info.owner, names)),
            ("Owner", _person(info.owner, names)),
            ("StorageClass", info.storage_class),
            ("Initiated", xml.timestamp(info.initiated)),
            ("ChecksumAlgorithm", info.checksum_algorithm or None),
            ("ChecksumType", info.checksum_type or None),
        ],
    )


def list_uploads_result(
    bucket: str,
    q: UploadsQuery,
    page: UploadsPage,
    encode: Callable[[str], str],
    url: bool,
    names: Mapping[str, str] | None = None,
) -> bytes:
    children: list[xml.Node] = [
        ("Bucket", bucket),
        ("KeyMarker", encode(q.key_marker)),
        ("UploadIdMarker", q.upload_id_marker),
        ("NextKeyMarker", encode(page.next_key_marker or "") if page.is_truncated else None),
        (
            "NextUploadIdMarker",
            (page.next_upload_id_marker or "") if page.is_truncated else None,
        ),
        ("Delimiter", encode(q.delimiter) if q.delimiter else None),
        ("Prefix", encode(q.prefix)),
        ("MaxUploads", q.max_uploads),
        ("IsTruncated", page.is_truncated),
        ("EncodingType", "url" if url else None),
    ]
    children += [_upload(info, encode, names) for info in page.uploads]
    children += [("CommonPrefixes", [("Prefix", encode(p))]) for p in page.common_prefixes]
    return xml.render("ListMultipartUploadsResult", children)
