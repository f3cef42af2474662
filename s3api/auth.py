"""Authentication glue: aiohttp request -> pure SigV4 verification -> the caller's uid.

The only I/O here is one cached access-key lookup; everything about the
signature itself is decided by ``s3api.sigv4`` from plain values.
"""

from __future__ import annotations

import re

from s3api.context import RequestContext
from s3api.sigv4 import HttpRequestView, verify_request

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")


def claimed_access_key(authorization: str | None, query) -> str | None:
    """The access key id a request names, before anything is verified."""
    if authorization:
        m = _CREDENTIAL_RE.search(authorization)
        return m.group(1) if m else None
    credential = query.get("X-Amz-Credential")
    return credential.split("/", 1)[0] if credential else None


async def authenticate(ctx: RequestContext, raw_path: str, raw_query: str) -> None:
    request = ctx.request
    access_key = claimed_access_key(request.headers.get("Authorization"), ctx.endpoint.query)
    key = await ctx.engine.access_key(access_key) if access_key else None

    def lookup_secret(candidate: str) -> str | None:
        return key.secret if key is not None and candidate == key.access_key else None

    view = HttpRequestView(
        method=request.method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=request.headers,
    )
    result = verify_request(view, lookup_secret, ctx.engine.now())
    if result is not None:
        assert key is not None
        ctx.user = key.uid
        ctx.auth = result
