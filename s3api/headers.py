"""HTTP header rules of S3 (pure): ranges, metadata, response headers and their overrides."""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Mapping

from engine import (
    NO_PRIMACY,
    InvalidVersionId,
    ObjectEntry,
    Primacy,
    ReplicaOf,
    check_version_id,
    parse_version_id,
    storage_class_of,
)
from s3api import checksums
from s3api.errors import S3Error, S3ErrorCode
from s3api.xml import http_date

# Headers stored with an object and returned on GET/HEAD.
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
META_PREFIX = "x-amz-meta-"
INTERNAL_PREFIX = "x-atonix-"  # stored with an object for the gateway, never sent to clients
NULL_VERSION = "null"  # the version id of every object in an unversioned bucket
# Query parameters of a signed GET/HEAD that replace a response header.
RESPONSE_OVERRIDES = {
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
    "response-content-language": "Content-Language",
    "response-content-type": "Content-Type",
    "response-expires": "Expires",
}
# What a 304 Not Modified repeats from the object (RFC 7232 section 4.1).
_NOT_MODIFIED_HEADERS = ("ETag", "Last-Modified", "Cache-Control", "Expires")
_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(value: str | None) -> tuple[int | None, int | None] | None:
    """A single byte range (first, last); None when absent or not understood.

    S3 ignores a Range it cannot parse (and multi-range requests) and answers
    with the whole object, so unparseable values are not errors here.
    """
    if not value:
        return None
    m = _RANGE_RE.match(value)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first = int(m.group(1)) if m.group(1) else None
    last = int(m.group(2)) if m.group(2) else None
    if first is not None and last is not None and last < first:
        return None
    return first, last


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        k.lower()[len(META_PREFIX) :]: v
        for k, v in headers.items()
        if k.lower().startswith(META_PREFIX)
    }


def storage_class(entry: ObjectEntry) -> str:
    """The class an object reports (the engine stores it only when not STANDARD)."""
    return storage_class_of(entry.headers)


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers kept with an object; ``aws-chunked`` (the request's framing, not the
    object's encoding) is dropped from Content-Encoding, and with it an emptied header."""
    out = {h: headers[h] for h in STORED_HEADERS if h in headers}
    if "content-encoding" in out:
        codings = [c.strip() for c in out["content-encoding"].split(",")]
        kept = [c for c in codings if c and c.lower() != "aws-chunked"]
        if kept:
            out["content-encoding"] = ", ".join(kept)
        else:
            del out["content-encoding"]
    return out


def object_headers(entry: ObjectEntry) -> dict[str, str]:
    """Headers describing an object on GET and HEAD (without length and range)."""
    out = {
        "ETag": entry.etag,
        "Last-Modified": http_date(entry.mtime),
        "Content-Type": entry.content_type,
        "Accept-Ranges": "bytes",
    }
    for name, value in entry.headers.items():
        if not name.startswith(INTERNAL_PREFIX):  # e.g. the object's ACL (handlers/acl.py)
            out[name.title()] = value
    for name, value in entry.user_meta.items():
        out[META_PREFIX + name] = value
    if entry.tags:
        out["x-amz-tagging-count"] = str(len(entry.tags))
    return out


def response_overrides(query: Mapping[str, str], anonymous: bool) -> dict[str, str]:
    """Headers that ``response-*`` query parameters replace (empty values are ignored)."""
    out: dict[str, str] = {}
    for param, header in RESPONSE_OVERRIDES.items():
        value = query.get(param)
        if not value:
            continue
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise S3Error(
                S3ErrorCode.InvalidArgument,
                "Header value cannot be represented using ISO-8859-1.",
                ArgumentName=param,
                ArgumentValue=value,
            ) from None
        out[header] = value
    if out and anonymous:
        raise S3Error(
            S3ErrorCode.InvalidRequest,
            "Request specific response headers cannot be used for anonymous GET requests.",
        )
    return out


def version_id(query: Mapping[str, str], name: str = "versionId") -> str | None:
    """The version a request names (``null`` or an id this gateway could have made)."""
    version = query.get(name)
    if version is None:
        return None
    try:
        return check_version_id(version)
    except InvalidVersionId:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "Invalid version id specified",
            ArgumentName=name,
            ArgumentValue=version,
        ) from None


