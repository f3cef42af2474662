"""Automatic failover: a passive copy promotes itself when its primary region has not
answered for the region's ``auto_failover_seconds``.

A gateway shipping a shard of a replicated bucket (``replication.shard_leases``)
watches the bucket if its primacy names another region with automatic failover
configured. It asks that region (a HEAD of the bucket its rule ships to) at most every
``probe_seconds``; any answer but a 5xx or a failed connection counts as
contact, and so does a pass that shipped to it. Once the last contact is older
than the configured time, the copy is promoted to the next epoch
(``AuthorizedBucket.fail_over``): clients' writes are taken here, and the old
primary is fenced off when it returns (``engine.primacy``).

A watch starts counting when it first sees the bucket, so a gateway that has just
started never promotes before a whole period has passed without an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from engine import Engine, Primacy, Principal, ReplicationConfig, parse_destination
from replication.remote_region import RegionClient

log = logging.getLogger("atonix.replication")


@dataclass
class _Watch:
    contact: float  # monotonic time of the last answer (or of the watch's start)
    probed: float = float("-inf")


class FailoverWatch:
    def __init__(self, engine: Engine, principal: Principal,
                 regions: Mapping[str, RegionClient], own_region: str,
                 probe_seconds: float = 1.0) -> None:
        self.engine = engine
        self.principal = principal
        self.regions = regions
        self.own_region = own_region
        self.probe_seconds = probe_seconds
        self._watches: dict[tuple[str, str], _Watch] = {}  # (bucket, region)

    def contact(self, region: str) -> None:
        """The region answered (a pass shipped to it)."""
        now = self.engine.clock.monotonic()
        for (_, watched), watch in self._watches.items():
            if watched == region:
                watch.contact = now

    async def check(self, bucket, config: ReplicationConfig | None) -> Primacy | None:
        """Promote ``bucket`` (an AuthorizedBucket) if its primary has been away long
        enough; the new primacy, or None."""
        if not self.own_region:
            return None
        held = await bucket.primacy()
        client = self.regions.get(held.primary)
        if not held.epoch or held.primary == self.own_region or client is None:
            return None
        if not client.settings.auto_failover_seconds:
            return None
        key = (bucket.name, held.primary)
        now = self.engine.clock.monotonic()
        watch = self._watches.setdefault(key, _Watch(contact=now))
        if now - watch.probed >= self.probe_seconds:
            watch.probed = now
            if await client.reachable(_probe_bucket(config, held.primary)):
                watch.contact = self.engine.clock.monotonic()
        away = self.engine.clock.monotonic() - watch.contact
        if away < client.settings.auto_failover_seconds:
            return None
        promoted = await bucket.fail_over()
        del self._watches[key]
        log.warning("bucket %s: region %s unreachable for %.1f s: this region is its primary "
                    "now (epoch %d)", bucket.name, held.primary, away, promoted.epoch)
        return promoted


def _probe_bucket(config: ReplicationConfig | None, region: str) -> str:
    """The bucket a rule of ``config`` ships to in ``region`` (what a probe asks for)."""
    for rule in config.rules if config is not None else ():
        where, name = parse_destination(rule.destination)
        if where == region:
            return name
    return ""
