"""Request bodies as bounded async streams, with the payload checks SigV4 asks for.

The signed payload hash (``x-amz-content-sha256``) is verified while the body
streams; a mismatch is raised on the last piece, before the engine commits
anything, so a tampered body is never stored. aws-chunked bodies are decoded
(and each chunk signature checked) by the pure decoder in ``s3api.chunked``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from s3api.chunked import ChunkedDecoder
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4 import PayloadMode

READ_SIZE = 256 * 1024
MAX_SMALL_BODY = 1024 * 1024  # XML configuration bodies


def _declared_length(ctx: RequestContext) -> int | None:
    value = ctx.request.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise S3Error(S3ErrorCode.InvalidArgument, "Content-Length is not a number") from None
    if length < 0:
        raise S3Error(S3ErrorCode.InvalidArgument, "Content-Length is negative")
    return length


def request_body(ctx: RequestContext) -> tuple[AsyncIterator[bytes], int | None]:
    """(decoded body stream, decoded size when known)."""
    headers = ctx.request.headers
    wire_length = _declared_length(ctx)
    chunked_te = "chunked" in headers.get("Transfer-Encoding", "").lower()
    if wire_length is None and not chunked_te:
        raise S3Error(S3ErrorCode.MissingContentLength)
    mode = ctx.auth.payload_mode if ctx.auth is not None else PayloadMode.UNSIGNED
    if mode in (
        PayloadMode.STREAMING_SIGNED,
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
        PayloadMode.STREAMING_SIGNED_TRAILER,
    ):
        decoded = headers.get("x-amz-decoded-content-length")
        size = int(decoded) if decoded and decoded.isdigit() else None
        return _decode_chunked(ctx), size
    if mode is PayloadMode.SIGNED_HEX:
        return _verified(ctx, ctx.auth.declared_sha256), wire_length
    return _raw(ctx), wire_length


async def _raw(ctx: RequestContext) -> AsyncIterator[bytes]:
    async for piece in ctx.request.content.iter_chunked(READ_SIZE):
        ctx.bytes_in += len(piece)
        yield piece


async def _verified(ctx: RequestContext, declared: str) -> AsyncIterator[bytes]:
    digest = hashlib.sha256()
    async for piece in _raw(ctx):
        digest.update(piece)
        yield piece
    if digest.hexdigest() != declared:
        raise S3Error(S3ErrorCode.XAmzContentSHA256Mismatch)


async def _decode_chunked(ctx: RequestContext) -> AsyncIterator[bytes]:
    decoder = ChunkedDecoder.for_auth(ctx.auth)
    async for piece in _raw(ctx):
        for data in decoder.feed(piece):
            yield data
    decoder.close()


async def read_small_body(ctx: RequestContext, limit: int = MAX_SMALL_BODY) -> bytes:
    """A whole (configuration) body, verified like any other, at most ``limit`` bytes."""
    if not ctx.request.can_read_body:
        return b""
    stream, _ = request_body(ctx)
    out = bytearray()
    async for piece in stream:
        out += piece
        if len(out) > limit:
            raise S3Error(S3ErrorCode.EntityTooLarge, "The request body is too large")
    return bytes(out)