def version_headers(entry: ObjectEntry, name: str = "x-amz-version-id") -> dict[str, str]:
    """``x-amz-version-id`` of a version written while versioning was on or suspended."""
    if not entry.stamp:
        return {}  # written before versioning: S3 names no version
    return {name: entry.version_id or NULL_VERSION}


def checksum_mode_enabled(headers: Mapping[str, str]) -> bool:
    return headers.get(checksums.MODE_HEADER, "").strip().upper() == "ENABLED"


def checksum_headers(stored: Mapping[str, str]) -> dict[str, str]:
    """``x-amz-checksum-<alg>`` and ``x-amz-checksum-type`` for an object's checksums."""
    out = {}
    for algorithm, value in stored.items():
        out[checksums.header_name(algorithm)] = value
        out[checksums.TYPE_HEADER] = checksums.checksum_type(value)
    return out


def not_modified_headers(full: Mapping[str, str]) -> dict[str, str]:
    """The subset of an object's headers a 304 answer carries."""
    return {name: full[name] for name in _NOT_MODIFIED_HEADERS if name in full}


def parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.timestamp() if parsed is not None else None


# A replica PUT or delete marker from another region's shipper (replication.remote_region):
# the source version's id, hybrid clock stamp, time and ETag travel with it.
REPLICA_VERSION_HEADER = "x-atonix-replica-version-id"
REPLICA_STAMP_HEADER = "x-atonix-replica-stamp"
REPLICA_MTIME_HEADER = "x-atonix-replica-mtime"
REPLICA_ETAG_HEADER = "x-atonix-replica-etag"
# Every request of another region's shipper names its bucket's primacy (engine.primacy).
REPLICA_PRIMACY_HEADER = "x-atonix-replica-primacy"
# A replica sent as chunk frames (s3api.handlers.replica_chunks): its size and MD5.
REPLICA_ENCODING_HEADER = "x-atonix-replica-encoding"
REPLICA_SIZE_HEADER = "x-atonix-replica-size"
REPLICA_MD5_HEADER = "x-atonix-replica-md5"


def replica_of(headers: Mapping[str, str], auth: object | None) -> ReplicaOf | None:
    """The source version a replica request names (None: an ordinary request). Only a
    header-signed request may name one, with every replica header signed: a presigned
    URL, or one whose signature left them out, cannot be turned into a replica write."""
    vid = headers.get(REPLICA_VERSION_HEADER)
    if vid is None:
        return None
    primacy = shipped_by(headers, auth) or NO_PRIMACY
    try:
        stamp_of_id, _ = parse_version_id(vid)
        stamp = int(headers.get(REPLICA_STAMP_HEADER, ""))
        mtime = float(headers.get(REPLICA_MTIME_HEADER, ""))
    except (InvalidVersionId, ValueError):
        raise S3Error(S3ErrorCode.InvalidArgument, "Malformed replica headers") from None
    if stamp != stamp_of_id or not math.isfinite(mtime) or not 0 <= mtime < 2**40:
        raise S3Error(S3ErrorCode.InvalidArgument, "Replica headers do not agree")
    return ReplicaOf(vid, stamp, mtime, headers.get(REPLICA_ETAG_HEADER), primacy)


def shipped_by(headers: Mapping[str, str], auth: object | None) -> Primacy | None:
    """The sender's primacy when another region's shipper sent the request (None: a
    client did), with every replica header checked to be signed (see ``replica_of``)."""
    if not any(name in headers for name in _REPLICA_HEADERS):
        return None
    names = [h for h in _REPLICA_HEADERS if h in headers]
    signed = getattr(auth, "signed_headers", ())
    if auth is None or getattr(auth, "presigned", True) or not set(names) <= set(signed):
        raise S3Error(S3ErrorCode.AccessDenied, "Replica headers must be signed")
    value = headers.get(REPLICA_PRIMACY_HEADER)
    if value is None:
        return NO_PRIMACY  # a shipper that predates primacies: as one without any
    try:
        return Primacy.parse_header(value)
    except ValueError:
        raise S3Error(S3ErrorCode.InvalidArgument, "Malformed replica primacy") from None


_REPLICA_HEADERS = (REPLICA_VERSION_HEADER, REPLICA_STAMP_HEADER, REPLICA_MTIME_HEADER,
                    REPLICA_ETAG_HEADER, REPLICA_PRIMACY_HEADER, REPLICA_ENCODING_HEADER,
                    REPLICA_SIZE_HEADER, REPLICA_MD5_HEADER)
