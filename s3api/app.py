"""The S3 front end as an aiohttp application: route, authenticate, dispatch, answer.

Every request goes through ``S3Frontend.handle``: it parses the request into
an ``Endpoint`` (pure), authenticates it (pure SigV4 plus one cached key
lookup), runs the operation's handler and turns any failure into S3 error
XML. No exception escapes: an unexpected one is logged and answered as
InternalError 500, and the process keeps serving.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from engine import Engine, Operation
from s3api import xml
from s3api.auth import authenticate
from s3api.context import RequestContext, RequestObserver, S3Settings
from s3api.errors import S3Error, S3ErrorCode, to_s3_error
from s3api.handlers import HANDLERS
from s3api.handlers.access import invite_body
from s3api.handlers.cors import actual_request_headers
from s3api.routing import (
    PREFLIGHT_OPERATIONS,
    Endpoint,
    S3Target,
    parse_query,
    parse_target,
    route,
)

CTX_KEY = "atonix.s3.ctx"
CORS_KEY = "atonix.s3.cors"  # CORS headers for the response to an actual request
log = logging.getLogger("atonix.s3")
access_log = logging.getLogger("atonix.access")


async def _defer_continue(request: web.Request) -> None:
    """Hold back ``100 Continue`` until the request is admitted (see ``invite_body``).

    aiohttp's default answers 100 before any handler runs, so a client would
    send a whole body only to be refused; S3 refuses first. Any other Expect
    value is ignored, as S3 (and Ceph RGW) ignore it: aiohttp's 417 is not S3's.
    """


_OBJECT_READS = frozenset({Operation.GET_OBJECT, Operation.HEAD_OBJECT})


class _NullObserver:
    def observe(self, operation, status, seconds, bytes_in, bytes_out) -> None:
        pass


class S3Frontend:
    def __init__(
        self,
        engine: Engine,
        settings: S3Settings | None = None,
        observer: RequestObserver | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or S3Settings()
        self.observer = observer or _NullObserver()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        raw_path, _, raw_query = request.raw_path.partition("?")
        endpoint = Endpoint(Operation.UNKNOWN, S3Target(None, None))
        ctx = RequestContext(request, endpoint, self.engine, self.settings)
        request[CTX_KEY] = ctx
        try:
            target = parse_target(request.host, raw_path, self.settings.domains)
            query = parse_query(raw_query)
            ctx.endpoint = route(request.method, target, query, request.headers)
            # Browsers never sign a preflight; its answer reveals only the CORS rules.
            if ctx.endpoint.name not in PREFLIGHT_OPERATIONS:
                await self._admit(ctx, raw_path, raw_query)
            handler = HANDLERS.get(ctx.endpoint.name)
            if handler is None:
                raise S3Error(
                    S3ErrorCode.NotImplemented,
                    f"{ctx.endpoint.label} is not implemented by this gateway yet.",
                )
            # Anonymous callers are invited only once an ACL admits them (access.py);
            # a form POST authenticates by its body.
            if ctx.user is not None or ctx.endpoint.name is Operation.POST_OBJECT:
                await invite_body(request)
            response = await handler(ctx)
        except Exception as exc:  # every failure becomes S3 XML; nothing escapes
            response = await self._error_response(ctx, exc)
        self._finish(ctx, response, started)
        return response

    async def _admit(self, ctx: RequestContext, raw_path: str, raw_query: str) -> None:
        """CORS headers for an Origin, then authentication."""
        if "Origin" in ctx.request.headers:
            ctx.request[CORS_KEY] = await actual_request_headers(ctx)
        await authenticate(ctx, raw_path, raw_query)

    async def _error_response(self, ctx: RequestContext, exc: Exception) -> web.StreamResponse:
        err = to_s3_error(exc)
        if err.code is S3ErrorCode.InternalError:
            log.exception("internal error in %s (request %s)", ctx.endpoint.label, ctx.request_id)
        headers: dict[str, str] = {}
        marker = getattr(exc, "version_id", None)  # a delete marker was found (engine errors)
        if marker is not None:
            headers = {"x-amz-delete-marker": "true", "x-amz-version-id": marker}
            if err.code is S3ErrorCode.MethodNotAllowed:
                headers["Allow"] = "DELETE"
        elif err.code is S3ErrorCode.NoSuchKey and ctx.endpoint.name in _OBJECT_READS:
            # The miss is no delete marker (Ceph RGW says so on every miss).
            headers["x-amz-delete-marker"] = "false"
        if ctx.request.method == "HEAD":
            # A HEAD answer carries no body; the status alone tells the client.
            return web.Response(status=err.status, headers=headers)
        body = xml.error_document(err, ctx.request_id, ctx.host_id, ctx.endpoint.target.resource)
        # The body has been read only partly; the connection cannot be reused safely.
        if not ctx.request.content.at_eof() and ctx.request.can_read_body:
            headers["Connection"] = "close"
        return web.Response(
            status=err.status, body=body, content_type="application/xml", headers=headers
        )

    def _finish(self, ctx: RequestContext, response: web.StreamResponse, started: float) -> None:
        elapsed = time.perf_counter() - started
        if ctx.bytes_out == 0 and isinstance(response, web.Response) and response.body:
            ctx.bytes_out = len(response.body)
        self.observer.observe(
            ctx.endpoint.label, response.status, elapsed, ctx.bytes_in, ctx.bytes_out
        )
        if access_log.disabled or not access_log.isEnabledFor(logging.INFO):
            return  # building the record's fields costs more than most handlers
        access_log.info(
            "%s %s %s %s %d in=%d out=%d %.1fms id=%s",
            ctx.request.remote,
            ctx.user or "-",
            ctx.request.method,
            ctx.endpoint.label,
            response.status,
            ctx.bytes_in,
            ctx.bytes_out,
            elapsed * 1000,
            ctx.request_id,
            extra={
                "remote": ctx.request.remote,
                "user": ctx.user,
                "method": ctx.request.method,
                "operation": ctx.endpoint.label,
                "status": response.status,
                "bytes_in": ctx.bytes_in,
                "bytes_out": ctx.bytes_out,
                "ms": round(elapsed * 1000, 2),
                "request_id": ctx.request_id,
            },
        )

    async def _stamp(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add the headers every S3 response carries, streaming ones included."""
        ctx = request.get(CTX_KEY)
        if ctx is not None:
            response.headers["x-amz-request-id"] = ctx.request_id
            response.headers["x-amz-id-2"] = ctx.host_id
        response.headers["Server"] = self.settings.server_name
        response.headers.update(request.get(CORS_KEY) or {})

    def add_routes(self, app: web.Application) -> None:
        app.on_response_prepare.append(self._stamp)
        app.router.add_route("*", "/{tail:.*}", self.handle, expect_handler=_defer_continue)
