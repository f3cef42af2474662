"""Streaming content-defined chunking (FastCDC, via pyfastcdc).

pyfastcdc cuts whole buffers. Its cut function looks at most ``max_size`` bytes
past a chunk's start and nothing before it, so a cut found with at least
``max_size`` bytes available after the chunk start is *final*: more input can
never move it. ``StreamChunker`` keeps the unfinished tail (under ``max_size``
bytes) and emits only final chunks, so the boundaries are the same however
the stream is split into ``feed()`` calls, and memory stays bounded by the tail
plus the piece being fed.

Pure and synchronous: the writer runs ``feed`` in a worker thread (pyfastcdc's
cut loop releases the GIL).
"""

from __future__ import annotations

from pyfastcdc import FastCDC

from dedupe.config import ChunkingConfig


class StreamChunker:
    """Feed bytes in any pieces; get the same content-defined chunks out."""

    def __init__(self, config: ChunkingConfig) -> None:
        self.config = config
        self._cdc = FastCDC(
            config.avg_size,
            min_size=config.min_size,
            max_size=config.max_size,
            normalized_chunking=config.normalized_chunking,
        )
        self._tail = bytearray()
        # Cut only once this much is buffered: each cut pass then emits many
        # chunks and re-scans at most one max_size tail.
        self._cut_at = 2 * config.max_size

    @property
    def buffered(self) -> int:
        return len(self._tail)

    def wants_cut(self, extra: int) -> bool:
        """Whether feeding ``extra`` more bytes would run a cut pass (worth a thread)."""
        return len(self._tail) + extra >= self._cut_at

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Buffer ``data``; return the chunks that became final."""
        self._tail += data
        if len(self._tail) < self._cut_at:
            return []
        return self._cut(final=False)

    def finish(self) -> list[bytes]:
        """The remaining chunks (the last one may be shorter than min_size)."""
        return self._cut(final=True) if self._tail else []

    def _cut(self, final: bool) -> list[bytes]:
        buf = self._tail
        limit = len(buf) if final else len(buf) - self.config.max_size
        out: list[bytes] = []
        consumed = 0
        chunk = None
        cuts = self._cdc.cut_buf(buf)
        for chunk in cuts:
            if chunk.offset > limit or (chunk.offset == limit and not final):
                break
            out.append(bytes(chunk.data))
            consumed = chunk.offset + chunk.length
        # The cutter holds views of the buffer: drop them before resizing it.
        del cuts, chunk
        del buf[:consumed]
        return out


def chunk_all(data: bytes, config: ChunkingConfig) -> list[bytes]:
    """Chunks of a whole buffer (reference for tests and benchmarks)."""
    chunker = StreamChunker(config)
    return chunker.feed(data) + chunker.finish()
