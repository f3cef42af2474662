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

Memory per writer: the chunker tail (< max_size), the piece being fed, and at
most ``write_window`` chunks being hashed, compressed or stored. CPU work runs
in the shared ``CpuPool``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

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
        if self._chunker.wants_cut(len(piece)):
            chunks = await self.cpu.run(self._chunker.feed, piece)
        else:
            chunks = self._chunker.feed(piece)
        for chunk in chunks:
            await self._submit(chunk)

    async def finish(self) -> Manifest:
        """Store the last chunks; the manifest once every chunk is referenced."""
        self._raise_if_failed()
        for chunk in self._chunker.finish():
            await self._submit(chunk)
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
    async def _submit(self, chunk: bytes) -> None:
        await self._window.acquire()
        self._raise_if_failed(release=True)
        index = len(self._entries)
        self._entries.append(None)
        task = asyncio.ensure_future(self._store_chunk(index, chunk))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._window.release()
        if not task.cancelled() and task.exception() is not None and self._failed is None:
            self._failed = task.exception()

    async def _store_chunk(self, index: int, raw: bytes) -> None:
        cfg, dicts = self.config, self.store.dictionaries
        zdict = None
        if cfg.use_dictionary:
            await dicts.settle(self.tier)
            zdict = dicts.known(self.tier)
        enc: EncodedChunk = await self.cpu.run(
            encode_chunk, raw, cfg.zstd_level, cfg.min_saving, zdict
        )
        if cfg.use_dictionary and enc.codec is Codec.ZSTD:
            await dicts.offer(self.tier, raw, self.cpu)  # trains once enough is sampled
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
