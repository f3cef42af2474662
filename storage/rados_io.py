"""Plumbing for the RADOS backend: the librados-aio -> asyncio bridge, errno mapping,
the encoding of ``cls_cmpomap`` guards and the protocol WriteOp -> librados
WriteOp translation (the guard strategy is explained in ``storage.rados``).

python-rados completes aio calls on librados' finisher threads; ``AioBridge`` queues
each completion and wakes the event loop once per batch (one
``loop.call_soon_threadsafe`` for all completions that arrive before the loop
runs, not one self-pipe write and loop wake-up per operation), and bounds the
number of operations in flight. Calls that python-rados only offers
synchronously run on a small dedicated thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import struct
import threading
from collections import deque
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
from storage.protocol import CmpOp, WriteOp

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


def describe(what: str | tuple) -> str:
    """``what`` names the call; hot paths pass a tuple, joined only on error."""
    if isinstance(what, tuple):
        op, pool, oid = what
        return f"{op} {pool}/{oid}"
    return what


def error_from_errno(err: int, what: str | tuple) -> StorageError:
    """Map a (positive) librados errno to the storage layer's typed errors."""
    msg = f"{describe(what)}: {os.strerror(err)} (errno {err})"
    if err == errno.ENOENT:
        exc: StorageError = ObjectNotFound(msg)
    elif err == errno.EEXIST:
        exc = ObjectExists(msg)
    elif err in _GUARD:
        exc = GuardFailed(msg)
    elif err == errno.ENODATA:
        exc = NoSuchAttribute(msg)
    elif err in _UNAVAILABLE:
        if err == errno.ETIMEDOUT:
            msg += " - the Ceph cluster did not answer within the client's op timeout"
        exc = BackendUnavailable(msg)
    else:
        exc = StorageError(msg)
    exc.errno = err  # type: ignore[attr-defined]  # callers may need the exact cause
    return exc


def translate(exc: rados.Error, what: str | tuple) -> StorageError:
    err = getattr(exc, "errno", None)
    if not err:
        return StorageError(f"{describe(what)}: {exc}")
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


# --- WriteOp translation ---------------------------------------------------
def server_guards(op: WriteOp) -> list[bytes]:
    """cmpomap guards for EQ/NE omap_cmp (checked by the OSD, binary-safe)."""
    eq: dict[str, bytes] = {}
    ne: dict[str, bytes] = {}
    out: list[bytes] = []
    for key, value, cmp in op.omap_guards:
        group = eq if cmp is CmpOp.EQ else ne
        if key in group:  # same key twice: separate calls, both must hold
            code = CMPOMAP_EQ if cmp is CmpOp.EQ else CMPOMAP_NE
            out.append(encode_cmp_vals(code, [(key, value)]))
        else:
            group[key] = value
    if eq:
        out.append(encode_cmp_vals(CMPOMAP_EQ, eq.items()))
    if ne:
        out.append(encode_cmp_vals(CMPOMAP_NE, ne.items()))
    return out


def build_write_op(
    io: rados.Ioctx, w: rados.WriteOp, op: WriteOp, omap_guards: list[bytes]
) -> None:
    """Translate a protocol WriteOp into librados steps: guards first, then mutations."""
    writes = bool(op.steps) or op.exclusive_create is not None
    # Like the local backend, every guard but create needs the object to exist
    # before the op (a missing object -> ObjectNotFound, not GuardFailed).
    if op.must_exist or op.expected_version is not None or op.omap_guards:
        if writes:
            io.remove_omap_keys(w, ())  # ENOENT if missing; no-op otherwise
        else:
            w.execute("cmpomap", "cmp_vals", CMP_NOTHING)
    if op.exclusive_create is not None:
        excl = op.exclusive_create
        w.new(rados.LIBRADOS_CREATE_EXCLUSIVE if excl else rados.LIBRADOS_CREATE_IDEMPOTENT)
    if op.expected_version is not None:
        if op.expected_version > 0:
            w.assert_version(op.expected_version)
        else:  # versions start at 1; librados rejects 0 with EINVAL
            w.execute("cmpomap", "cmp_vals", CMP_ALWAYS_FAILS)
    for payload in omap_guards:
        w.execute("cmpomap", "cmp_vals", payload)
    for step in op.steps:
        kind = step[0]
        if kind == "write_full":
            w.write_full(step[1])
        elif kind == "write":
            w.write(step[1], step[2])
        elif kind == "append":
            w.append(step[1])
        elif kind == "truncate":
            w.truncate(step[1])
        elif kind == "set_xattr":
            w.set_xattr(step[1], step[2])
        elif kind == "rm_xattr":
            w.rm_xattr(step[1])
        elif kind == "omap_set":
            items = step[1]
            io.set_omap(w, tuple(items), tuple(items.values()))
        elif kind == "omap_rm":
            io.remove_omap_keys(w, tuple(step[1]))
        elif kind == "omap_clear":
            io.clear_omap(w)
        elif kind == "remove":
            w.remove()
        else:
            raise ValueError(f"unknown WriteOp step {kind!r}")


# --- asyncio bridge -----------------------------------------------------------
class AioBridge:
    """Runs librados aio calls and blocking calls for one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_in_flight: int, threads: int):
        self.loop = loop
        self._sem = asyncio.Semaphore(max_in_flight)
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="atonix-rados")
        self.in_flight = 0
        # Completions waiting for the loop, and whether a wake-up is already on its way.
        self._completed: deque = deque()
        self._completed_lock = threading.Lock()
        self._wake_scheduled = False

    async def aio(
        self,
        start: Callable[[Callable[..., None]], Any],
        what: str | tuple,
        cleanup: Callable[[], None] | None = None,
    ) -> tuple:
        """``start(oncomplete)`` issues one aio call; return (return value, *extra args).

        The semaphore slot is released, and ``cleanup`` (e.g. releasing a librados
        op, whose memory librados writes into until it completes) runs, when
        librados completes the call, not when the caller stops waiting: a cancelled
        caller can neither exceed the in-flight bound nor free memory in use.
        """
        await self._sem.acquire()
        fut = self.loop.create_future()

        def oncomplete(completion, *extra):  # librados finisher thread
            self._complete((fut, completion.get_return_value(), extra, cleanup))

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
        rv, extra = await fut
        if rv < 0:
            raise error_from_errno(-rv, what)
        return (rv, *extra)

    def _complete(self, done: tuple) -> None:
        """Queue one completion (finisher thread); wake the loop unless a wake-up is due."""
        with self._completed_lock:
            self._completed.append(done)
            if self._wake_scheduled:
                return
            self._wake_scheduled = True
        # RuntimeError: the loop is closed, so nobody is waiting any more
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._finish_completed)

    def _finish_completed(self) -> None:
        with self._completed_lock:
            batch, self._completed = self._completed, deque()
            self._wake_scheduled = False
        for fut, rv, extra, cleanup in batch:
            if cleanup is not None:
                cleanup()
            self.in_flight -= 1
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
        """Wait (bounded) until no aio call is outstanding (used by close only)."""
        deadline = self.loop.time() + timeout
        while self.in_flight and self.loop.time() < deadline:
            await asyncio.sleep(0.01)

    def run_in_pool(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """Thread-pool call without the in-flight bound (connect/shutdown)."""
        return self.loop.run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)
