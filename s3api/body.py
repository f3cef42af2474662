"""Request bodies as bounded async streams, with the payload checks SigV4 asks for.

The signed payload hash (``x-amz-content-sha256``) is verified while the body
streams; a mismatch is raised on the last piece, before the engine commits
anything, so a tampered body is never stored. aws-chunked bodies are decoded
(and each chunk signature checked) by the pure decoder in ``s3api.chunked``.

Additional checksums (``x-amz-checksum-*`` in a header or in the aws-chunked
trailer) are computed on the decoded bytes and compared at the end of the
body, with the same rule: a mismatch raises before anything is committed.
``open_body`` also hands back the computed values, for the object entry.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from s3api import checksums
from s3api.checksums import ChecksumVerifier
from s3api.chunked import ChunkedDecoder
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4 import PayloadMode

READ_SIZE = 1024 * 1024  # fewer, larger pieces: per-piece hashing hops dominate
MAX_SMALL_BODY = 1024 * 1024  # XML configuration bodies
# Hash pieces at least this large off the event loop (hashlib releases the GIL).
_OFFLOAD_HASH_BYTES = 256 * 1024


@dataclass(slots=True)
class RequestBody:
    """A decoded, verified body stream; ``checksums`` is filled once it has been read."""

    stream: AsyncIterator[bytes]
    size: int | None  # decoded size when known
    verifier: ChecksumVerifier

    @property
    def checksums(self) -> dict[str, str]:
        """{algorithm: base64} of the whole body (empty until the stream is exhausted)."""
        return self.verifier.results


def content_md5(ctx: RequestContext) -> bytes | None:
    """The Content-MD5 digest a request announced; InvalidDigest if it is malformed."""
    value = ctx.request.headers.get("Content-MD5")
    if value is None:
        return None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error(S3ErrorCode.InvalidDigest)
    return digest


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
    """(decoded body stream, decoded size when known); announced checksums are verified."""
    body = open_body(ctx)
    return body.stream, body.size


def open_body(ctx: RequestContext, default_checksum: str | None = None) -> RequestBody:
    """The body, verified against every digest the request announced.

    ``default_checksum`` is computed when the request announced no checksum
    (PutObject stores one for every object, as S3 does).
    """
    verifier = ChecksumVerifier(checksums.parse_request(ctx.request.headers), default_checksum)
    stream, size, trailers = _decoded_body(ctx)
    return RequestBody(hashed(stream, verifier, trailers), size, verifier)


def _no_trailers() -> Mapping[str, str]:
    return {}


def _decoded_body(
    ctx: RequestContext,
) -> tuple[AsyncIterator[bytes], int | None, Callable[[], Mapping[str, str]]]:
    """(stream, size, trailers once the stream is exhausted)."""
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
        decoder = ChunkedDecoder.for_auth(ctx.auth)
        return _decode_chunked(ctx, decoder), size, lambda: decoder.trailers
    if mode is PayloadMode.SIGNED_HEX:
        return _verified(ctx, ctx.auth.declared_sha256), wire_length, _no_trailers
    return _raw(ctx), wire_length, _no_trailers


async def _raw(ctx: RequestContext) -> AsyncIterator[bytes]:
    """The body in pieces of READ_SIZE (the last may be shorter): the socket hands
    over ~64 KiB at a time, and every piece costs the layers above a hashing hop."""
    pending = bytearray()
    async for piece in ctx.request.content.iter_chunked(READ_SIZE):
        ctx.bytes_in += len(piece)
        if not pending and len(piece) >= READ_SIZE:
            yield piece
            continue
        pending += piece
        if len(pending) >= READ_SIZE:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


async def _verified(ctx: RequestContext, declared: str) -> AsyncIterator[bytes]:
    digest = hashlib.sha256()
    async for piece in _raw(ctx):
        digest.update(piece)
        yield piece
    if digest.hexdigest() != declared:
        raise S3Error(S3ErrorCode.XAmzContentSHA256Mismatch)


async def _decode_chunked(ctx: RequestContext, decoder: ChunkedDecoder) -> AsyncIterator[bytes]:
    async for piece in _raw(ctx):
        for data in decoder.feed(piece):
            yield data
    decoder.close()


async def hashed(
    stream: AsyncIterator[bytes],
    verifier: ChecksumVerifier,
    trailers: Callable[[], Mapping[str, str]] = _no_trailers,
) -> AsyncIterator[bytes]:
    """Hash the pieces as they pass; check the result after the last one (before any commit)."""
    if not verifier.active:
        async for piece in stream:
            yield piece
        return
    offload = not verifier.fast
    async for piece in stream:
        if offload and len(piece) >= _OFFLOAD_HASH_BYTES:
            await asyncio.to_thread(verifier.update, piece)
        else:
            verifier.update(piece)
        yield piece
    verifier.finish(trailers())


async def read_small_body(
    ctx: RequestContext, limit: int = MAX_SMALL_BODY, *, checksums_describe_body: bool = True
) -> bytes:
    """A whole (configuration) body, verified like any other, at most ``limit`` bytes.

    Content-MD5 is checked here too: S3 verifies it on every request that has one.
    ``checksums_describe_body=False``: the request's ``x-amz-checksum-*`` headers
    are about something else (CompleteMultipartUpload: the object), not this body.
    """
    md5 = content_md5(ctx)
    if not ctx.request.can_read_body:
        return b""
    if checksums_describe_body:
        stream, _ = request_body(ctx)
    else:
        stream, _, _ = _decoded_body(ctx)
    out = bytearray()
    async for piece in stream:
        out += piece
        if len(out) > limit:
            raise S3Error(S3ErrorCode.EntityTooLarge, "The request body is too large")
    if md5 is not None:
        calculated = hashlib.md5(out).digest()
        if calculated != md5:
            raise S3Error(
                S3ErrorCode.BadDigest,
                CalculatedDigest=base64.b64encode(calculated).decode(),
                ExpectedDigest=ctx.request.headers["Content-MD5"],
            )
    return bytes(out)
