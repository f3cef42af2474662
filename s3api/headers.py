"""HTTP header rules of S3 (pure): ranges, metadata, conditional requests, response headers."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping

from gateway.engine.records import ObjectEntry
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


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {h: headers[h] for h in STORED_HEADERS if h in headers}


def object_headers(entry: ObjectEntry) -> dict[str, str]:
    """Headers describing an object on GET and HEAD (without length and range)."""
    out = {
        "ETag": entry.etag,
        "Last-Modified": http_date(entry.mtime),
        "Content-Type": entry.content_type,
        "Accept-Ranges": "bytes",
    }
    for name, value in entry.headers.items():
        out[name.title()] = value
    for name, value in entry.user_meta.items():
        out[META_PREFIX + name] = value
    return out


def parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.timestamp() if parsed is not None else None
