"""Which region's copy of a replicated bucket takes clients' writes, and fencing by epoch.

A bucket replicated active-passive carries a *primacy*: the region whose copy
is the primary and an epoch, raised by one at every failover
(``atonix-cli replication failover BUCKET --to REGION``, or the replication
service promoting a passive copy whose primary stayed unreachable). Stored as
the bucket document ``primacy``; a bucket without one is active-active (every
region takes writes, and version order picks the same winner everywhere).

- A client's write to a copy whose primary is another region is refused
  (``PassiveCopy``, 409 InvalidBucketState), reads are served.
- Every request a shipper sends to another region carries its bucket's primacy.
  The receiver adopts a higher one (so the first replica after a failover
  tells the old side it is passive now) and refuses a lower one
  (``ReplicaFenced``, naming its own): a primary that returns after being
  replaced cannot overwrite what the new one wrote, and learns from the refusal
  that it was replaced.

Primacies compare by (epoch, region), so two regions promoting themselves to one
epoch still agree on one winner. The encoding sorts bytewise in that order.
"""

from __future__ import annotations

from engine.assembly import ObjectEngine
from engine.errors import InvalidBucketState, InvalidRequestForBucket, NoSuchBucket
from engine.index import StaleBucket
from engine.records import BucketRecord
from engine.replication_rules import NO_PRIMACY, Primacy

PRIMACY_ITEM = "primacy"
_SWAP_TRIES = 16


class PassiveCopy(InvalidBucketState):
    """A client's write to a copy whose primary is another region."""


class ReplicaFenced(InvalidBucketState):
    """A replica from a region whose primacy is older than this copy's: details name ours."""


async def primacy(services: ObjectEngine, record: BucketRecord, fresh: bool = False) -> Primacy:
    """The bucket's primacy (NO_PRIMACY: none), cached a few seconds unless ``fresh``."""
    if fresh:
        _, raw = await services.buckets.read_config(record, PRIMACY_ITEM)
        services.objects.versioning.remember_config(record, PRIMACY_ITEM, raw)
    else:
        try:
            raw = await services.objects.versioning.cached_config(record, PRIMACY_ITEM)
        except StaleBucket:  # the pinned bucket went (and maybe came back): not this one
            raise NoSuchBucket(BucketName=record.name) from None
    return Primacy.decode(raw) if raw else NO_PRIMACY


async def check_client_write(services: ObjectEngine, record: BucketRecord) -> None:
    """PassiveCopy unless this region may take clients' writes to the bucket."""
    held = await primacy(services, record)
    if held.epoch and held.primary != services.settings.region_name:
        raise PassiveCopy(
            f"This region holds a passive copy of the bucket; its primary is region "
            f"{held.primary} (epoch {held.epoch}). Write there, or fail over to this region",
            Primary=held.primary, Epoch=str(held.epoch))


async def admit_replica(services: ObjectEngine, record: BucketRecord, sender: Primacy) -> None:
    """Let a write shipped by another region in (adopting its primacy when newer than
    ours), or refuse it with ReplicaFenced when ours is newer. Read fresh: a failover
    made by another gateway must fence at once, not after a cache lifetime."""
    known = (services.settings.region_name, *services.settings.regions)
    if sender.epoch and sender.primary not in known:
        raise InvalidRequestForBucket(
            f"The sender names region {sender.primary}, which this deployment does not know")
    held = await primacy(services, record, fresh=True)
    if held > sender:
        raise ReplicaFenced(
            f"Fenced: the sender's primacy (epoch {sender.epoch}) is older than this "
            f"copy's (epoch {held.epoch}, primary {held.primary})",
            Primary=held.primary, Epoch=str(held.epoch))
    if sender > held:
        await raise_primacy(services, record, sender)


async def raise_primacy(services: ObjectEngine, record: BucketRecord, wanted: Primacy) -> Primacy:
    """Make the bucket's primacy at least ``wanted`` (compare and swap); what it is now."""
    for _ in range(_SWAP_TRIES):
        _, raw = await services.buckets.read_config(record, PRIMACY_ITEM)
        held = Primacy.decode(raw) if raw else NO_PRIMACY
        if held >= wanted:
            services.objects.versioning.remember_config(record, PRIMACY_ITEM, raw)
            return held
        if await services.buckets.swap_config(record, PRIMACY_ITEM, raw, wanted.encode()):
            services.objects.versioning.remember_config(record, PRIMACY_ITEM, wanted.encode())
            return wanted
    raise InvalidBucketState("The bucket's primacy kept changing; try again")


async def promote(services: ObjectEngine, record: BucketRecord) -> Primacy:
    """Make this region the bucket's primary at the next epoch (a failover)."""
    region = services.settings.region_name
    if not region:
        raise InvalidRequestForBucket(
            "This deployment has no region_name in its config: it cannot become a primary")
    for _ in range(_SWAP_TRIES):
        held = await primacy(services, record, fresh=True)
        if held.primary == region:
            return held  # already the primary: nothing to fence
        wanted = Primacy(held.epoch + 1, region)
        if await raise_primacy(services, record, wanted) == wanted:
            return wanted
    raise InvalidBucketState("The bucket's primacy kept changing; try again")
