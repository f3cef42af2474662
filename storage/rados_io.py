"""Plumbing for the RADOS backend: the librados-aio -> asyncio bridge, errno mapping
and the encoding of ``cls_cmpomap`` guards.

python-rados completes aio calls on librados' finisher threads; ``AioBridge`` turns
each completion into an asyncio future result with ``loop.call_soon_threadsafe``
and bounds the number of operations in flight. Calls that python-rados only offers
synchronously run on a small dedicated thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import struct
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import rados

from storage.errors import (
    BackendUnavailable,
    GuardFailed,
    NoSuchAttribute,
    ObjectExists,
    ObjectNotFound,
    PoolNotFound,
    StorageError,
)

# errnos that mean "the cluster cannot be reached / used right now"
_UNAVAILABLE = {
    errno.ETIMEDOUT,
    errno.ESHUTDOWN,  # also librados' EBLOCKLISTED
    errno.ENOTCONN,
    errno.ECONNREFUSED,
    errno.EHOSTUNREACH,
    errno.ECONNRESET,
}
# ECANCELED: a cmpomap/omap_cmp guard failed; ERANGE/EOVERFLOW: assert_version
# found a newer/older object version.
_GUARD = {errno.ECANCELED, errno.ERANGE, errno.EOVERFLOW}


def error_from_errno(err: int, what: str) -> StorageError:
    """Map a (positive) librados errno to the storage layer's typed errors."""
    msg = f"{what}: {os.strerror(err)} (errno {err})"
    if err == errno.ENOENT:
        exc: StorageError = ObjectNotFound(msg)
    elif err == errno.EEXIST:
        exc = ObjectExists(msg)
    elif err in _GUARD:
        exc = GuardFailed(msg)
    elif err == errno.ENODATA:
        exc = NoSuchAttribute(msg)
    elif err in _UNAVAILABLE:
        exc = BackendUnavailable(msg)
    else:
        exc = StorageError(msg)
    exc.errno = err  # type: ignore[attr-defined]  # callers may need the exact cause
    return exc


def translate(exc: rados.Error, what: str) -> StorageError:
    err = getattr(exc, "errno", None)
    if not err:
        return StorageError(f"{what}: {exc}")
    return error_from_errno(abs(err), what)


def pool_error(exc: StorageError, pool: str) -> StorageError:
    """Opening an ioctx reports a missing pool as ENOENT: make it PoolNotFound."""
    if isinstance(exc, ObjectNotFound):
        return PoolNotFound(f"pool {pool!r} does not exist")
    return exc


# --- cls_cmpomap -----------------------------------------------------------
# librados' own omap_cmp cannot express the protocol: a missing key compares as
# b"" (so EQ b"" passes on a missing key), NE is rejected with EINVAL and
# python-rados only accepts str values. cls_cmpomap (in the OSD's default class
# list since Pacific) fails with ECANCELED on a missing key, supports NE and takes
# binary values. Its comparison is ``input <op> stored``.
CMPOMAP_EQ = rados.LIBRADOS_CMPXATTR_OP_EQ
CMPOMAP_NE = rados.LIBRADOS_CMPXATTR_OP_NE
CMPOMAP_GT = rados.LIBRADOS_CMPXATTR_OP_GT
_MODE_STRING = 1  # CEPH_OSD_CMPXATTR_MODE_STRING


def _u32(n: int) -> bytes:
    return struct.pack("<I", n)


def encode_cmp_vals(op: int, items: Iterable[tuple[str, bytes]]) -> bytes:
    """Ceph encoding of ``cls::cmpomap::cmp_vals_op`` (versioned struct v1)."""
    pairs = sorted(((k.encode(), bytes(v)) for k, v in items), key=lambda kv: kv[0])
    body = [struct.pack("<BB", _MODE_STRING, op), _u32(len(pairs))]
    for k, v in pairs:
        body += [_u32(len(k)), k, _u32(len(v)), v]
    body.append(b"\x00")  # no default_value: a missing key fails the comparison
    payload = b"".join(body)
    return struct.pack("<BB", 1, 1) + _u32(len(payload)) + payload


# No keys: passes on any object. In a read-only op RADOS answers ENOENT for a
# missing object, which makes it a side-effect-free "assert exists".
CMP_NOTHING = encode_cmp_vals(CMPOMAP_EQ, [])
# ``b"" > stored`` never holds (and a missing key fails too): a guard that always
# fails with ECANCELED, evaluated after the existence/create/version guards.
CMP_ALWAYS_FAILS = encode_cmp_vals(CMPOMAP_GT, [("atonix.never", b"")])


# --- asyncio bridge -----------------------------------------------------------
class AioBridge:
    """Runs librados aio calls and blocking calls for one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_in_flight: int, threads: int):
        self.loop = loop
        self._sem = asyncio.Semaphore(max_in_flight)
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="atonix-rados")
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def aio(
        self,
        start: Callable[[Callable[..., None]], Any],
        what: str,
        cleanup: Callable[[], None] | None = None,
    ) -> tuple:
        """``start(oncomplete)`` issues one aio call; return (return value, *extra args).

        The semaphore slot is released, and ``cleanup`` (e.g. releasing a librados
        op, whose memory librados writes into until it completes) runs, when
        librados completes the call, not when the caller stops waiting: a cancelled
        caller can neither exceed the in-flight bound nor free memory in use.
        """
        await self._sem.acquire()
        loop = self.loop
        fut = loop.create_future()

        def oncomplete(completion, *extra):  # librados finisher thread
            rv = completion.get_return_value()
            # RuntimeError: the loop is closed, so nobody is waiting any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._finish, fut, rv, extra, cleanup)

        try:
            start(oncomplete)
        except BaseException as e:
            self._sem.release()
            if cleanup is not None:
                cleanup()
            if isinstance(e, rados.Error):
                raise translate(e, what) from e
            raise
        self.in_flight += 1
        self._idle.clear()
        rv, extra = await fut
        if rv < 0:
            raise error_from_errno(-rv, what)
        return (rv, *extra)

    def _finish(self, fut: asyncio.Future, rv: int, extra: tuple, cleanup) -> None:
        if cleanup is not None:
            cleanup()
        self.in_flight -= 1
        if not self.in_flight:
            self._idle.set()
        self._sem.release()
        if not fut.done():
            fut.set_result((rv, extra))

    async def blocking(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a synchronous python-rados call on the thread pool."""
        async with self._sem:
            try:
                return await self.loop.run_in_executor(self._executor, fn, *args)
            except rados.Error as e:
                raise translate(e, what) from e

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until no aio call is outstanding."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    def run_in_pool(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Thread-pool call without the in-flight bound (connect/shutdown)."""
        return self.loop.run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)
