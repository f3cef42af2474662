"""Conditional requests (pure): S3's precedence for GET/HEAD and copy sources; write conditions."""

from __future__ import annotations

import calendar
import time

import pytest
from multidict import CIMultiDict

from engine.conditions import SameEntry, WriteCondition, bare_etag, etag_matches
from engine.errors import NoSuchKey, PreconditionFailed
from engine.records import ObjectEntry
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.conditions import (
    Outcome,
    ReadConditions,
    check_copy_source,
    parse_etags,
    write_condition,
)

HELLO = '"5d41402abc4b2a76b9719d911017c592"'
OTHER = '"0123456789abcdef0123456789abcdef"'
CREATED = calendar.timegm((2024, 5, 6, 7, 8, 9)) + 0.5  # 07:08:09.500
NOW = calendar.timegm((2024, 5, 6, 8, 0, 0))
LAST_MODIFIED = "Mon, 06 May 2024 07:08:09 GMT"
BEFORE = "Mon, 06 May 2024 07:08:08 GMT"
AFTER = "Mon, 06 May 2024 07:08:10 GMT"
FUTURE = "Mon, 06 May 2024 09:00:00 GMT"
ENTRY = ObjectEntry(size=5, etag=HELLO, mtime=CREATED)

P, N, F = Outcome.PROCEED, Outcome.NOT_MODIFIED, Outcome.PRECONDITION_FAILED

# The GET/HEAD table of S3 (RFC 7232 precedence; the object is 07:08:09.5, "now" is 08:00).
READ_CASES = [
    ({"If-Match": HELLO}, P, None),
    ({"If-Match": HELLO.strip('"')}, P, None),
    ({"If-Match": "*"}, P, None),
    ({"If-Match": f"{OTHER}, {HELLO}"}, P, None),
    ({"If-Match": OTHER}, F, "If-Match"),
    ({"If-None-Match": OTHER}, P, None),
    ({"If-None-Match": HELLO}, N, "If-None-Match"),
    ({"If-None-Match": HELLO.strip('"')}, N, "If-None-Match"),
    ({"If-None-Match": "*"}, N, "If-None-Match"),
    ({"If-None-Match": f"{OTHER}, {HELLO}"}, N, "If-None-Match"),
    ({"If-None-Match": f"W/{HELLO}"}, N, "If-None-Match"),
    ({"If-Modified-Since": BEFORE}, P, None),
    ({"If-Modified-Since": LAST_MODIFIED}, N, "If-Modified-Since"),
    ({"If-Modified-Since": AFTER}, N, "If-Modified-Since"),
    ({"If-Modified-Since": "yesterday"}, P, None),
    ({"If-Modified-Since": FUTURE}, P, None),  # a date after now is not valid
    ({"If-Unmodified-Since": BEFORE}, F, "If-Unmodified-Since"),
    ({"If-Unmodified-Since": LAST_MODIFIED}, P, None),
    ({"If-Unmodified-Since": AFTER}, P, None),
    ({"If-Unmodified-Since": "yesterday"}, P, None),
    ({"If-Match": HELLO, "If-Unmodified-Since": BEFORE}, P, None),
    ({"If-Match": OTHER, "If-Unmodified-Since": AFTER}, F, "If-Match"),
    ({"If-None-Match": HELLO, "If-Modified-Since": BEFORE}, N, "If-None-Match"),
    ({"If-None-Match": OTHER, "If-Modified-Since": AFTER}, P, None),
    ({"If-Match": OTHER, "If-None-Match": HELLO}, F, "If-Match"),  # 412 before 304
    ({}, P, None),
]


@pytest.mark.parametrize(("headers", "outcome", "condition"), READ_CASES)
def test_read_precedence(headers, outcome, condition):
    conditions = ReadConditions.from_headers(CIMultiDict(headers))
    assert conditions.evaluate(ENTRY, NOW) == (outcome, condition)


