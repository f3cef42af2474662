"""Object payloads: stream a body into fixed-size stripes and stream stripes back out.

Memory stays bounded by (stripes in flight + 1) x stripe size per request,
whatever the object size: bodies are consumed piece by piece and stripes are
written as soon as they fill, with a small window of concurrent writes so
the network read of the next stripe overlaps the backend write of the last.
Hashing runs in a worker thread for large pieces (hashlib releases the GIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from engine import layout
from engine.chunked import ChunkedPayloads, ChunkedWriter
from engine.errors import BadDigest, EntityTooLarge, IncompleteBody
from engine.records import Segment
from engine.release_queue import ReleaseQueue
from storage import ObjectNotFound, Pool

# Hash pieces at least this large off the event loop; smaller ones are cheaper inline.
_OFFLOAD_HASH_BYTES = 256 * 1024
MAX_OBJECT_SIZE = 5 * 1024**4  # 5 TiB, as S3

# Asked once a body outgrows the inline limit: a chunked (dedupe) writer for
# it, or None to write stripes.
ChunkedFactory = Callable[[], Awaitable[ChunkedWriter | None]]


class PayloadWriter:
    """Consumes a body; keeps it inline if small, else writes stripes to the data pool."""

    def __init__(
        self,
        data: Pool,
        data_prefix: str,
        *,
        inline_limit: int,
        stripe_size: int,
        window: int = 2,
        chunked: ChunkedFactory | None = None,
    ) -> None:
        self.data = data
        self.data_prefix = data_prefix
        self.inline_limit = inline_limit
        self.stripe_size = stripe_size
        self.window = asyncio.Semaphore(window)
        self.md5 = hashlib.md5()
        self.size = 0
        self.stripes = 0
        self.inline: bytes | None = None
        self._buf = bytearray()
        self._pending: set[asyncio.Task] = set()
        self._chunked_factory = chunked
        self._chunked: ChunkedWriter | None = None
        self._chunked_segment: Segment | None = None

    async def consume(
        self,
        body: AsyncIterator[bytes],
        expected_size: int | None,
        content_md5: bytes | None = None,
    ) -> None:
        """Read the whole body; raise (after cleaning up stripes) if it is bad."""
        try:
            async for piece in body:
                await self._take(piece)
                if self.size > MAX_OBJECT_SIZE:
                    raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size")
            if expected_size is not None and self.size != expected_size:
                raise IncompleteBody(
                    "You did not provide the number of bytes specified by the "
                    "Content-Length HTTP header."
                )
            await self._finish()
            if content_md5 is not None and self.md5.digest() != content_md5:
                raise BadDigest("The Content-MD5 you specified did not match what we received.")
        except BaseException:
            await self.discard()
            raise

    @property
    def etag(self) -> str:
        return f'"{self.md5.hexdigest()}"'

    @property
    def segment(self) -> Segment | None:
        """The payload written (None when the body stays inline)."""
        if self.inline is not None:
            return None
        if self._chunked_segment is not None:
            return self._chunked_segment
        return Segment(self.data_prefix, self.size, self.stripe_size, self.stripes)

    async def _take(self, piece: bytes) -> None:
        if not piece:
            return
        self.size += len(piece)
        if len(piece) >= _OFFLOAD_HASH_BYTES:
            await asyncio.to_thread(self.md5.update, piece)
        else:
            self.md5.update(piece)
        if self._chunked is not None:
            await self._chunked.write(piece)
            return
        self._buf += piece
        if await self._switch_to_chunks():
            return
        while len(self._buf) >= self.stripe_size:
            stripe = bytes(self._buf[: self.stripe_size])
            del self._buf[: self.stripe_size]
            await self._write_stripe(stripe)

    async def _switch_to_chunks(self) -> bool:
        """Past the inline limit, hand the body to a chunked writer if dedupe is on."""
        factory = self._chunked_factory
        if factory is None or self.stripes or len(self._buf) <= self.inline_limit:
            return False
        self._chunked_factory = None
        self._chunked = await factory()
        if self._chunked is None:
            return False
        buffered, self._buf = bytes(self._buf), bytearray()
        await self._chunked.write(buffered)
        return True

    async def _finish(self) -> None:
        if self._chunked is not None:
            self._chunked_segment = await self._chunked.finish()
            return
        if self.stripes == 0 and len(self._buf) <= self.inline_limit:
            self.inline = bytes(self._buf)
        elif self._buf:
            await self._write_stripe(bytes(self._buf))
        self._buf = bytearray()
        if self._pending:
            await asyncio.gather(*self._pending)

    async def _write_stripe(self, stripe: bytes) -> None:
        await self.window.acquire()
        oid = layout.stripe_oid(self.data_prefix, self.stripes)
        self.stripes += 1
        task = asyncio.ensure_future(self.data.write_full(oid, stripe))
        self._pending.add(task)
        task.add_done_callback(lambda t: (self._pending.discard(t), self.window.release()))
        # Surface a failed earlier write promptly instead of at the end.
        for done in [t for t in self._pending if t.done()]:
            done.result()

    async def discard(self) -> None:
        """Remove every stripe this writer created (after a failed or replaced upload)."""
        for t in list(self._pending):
            t.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await remove_stripes(self.data, self.data_prefix, self.stripes)
        if self._chunked is not None:
            await self._chunked.discard()


@dataclass(slots=True)
class PayloadStore:
    """Reads and removes payload segments of either kind (stripes or chunk manifests)."""

    data: Pool
    chunked: ChunkedPayloads | None = None
    # Large releases go through the durable queue (engine.release_queue).
    queue: ReleaseQueue | None = None

    async def release(self, segments: list[Segment]) -> None:
        """Release what a committed change made garbage: inline, or queued when large."""
        if self.queue is None:
            await self.remove(segments)
        else:
            await self.queue.release(segments)

    async def read(self, segments: list[Segment], start: int, end: int) -> AsyncIterator[bytes]:
        base = 0
        for seg in segments:
            lo, hi = max(start, base), min(end, base + seg.size)
            if lo < hi:
                async for piece in self._read_one(seg, lo - base, hi - base):
                    yield piece
            base += seg.size
            if base >= end:
                return

    def _read_one(self, seg: Segment, start: int, end: int) -> AsyncIterator[bytes]:
        if seg.is_chunked:
            return self._chunks().read(seg, start, end)
        return read_stripes(self.data, seg.data_prefix, seg.stripe_size, start, end)

    async def remove(self, segments: list[Segment]) -> None:
        """Release what a replaced or deleted entry (or unused part) pointed at."""
        for seg in segments:
            if seg.is_chunked:
                await self._chunks().release(seg)
            else:
                await remove_stripes(self.data, seg.data_prefix, seg.stripes)

    def _chunks(self) -> ChunkedPayloads:
        if self.chunked is None:
            raise RuntimeError("a chunked segment, but this engine has no chunk store")
        return self.chunked


async def remove_stripes(data: Pool, data_prefix: str, count: int) -> None:
    sem = asyncio.Semaphore(16)

    async def rm(n: int) -> None:
        async with sem:
            with contextlib.suppress(ObjectNotFound):
                await data.remove(layout.stripe_oid(data_prefix, n))

    await asyncio.gather(*(rm(n) for n in range(count)))


async def read_stripes(
    data: Pool,
    data_prefix: str,
    stripe_size: int,
    start: int,
    end: int,
    piece_size: int = 1024 * 1024,
    read_ahead: int = 2,
) -> AsyncIterator[bytes]:
    """Yield bytes [start, end) of a striped payload, reading ahead a bounded amount."""
    reads: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        n, off = divmod(pos, stripe_size)
        length = min(piece_size, stripe_size - off, end - pos)
        reads.append((n, off, length))
        pos += length
    queue: list[asyncio.Task] = []
    try:
        for i, (n, _off, length) in enumerate(reads):
            while len(queue) <= read_ahead and i + len(queue) < len(reads):
                rn, roff, rlen = reads[i + len(queue)]
                oid = layout.stripe_oid(data_prefix, rn)
                queue.append(asyncio.ensure_future(data.read(oid, roff, rlen)))
            chunk = await queue.pop(0)
            if len(chunk) != length:
                raise OSError(f"stripe {n} of {data_prefix} is short: {len(chunk)} < {length}")
            yield chunk
    finally:
        for t in queue:
            t.cancel()
