"""Object lock: bucket default retention, object retention and legal holds (S3's API).

The rules are the engine's (``engine.object_lock``): here are the XML
documents, the ``x-amz-object-lock-*`` request and response headers and
``x-amz-bypass-governance-retention``. A bucket has object lock only if it
was created with ``x-amz-bucket-object-lock-enabled: true`` (which also
enables versioning for good).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from aiohttp import web

from engine import (
    COMPLIANCE,
    GOVERNANCE,
    HOLD_HEADER,
    MODE_HEADER,
    UNTIL_HEADER,
    LockConfig,
    ObjectEntry,
    Operation,
    Retention,
    retention_of,
)
from s3api import xml
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket
from s3api.handlers.bucket_config import read_config_body
from s3api.headers import version_headers, version_id
from s3api.responses import empty, xml_response

BYPASS_HEADER = "x-amz-bypass-governance-retention"
MAX_LOCK_BODY = 64 * 1024


def bypass_asked(headers: Mapping[str, str]) -> bool:
    return headers.get(BYPASS_HEADER, "").strip().lower() == "true"


def _invalid(message: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidArgument, message)


def parse_date(value: str) -> float:
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("The retain until date is not a valid date.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _mode(value: str | None) -> str:
    if value not in (GOVERNANCE, COMPLIANCE):
        raise S3Error(S3ErrorCode.MalformedXML)
    return value


def lock_request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The reserved headers a write's ``x-amz-object-lock-*`` headers ask for."""
    out: dict[str, str] = {}
    mode = headers.get("x-amz-object-lock-mode")
    until = headers.get("x-amz-object-lock-retain-until-date")
    if (mode is None) != (until is None):
        raise _invalid(
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
        )
    if mode is not None and until is not None:
        if mode not in (GOVERNANCE, COMPLIANCE):
            raise _invalid("Unknown wormMode directive.")
        out[MODE_HEADER], out[UNTIL_HEADER] = mode, repr(parse_date(until))
    hold = headers.get("x-amz-object-lock-legal-hold")
    if hold is not None:
        if hold not in ("ON", "OFF"):
            raise _invalid("Legal Hold must be either of 'ON' or 'OFF'")
        if hold == "ON":
            out[HOLD_HEADER] = "ON"
    return out


def lock_response_headers(entry: ObjectEntry) -> dict[str, str]:
    out: dict[str, str] = {}
    retention = retention_of(entry)
    if retention is not None:
        out["x-amz-object-lock-mode"] = retention.mode
        out["x-amz-object-lock-retain-until-date"] = xml.timestamp(retention.until)
    if HOLD_HEADER in entry.headers:
        out["x-amz-object-lock-legal-hold"] = "ON"
    return out


# -- the bucket's configuration ------------------------------------------------------------


def parse_lock_configuration(body: bytes) -> LockConfig:
    root = xml.parse(body)
    if xml.local_name(root.tag) != "ObjectLockConfiguration":
        raise S3Error(S3ErrorCode.MalformedXML)
    if xml.child_text(root, "ObjectLockEnabled") != "Enabled":
        raise S3Error(S3ErrorCode.MalformedXML)
    rules = xml.children(root, "Rule")
    if not rules:
        return LockConfig()
    defaults = xml.children(rules[0], "DefaultRetention")
    if not defaults:
        raise S3Error(S3ErrorCode.MalformedXML)
    default = defaults[0]
    mode = _mode(xml.child_text(default, "Mode"))
    days, years = xml.child_text(default, "Days"), xml.child_text(default, "Years")
    if (days is None) == (years is None):
        raise S3Error(S3ErrorCode.MalformedXML)
    try:
        count = int(days if days is not None else years)  # type: ignore[arg-type]
    except ValueError:
        raise S3Error(S3ErrorCode.MalformedXML) from None
    if count <= 0:
        raise _invalid("Default retention period must be a positive integer value.")
    return LockConfig(mode, count if days is not None else None, count if years else None)


async def put_bucket_object_lock(ctx: RequestContext) -> web.StreamResponse:
    bucket, body = await read_config_body(ctx)
    await bucket.set_lock_config(parse_lock_configuration(body))
    return empty()


async def get_bucket_object_lock(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    config = await bucket.lock_config()
    if config is None:
        raise S3Error(S3ErrorCode.ObjectLockConfigurationNotFoundError, BucketName=bucket.name)
    children: list[xml.Node] = [("ObjectLockEnabled", "Enabled")]
    if config.mode is not None:
        period = ("Days", config.days) if config.days else ("Years", config.years)
        children.append(("Rule", [("DefaultRetention", [("Mode", config.mode), period])]))
    return xml_response(xml.render("ObjectLockConfiguration", children))


# -- one version's retention and legal hold --------------------------------------------------


async def _object(ctx: RequestContext):
    assert ctx.endpoint.key is not None
    bucket = await authorized_bucket(ctx)
    return bucket, ctx.endpoint.key, version_id(ctx.endpoint.query)


async def put_object_retention(ctx: RequestContext) -> web.StreamResponse:
    bucket, key, version = await _object(ctx)
    root = xml.parse(await read_small_body(ctx, MAX_LOCK_BODY))
    if xml.local_name(root.tag) != "Retention":
        raise S3Error(S3ErrorCode.MalformedXML)
    mode, until = xml.child_text(root, "Mode"), xml.child_text(root, "RetainUntilDate")
    retention = None
    if mode is not None or until is not None:
        if until is None:
            raise S3Error(S3ErrorCode.MalformedXML)
        retention = Retention(_mode(mode), parse_date(until))
    entry = await bucket.set_retention(key, retention, version, bypass_asked(ctx.request.headers))
    return empty(headers=version_headers(entry))


async def get_object_retention(ctx: RequestContext) -> web.StreamResponse:
    bucket, key, version = await _object(ctx)
    retention = await bucket.retention(key, version)
    if retention is None:
        raise S3Error(S3ErrorCode.NoSuchObjectLockConfiguration)
    return xml_response(
        xml.render(
            "Retention",
            [("Mode", retention.mode), ("RetainUntilDate", xml.timestamp(retention.until))],
        )
    )


async def put_object_legal_hold(ctx: RequestContext) -> web.StreamResponse:
    bucket, key, version = await _object(ctx)
    root = xml.parse(await read_small_body(ctx, MAX_LOCK_BODY))
    status = xml.child_text(root, "Status")
    if xml.local_name(root.tag) != "LegalHold" or status not in ("ON", "OFF"):
        raise S3Error(S3ErrorCode.MalformedXML)
    await bucket.set_legal_hold(key, status == "ON", version)
    return empty()


async def get_object_legal_hold(ctx: RequestContext) -> web.StreamResponse:
    bucket, key, version = await _object(ctx)
    status = "ON" if await bucket.legal_hold(key, version) else "OFF"
    return xml_response(xml.render("LegalHold", [("Status", status)]))


HANDLERS = {
    Operation.PUT_BUCKET_OBJECT_LOCK: put_bucket_object_lock,
    Operation.GET_BUCKET_OBJECT_LOCK: get_bucket_object_lock,
    Operation.PUT_OBJECT_RETENTION: put_object_retention,
    Operation.GET_OBJECT_RETENTION: get_object_retention,
    Operation.PUT_OBJECT_LEGAL_HOLD: put_object_legal_hold,
    Operation.GET_OBJECT_LEGAL_HOLD: get_object_legal_hold,
}