# A copy has no 304: each failing condition is 412, named with its x-amz-copy-source- header.
COPY_CASES = [
    ({"if-match": HELLO}, None),
    ({"if-match": OTHER}, "if-match"),
    ({"if-none-match": OTHER}, None),
    ({"if-none-match": HELLO}, "if-none-match"),
    ({"if-modified-since": BEFORE}, None),
    ({"if-modified-since": AFTER}, "if-modified-since"),
    ({"if-modified-since": FUTURE}, None),
    ({"if-unmodified-since": AFTER}, None),
    ({"if-unmodified-since": BEFORE}, "if-unmodified-since"),
    ({"if-match": HELLO, "if-unmodified-since": BEFORE}, None),
    ({"if-none-match": HELLO, "if-modified-since": BEFORE}, "if-none-match"),
]


@pytest.mark.parametrize(("conditions", "failed"), COPY_CASES)
def test_copy_source_conditions(conditions, failed):
    headers = CIMultiDict({f"x-amz-copy-source-{k}": v for k, v in conditions.items()})
    if failed is None:
        check_copy_source(headers, ENTRY, NOW)
        return
    with pytest.raises(S3Error) as info:
        check_copy_source(headers, ENTRY, NOW)
    assert info.value.code is S3ErrorCode.PreconditionFailed
    assert info.value.details == {"Condition": f"x-amz-copy-source-{failed}"}


def test_etag_helpers():
    assert bare_etag(' W/"abc" ') == "abc"
    assert parse_etags(f'{HELLO}, "x",, *') == (HELLO.strip('"'), "x", "*")
    assert etag_matches(("*",), HELLO)
    assert not etag_matches((), HELLO)


# -- writes ---------------------------------------------------------------------------


def test_write_condition_parsing():
    assert write_condition(CIMultiDict()) is None
    assert write_condition(CIMultiDict({"If-None-Match": "*"})) == WriteCondition(
        if_none_match_any=True
    )
    assert write_condition(CIMultiDict({"If-Match": HELLO})) == WriteCondition(
        if_match=(HELLO.strip('"'),)
    )
    assert write_condition(CIMultiDict({"If-None-Match": f"{HELLO}, x"})) == WriteCondition(
        if_none_match=(HELLO.strip('"'), "x")
    )


@pytest.mark.parametrize(
    ("condition", "current", "error", "details"),
    [
        (WriteCondition(if_none_match_any=True), None, None, None),
        (WriteCondition(if_none_match_any=True), ENTRY, PreconditionFailed, "If-None-Match"),
        (WriteCondition(if_match=("5d41402abc4b2a76b9719d911017c592",)), ENTRY, None, None),
        (WriteCondition(if_match=("*",)), ENTRY, None, None),
        (WriteCondition(if_match=(OTHER.strip('"'),)), ENTRY, PreconditionFailed, "If-Match"),
        (WriteCondition(if_match=("*",)), None, NoSuchKey, None),
        (WriteCondition(if_none_match=(HELLO.strip('"'),)), ENTRY, PreconditionFailed,
         "If-None-Match"),
        (WriteCondition(if_none_match=(OTHER.strip('"'),)), ENTRY, None, None),
        (WriteCondition(if_none_match=(HELLO.strip('"'),)), None, None, None),
    ],
)
def test_write_condition_check(condition, current, error, details):
    if error is None:
        condition.check(current, "k")
        return
    with pytest.raises(error) as info:
        condition.check(current, "k")
    if details:
        assert info.value.details == {"Condition": details}
    else:
        assert info.value.details == {"Key": "k"}


def test_same_entry():
    check = SameEntry(ENTRY, "k").check
    check(ObjectEntry(size=5, etag=HELLO, mtime=CREATED))
    with pytest.raises(NoSuchKey):
        check(None)
    changed = ObjectEntry(size=5, etag=HELLO, mtime=CREATED, tags={"a": "1"})
    with pytest.raises(Exception) as info:
        check(changed)
    assert type(info.value).__name__ == "EntryChanged"


def test_now_is_used_for_future_dates():
    # The same If-Modified-Since is in the future before the object time, valid after it.
    conditions = ReadConditions.from_headers(CIMultiDict({"If-Modified-Since": FUTURE}))
    assert conditions.evaluate(ENTRY, NOW)[0] is P
    assert conditions.evaluate(ENTRY, time.time())[0] is N
