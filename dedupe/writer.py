"""Stream a body into deduplicated, compressed chunks and build its manifest.

Usage by the engine (write order: chunks and references, then the caller's
manifest, then the caller's index entry)::

    writer = DedupeWriter(store, owner=f"{bucket_id}.{uuid}", config=cfg, cpu=cpu)
    try:
        async for piece in body:
            await writer.write(piece)
        manifest = await writer.finish()   # every chunk stored and referenced
    except BaseException:
        await writer.abort()               # drop the references taken so far
        raise
    # caller: store encode_manifest(manifest), then commit the index entry

Memory per writer: the chunker tail (< max_size), the piece being fed and the
chunks cut from it, and at most ``write_window`` chunks being stored. CPU work
(cutting, hashing, compressing: one job per piece) runs in the shared ``CpuPool``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from dedupe import failpoints
from dedupe.chunk_format import Codec, EncodedChunk, encode_chunk
from dedupe.chunker import StreamChunker
from dedupe.config import DedupeConfig
from dedupe.errors import DedupeError
from dedupe.manifest import Manifest, ManifestEntry
from dedupe.store import ChunkStore
from dedupe.workers import CpuPool


class DedupeWriter:
    def __init__(
        self,
        store: ChunkStore,
        owner: str,
        *,
        config: DedupeConfig,
        cpu: CpuPool,
        tier: str | None = None,
    ) -> None:
        self.store = store
        self.owner = owner
        self.config = config
        self.cpu = cpu
        self.tier = tier or store.default_tier
        self.size = 0
        self._chunker = StreamChunker(config.chunking)
        self._entries: list[ManifestEntry | None] = []
        self._window = asyncio.Semaphore(config.write_window)
        self._tasks: set[asyncio.Task] = set()
        # fingerprint -> the store call referencing it (a repeat within this
        # upload awaits that instead of storing again)
        self._referenced: dict[bytes, asyncio.Future] = {}
        self._ref_first = False
        self._failed: BaseException | None = None
        self._finished = False
        self._stopped = False

    async def write(self, piece: bytes) -> None:
        """Take the next piece of the body (any size)."""
        self._raise_if_failed()
        if not piece:
            return
        if self.size == 0 and self.config.use_dictionary:
            await self.store.dictionaries.current(self.tier)  # refresh from the pool
        self.size += len(piece)
        if not self._chunker.wants_cut(len(piece)):
            self._chunker.feed(piece)  # only buffers: no chunk can be final yet
            return
        for enc, raw in await self._encode(self._chunker.feed, piece):
            await self._submit(enc, raw)

    async def finish(self) -> Manifest:
        """Store the last chunks; the manifest once every chunk is referenced."""
        self._raise_if_failed()
        for enc, raw in await self._encode(self._chunker.finish):
            await self._submit(enc, raw)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._raise_if_failed()
        await failpoints.hit("writer.before_finish")
        self._finished = True
        return Manifest(self.owner, [e for e in self._entries if e is not None])

    async def consume(self, body: AsyncIterator[bytes]) -> Manifest:
        """write() every piece, then finish(); on any failure abort() and re-raise."""
        try:
            async for piece in body:
                await self.write(piece)
            return await self.finish()
        except BaseException:
            await self.abort()
            raise

    async def cancel(self) -> None:
        """Stop chunk work, keeping the references taken (as a crash would).

        Chunks not yet sent are dropped; store calls already sent are awaited,
        not cancelled: a cancelled backend call may still land afterwards, and
        abort() must drop references only once none can appear any more.
        """
        self._stopped = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def abort(self) -> None:
        """Stop, then drop every reference this writer took (chunks go to GC)."""
        await self.cancel()
        # Every fingerprint we tried: an interrupted add may have landed, and
        # dropping a reference that is not there is harmless.
        tried = [ManifestEntry(fp, 0, Codec.RAW, self.tier) for fp in self._referenced]
        await self.store.release(Manifest(self.owner, tried))

    # --- internals --------------------------------------------------------------
    async def _encode(
        self, cut: Callable[..., list[bytes]], *args: bytes
    ) -> list[tuple[EncodedChunk, bytes | None]]:
        """Cut and encode in one CpuPool job: one thread hop per piece, not per chunk.

        Each result keeps its raw bytes only while the tier still learns its
        dictionary from them.
        """
        cfg, dicts = self.config, self.store.dictionaries
        zdict, sample = None, False
        if cfg.use_dictionary:
            await dicts.settle(self.tier)
            zdict, sample = dicts.known(self.tier), dicts.wants_samples(self.tier)

        def job() -> list[tuple[EncodedChunk, bytes | None]]:
            return [
                (encode_chunk(raw, cfg.zstd_level, cfg.min_saving, zdict), raw if sample else None)
                for raw in cut(*args)
            ]

        return await self.cpu.run(job)

    async def _submit(self, enc: EncodedChunk, raw: bytes | None) -> None:
        await self._window.acquire()
        self._raise_if_failed(release=True)
        index = len(self._entries)
        self._entries.append(None)
        task = asyncio.ensure_future(self._store_chunk(index, enc, raw))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._window.release()
        if not task.cancelled() and task.exception() is not None and self._failed is None:
            self._failed = task.exception()

    async def _store_chunk(self, index: int, enc: EncodedChunk, raw: bytes | None) -> None:
        if raw is not None and enc.codec is Codec.ZSTD:
            await self.store.dictionaries.offer(self.tier, raw, self.cpu)  # trains once
        if self._stopped:
            raise DedupeError("writer stopped")
        pending = self._referenced.get(enc.fingerprint)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._referenced[enc.fingerprint] = pending
            try:
                created = await self.store.put(
                    self.tier, enc, self.owner, ref_first=self._ref_first
                )
            except asyncio.CancelledError:
                pending.cancel()
                raise
            except BaseException as e:
                pending.set_exception(e)
                pending.exception()  # mark retrieved: the task itself reports it
                raise
            pending.set_result(True)
            # Duplicates come in runs: after one, try the cheap reference add first.
            self._ref_first = not created
            await failpoints.hit("writer.chunk_stored")
        else:
            await asyncio.shield(pending)
        self._entries[index] = ManifestEntry(
            enc.fingerprint, enc.raw_len, enc.codec, self.tier, enc.stored_len
        )

    def _raise_if_failed(self, release: bool = False) -> None:
        if self._failed is not None:
            if release:
                self._window.release()
            raise self._failed
        if self._finished:
            raise DedupeError("writer already finished")
