"""Not S3: digests of key ranges of a bucket's versions, for another region's ``replication
verify`` (``replication.verify.RemoteSide``): the listing stays here, only digests and
the items of small differing ranges cross the link.

``POST /bucket?x-atonix-digest`` with a JSON body: ``{"session", "bounds", "hi"}``
is answered with ``{"digests": [[count, digest], ...]}``, one per part
``[bounds[i], bounds[i+1])`` (the last up to ``hi``, null: the end);
``{"session", "lo", "hi"}`` with ``{"items": [[key, version id, ETag, marker], ...]}``.
The bucket is listed once per session (kept a minute), so a verify costs one
listing here however many questions it asks; one listing per bucket at a time,
of at most MAX_LISTED versions. The owner's request only.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from engine import Operation, VersionItem, in_range, summarize, version_items
from s3api.body import read_small_body
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.access import authorized_bucket

SESSION_S = 60.0
MAX_SESSIONS = 4
MAX_BOUNDS = 4096
MAX_ITEMS = 100_000  # a range asked item by item is a small one (merkle's leaf: 256)
MAX_LISTED = 10_000_000  # about 2 GB of memory for one verify's listing
_listing_locks: dict[str, asyncio.Lock] = {}  # bucket id -> one listing at a time
# (bucket id, session) -> (expiry, the bucket's versions, sorted)
_sessions: dict[tuple[str, str], tuple[float, list[VersionItem]]] = {}


async def replica_digest(ctx: RequestContext) -> web.StreamResponse:
    bucket = await authorized_bucket(ctx)
    asked = _question(await read_small_body(ctx, 1 << 20))
    items = await _listing(bucket, asked["session"])
    hi = asked.get("hi")
    if "bounds" in asked:
        bounds = asked["bounds"]
        digests = await asyncio.to_thread(summarize, in_range(items, bounds[0], hi), bounds)
        answer = {"digests": digests}
    else:
        found = in_range(items, asked["lo"], hi)
        if len(found) > MAX_ITEMS:
            raise S3Error(S3ErrorCode.InvalidRequest, "Ask for a smaller range")
        answer = {"items": list(found)}
    return web.Response(body=json.dumps(answer).encode(), content_type="application/json")


def _question(raw: bytes) -> dict:
    """The JSON question, checked: every field of the right type."""
    try:
        asked = json.loads(raw)
    except ValueError:
        asked = None
    ok = isinstance(asked, dict) and isinstance(asked.get("session"), str) and (
        asked.get("hi") is None or isinstance(asked.get("hi"), str))
    if ok and "bounds" in asked:
        bounds = asked["bounds"]
        ok = (isinstance(bounds, list) and 0 < len(bounds) <= MAX_BOUNDS
              and all(isinstance(b, str) for b in bounds))
    elif ok:
        ok = isinstance(asked.get("lo"), str)
    if not ok:
        raise S3Error(S3ErrorCode.InvalidArgument, "Malformed digest question")
    return asked


async def _listing(bucket, session: str) -> list[VersionItem]:
    now = time.monotonic()
    for held in [k for k, (expiry, _) in _sessions.items() if expiry < now]:
        del _sessions[held]
    key = (bucket.record.bucket_id, session)
    async with _listing_locks.setdefault(key[0], asyncio.Lock()):
        cached = _sessions.get(key)
        if cached is not None:
            return cached[1]
        items = await version_items(bucket, limit=MAX_LISTED)
        _remember(key, now, items)
    return items


def _remember(key: tuple[str, str], now: float, items: list[VersionItem]) -> None:
    if len(_sessions) >= MAX_SESSIONS:
        del _sessions[min(_sessions, key=lambda k: _sessions[k][0])]
    _sessions[key] = (now + SESSION_S, items)


HANDLERS = {Operation.POST_BUCKET_REPLICA_DIGEST: replica_digest}
