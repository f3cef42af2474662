"""A bounded thread pool for the CPU work of the data path.

Chunking (pyfastcdc), SHA-256 (hashlib), XXH3 (xxhash) and zstd (zstandard)
release the GIL on large buffers, so threads give real parallelism and keep
the event loop free. ``run`` waits for a slot before submitting, so at most
``max_jobs`` jobs (and their buffers) exist at once for the whole process,
however many uploads and downloads are running.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class CpuPool:
    def __init__(self, threads: int | None = None, max_jobs: int | None = None) -> None:
        self.threads = threads or max(2, os.cpu_count() or 2)
        self.max_jobs = max_jobs or 4 * self.threads
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="dedupe-cpu")
        self._slots: asyncio.Semaphore | None = None

    async def run(self, fn: Callable[..., T], *args) -> T:
        if self._slots is None:  # created lazily: bound to the running loop
            self._slots = asyncio.Semaphore(self.max_jobs)
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
