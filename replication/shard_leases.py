"""Which change-log shards this gateway ships: one lease per bucket shard
(``replication.<shard object>``), shared out among the gateways that ship.

Every gateway's replication loop keeps a heartbeat record in the service records
``replication-members`` (its expiry, renewed with its leases); the gateways whose
record has not expired are the members, and each takes about its share of all
shards, ``ceil(shards / members)``: it takes free or lapsed shard leases while
under its share and lets go of the surplus when over it (a gateway that joins
gets its share as the others let go). A gateway that dies stops renewing; its
shards lapse after the lease's lifetime and the others take them, and its
heartbeat is dropped once long expired. Two gateways never ship one shard at the
same time except across a lapse, and shipping by state makes that harmless.

Leases are renewed by ``keep_renewed`` in the background every third of their
lifetime, so a long pass does not lose them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
from collections.abc import Awaitable, Callable

from engine import Engine, Lease, LeaseLost, Principal

log = logging.getLogger("atonix.replication")

MEMBERS = "replication-members"
SETTLE_EVERY_S = 1.0  # how often free shards are looked for (each look reads their leases)

Shard = tuple[str, str]  # (bucket name, change-log shard object)


class ShardLeases:
    def __init__(self, engine: Engine, principal: Principal, ttl: float) -> None:
        self.engine = engine
        self.principal = principal
        self.ttl = ttl
        self.me = f"{principal.name or 'gateway'}.{secrets.token_hex(6)}"
        self._leases: dict[Shard, Lease] = {}
        self._settled = float("-inf")
        self._beaten = False  # a heartbeat written (keep_renewed writes the later ones)

    @property
    def held(self) -> list[Shard]:
        return sorted(shard for shard, lease in self._leases.items() if lease.held)

    async def settle(self, all_shards: Callable[[], Awaitable[list[Shard]]]) -> list[Shard]:
        """Take, keep or let go of shard leases so that this gateway holds about its
        share of ``all_shards()`` (every shard of every replicated bucket, asked at most
        every SETTLE_EVERY_S); the ones it holds."""
        now = self.engine.clock.monotonic()
        if now - self._settled < SETTLE_EVERY_S:
            return self.held
        self._settled = now
        shards = await all_shards()
        share = math.ceil(len(shards) / await self._members()) if shards else 0
        for gone in set(self._leases) - set(shards):
            await self._leases.pop(gone).release()
        # Still ours? (try_acquire renews a lease it holds and notices one it lost, which a
        # renewal that failed may have left looking held.)
        held = [s for s in self.held if await self._leases[s].try_acquire()]
        free = [s for s in shards if s not in held]
        random.shuffle(free)  # gateways starting together do not all race for the same
        for shard in free:
            if len(held) >= share:
                break
            lease = self._leases.setdefault(shard, self._lease(shard))
            if await lease.try_acquire():
                held.append(shard)
        while len(held) > share:
            await self._leases[held.pop()].release()
        return sorted(held)

    async def keep_renewed(self) -> None:
        """Renew every held lease every third of its lifetime (a lost one is let go)."""
        while True:
            await self.engine.clock.sleep(self.ttl / 3)
            for lease in [x for x in self._leases.values() if x.held]:
                try:
                    await lease.renew()
                except LeaseLost:
                    pass
                except Exception:  # the backend unwell: settle() looks again
                    log.warning("renewing lease %s failed", lease.name, exc_info=True)
            try:
                await self._heartbeat()
            except Exception:
                log.warning("replication heartbeat failed", exc_info=True)

    async def release_all(self) -> None:
        for lease in self._leases.values():
            with contextlib.suppress(Exception):
                await lease.release()
        with contextlib.suppress(Exception):
            await self.engine.records(self.principal, MEMBERS).delete(self.me)

    def _lease(self, shard: Shard) -> Lease:
        return self.engine.lease(self.principal, f"replication.{shard[1]}", ttl=self.ttl)

    async def _heartbeat(self) -> None:
        expiry = self.engine.clock.time() + self.ttl
        await self.engine.records(self.principal, MEMBERS).put(self.me, repr(expiry).encode())
        self._beaten = True

    async def _members(self) -> int:
        """Gateways shipping now (this one included); long-dead ones' records go."""
        if not self._beaten:  # the first count; keep_renewed keeps it fresh from then on
            await self._heartbeat()
        records = self.engine.records(self.principal, MEMBERS)
        now, alive = self.engine.clock.time(), 0
        for name, raw in await records.list():
            try:
                expiry = float(raw)
            except ValueError:
                expiry = 0.0
            if expiry > now:
                alive += 1
            elif expiry < now - 10 * self.ttl:
                await records.delete(name)
        return max(1, alive)


async def run_renewals(leases: ShardLeases) -> None:
    """``leases.keep_renewed`` until cancelled (the loop's companion task), started again
    should it ever fail."""
    while True:
        try:
            await leases.keep_renewed()
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("lease renewals failed; starting them again")
            await asyncio.sleep(1.0)
