"""One runner across all gateways: a lease on a guarded storage object, taken over on expiry.

Background work that must run once per deployment (the chunk collector
today; the tiering mover, replication shippers and backup runner next) holds
a ``Lease`` named after it. The lease is the omap of ``lease.<name>`` in the
meta pool, three keys changed only by guarded compare-and-swap on the
generation, so it works the same on every backend and across processes:

- ``gen``: bumped by every acquisition. Holders may pass it on as a fencing
  token; a renewal or release guarded on an old generation fails.
- ``holder``: who holds it (a name plus a random suffix per ``Lease``).
- ``exp``: when it lapses (wall-clock seconds of the engine's ``Clock``).

A holder renews (``hold`` does so every third of the time-to-live). A
holder that dies, even by kill -9, simply stops renewing: once ``exp``
passes, the next ``try_acquire`` anywhere takes it over with ``gen + 1``,
guarded on the ``gen`` and ``exp`` it saw lapse (a renewal that lands in
between wins, and the takeover fails), and the dead holder's generation
can no longer renew. Clocks of different machines may
disagree by up to the skew the time-to-live leaves room for (keep it well
above NTP's error; the default is 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.clock import SYSTEM_CLOCK, Clock
from storage import GuardFailed, ObjectExists, ObjectNotFound, Pool, WriteOp

T = TypeVar("T")

DEFAULT_TTL_S = 30.0
_GEN, _HOLDER, _EXPIRES = "gen", "holder", "exp"


class LeaseLost(Exception):
    """Another holder took the lease (this one stopped renewing in time)."""


@dataclass(frozen=True, slots=True)
class LeaseState:
    generation: int
    holder: str
    expires: float
    expires_raw: bytes  # as stored: a takeover is guarded on it


def lease_oid(name: str) -> str:
    return f"lease.{name}"


def _gen(n: int) -> bytes:
    return f"{n:016x}".encode()


class Lease:
    def __init__(
        self,
        pool: Pool,
        name: str,
        holder: str,
        *,
        ttl: float = DEFAULT_TTL_S,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.pool = pool
        self.name = name
        self.holder = f"{holder}.{secrets.token_hex(6)}"
        self.ttl = ttl
        self.clock = clock
        self.generation: int | None = None  # set while this instance holds the lease

    @property
    def held(self) -> bool:
        return self.generation is not None

    async def state(self) -> LeaseState | None:
        """The lease as stored (None if nobody ever took it)."""
        try:
            got = await self.pool.omap_get(lease_oid(self.name), [_GEN, _HOLDER, _EXPIRES])
        except ObjectNotFound:
            return None
        if _GEN not in got:
            return None
        expires = got.get(_EXPIRES, b"0")
        return LeaseState(
            int(got[_GEN], 16), got.get(_HOLDER, b"").decode(), float(expires), expires
        )

    async def try_acquire(self) -> bool:
        """Take the lease if it is free or lapsed (renew it if already ours); True if held."""
        current = await self.state()
        if current is not None and current.generation == self.generation:
            with contextlib.suppress(LeaseLost):
                await self.renew()
                return True
        self.generation = None
        if current is not None and current.expires > self.clock.time():
            return False
        new = 1 if current is None else current.generation + 1
        op = WriteOp()
        if current is None:
            op.create(exclusive=True)
        else:
            op.omap_cmp(_GEN, _gen(current.generation)).omap_cmp(_EXPIRES, current.expires_raw)
        op.omap_set(self._fields(new))
        try:
            await self.pool.operate(lease_oid(self.name), op)
        except (GuardFailed, ObjectExists, ObjectNotFound):
            return False  # another contender won this round
        self.generation = new
        return True

    async def renew(self) -> None:
        """Push the expiry out by one time-to-live; LeaseLost if it is no longer ours."""
        if self.generation is None:
            raise LeaseLost(self.name)
        op = WriteOp().omap_cmp(_GEN, _gen(self.generation)).omap_set(
            {_EXPIRES: self._expiry()}
        )
        try:
            await self.pool.operate(lease_oid(self.name), op)
        except (GuardFailed, ObjectNotFound):
            self.generation = None
            raise LeaseLost(self.name) from None

    async def release(self) -> None:
        """Let the next contender take it at once (no wait for the expiry)."""
        if self.generation is None:
            return
        op = WriteOp().omap_cmp(_GEN, _gen(self.generation)).omap_set({_EXPIRES: b"0"})
        self.generation = None
        with contextlib.suppress(GuardFailed, ObjectNotFound):
            await self.pool.operate(lease_oid(self.name), op)

    async def hold(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` while renewing the held lease; cancel it and raise LeaseLost if lost."""
        if self.generation is None:
            raise LeaseLost(self.name)
        task = asyncio.ensure_future(work())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=0)
                if task in done:
                    return task.result()
                await self._wait(task, self.ttl / 3)
                if task.done():
                    return task.result()
                await self.renew()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def run_when_held(
        self, work: Callable[[], Awaitable[T]], poll: float | None = None
    ) -> T:
        """Wait until this instance holds the lease, run ``work`` under it, then release it."""
        while not await self.try_acquire():
            await self.clock.sleep(poll if poll is not None else self.ttl / 3)
        try:
            return await self.hold(work)
        finally:
            await self.release()

    async def _wait(self, task: asyncio.Future, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({task, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()

    def _expiry(self) -> bytes:
        return f"{self.clock.time() + self.ttl:.6f}".encode()

    def _fields(self, generation: int) -> dict[str, bytes]:
        return {_GEN: _gen(generation), _HOLDER: self.holder.encode(), _EXPIRES: self._expiry()}
