"""Conditional requests (pure): If-Match & co. on reads and copies, and on writes.

Reads (GET/HEAD) and copy sources are evaluated with S3's precedence, which
follows RFC 7232 section 6:

1. ``If-Match`` (when present) decides alone between 412 and going on;
   otherwise ``If-Unmodified-Since`` can give 412.
2. ``If-None-Match`` (when present) decides alone between 304 and going on;
   otherwise ``If-Modified-Since`` can give 304.

So ``If-Match`` true + ``If-Unmodified-Since`` false is served, and
``If-None-Match`` false + ``If-Modified-Since`` true is 304. Dates that do
not parse, and an ``If-Modified-Since`` in the future, are ignored. A copy
has no 304: its "not modified" outcomes are 412 too.

Writes (PutObject, CopyObject destination) accept ``If-None-Match: *`` and
``If-Match: <etag>``; they become a ``WriteCondition`` that the engine checks
atomically with the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from engine import (
    ANY_ETAG,
    DeleteCondition,
    ObjectEntry,
    WriteCondition,
    bare_etag,
    etag_matches,
)
from s3api.errors import S3Error, S3ErrorCode
from s3api.headers import parse_http_date

COPY_SOURCE_PREFIX = "x-amz-copy-source-"


class Outcome(Enum):
    PROCEED = 200
    NOT_MODIFIED = 304
    PRECONDITION_FAILED = 412


def parse_etags(value: str) -> tuple[str, ...]:
    """The bare ETags of an If-Match/If-None-Match list (``*`` kept as is)."""
    return tuple(bare_etag(part) for part in value.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class ReadConditions:
    """The four conditional headers of a read, by the header names the client used."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_unmodified_since: str | None = None
    prefix: str = ""  # "" for GET/HEAD, "x-amz-copy-source-" for a copy source

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], prefix: str = "") -> ReadConditions:
        return cls(
            if_match=headers.get(prefix + "If-Match"),
            if_none_match=headers.get(prefix + "If-None-Match"),
            if_modified_since=headers.get(prefix + "If-Modified-Since"),
            if_unmodified_since=headers.get(prefix + "If-Unmodified-Since"),
            prefix=prefix,
        )

    def _name(self, header: str) -> str:
        """The header as AWS names it in the Condition element of a 412."""
        return self.prefix + header.lower() if self.prefix else header

    def evaluate(self, entry: ObjectEntry, now: float) -> tuple[Outcome, str | None]:
        """(outcome, the header that decided it when not PROCEED)."""
        modified = int(entry.mtime)  # Last-Modified has second precision
        if self.if_match is not None:
            if not etag_matches(parse_etags(self.if_match), entry.etag):
                return Outcome.PRECONDITION_FAILED, self._name("If-Match")
        else:
            since = parse_http_date(self.if_unmodified_since)
            if since is not None and modified > since:
                return Outcome.PRECONDITION_FAILED, self._name("If-Unmodified-Since")
        if self.if_none_match is not None:
            if etag_matches(parse_etags(self.if_none_match), entry.etag):
                return Outcome.NOT_MODIFIED, self._name("If-None-Match")
        else:
            since = parse_http_date(self.if_modified_since)
            if since is not None and since <= now and modified <= since:
                return Outcome.NOT_MODIFIED, self._name("If-Modified-Since")
        return Outcome.PROCEED, None


def precondition_failed(condition: str | None) -> S3Error:
    if condition is None:
        return S3Error(S3ErrorCode.PreconditionFailed)
    return S3Error(S3ErrorCode.PreconditionFailed, Condition=condition)


def check_copy_source(headers: Mapping[str, str], entry: ObjectEntry, now: float) -> None:
    """Raise 412 unless the copy source passes its ``x-amz-copy-source-if-*`` conditions."""
    outcome, condition = ReadConditions.from_headers(headers, COPY_SOURCE_PREFIX).evaluate(
        entry, now
    )
    if outcome is not Outcome.PROCEED:
        raise precondition_failed(condition)


def write_condition(headers: Mapping[str, str]) -> WriteCondition | None:
    """The condition of a write.

    ``If-None-Match: *`` (the key must not exist) is what AWS supports; an
    ETag list there (the current object must not have one of them) is
    accepted too, as Ceph RGW does.
    """
    if_match = headers.get("If-Match")
    if_none_match = headers.get("If-None-Match")
    if if_match is None and if_none_match is None:
        return None
    any_etag = if_none_match is not None and if_none_match.strip() == ANY_ETAG
    return WriteCondition(
        if_match=parse_etags(if_match) if if_match is not None else None,
        if_none_match_any=any_etag,
        if_none_match=() if any_etag or if_none_match is None else parse_etags(if_none_match),
    )


def _bad_condition(name: str, value: str) -> S3Error:
    return S3Error(
        S3ErrorCode.InvalidArgument, f"Invalid {name}", ArgumentName=name, ArgumentValue=value
    )


def delete_condition(
    etag: str | None, last_modified: str | None, size: str | None
) -> DeleteCondition | None:
    """The condition of a delete (as Ceph RGW takes them): If-Match, the object's last
    modified time (an HTTP date, as SDKs send it, or ISO 8601) and its size; None when
    none is given."""
    if etag is None and last_modified is None and size is None:
        return None
    moment = None
    if last_modified is not None:
        stamp = parse_http_date(last_modified)
        if stamp is None:
            stamp = _iso_seconds(last_modified)
        if stamp is None:
            raise _bad_condition("LastModifiedTime", last_modified)
        moment = int(stamp)
    length = None
    if size is not None:
        if not size.strip().isdigit():
            raise _bad_condition("Size", size)
        length = int(size)
    return DeleteCondition(
        if_match=parse_etags(etag) if etag is not None else None,
        last_modified=moment,
        size=length,
    )


def _iso_seconds(value: str) -> float | None:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
