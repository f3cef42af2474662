"""Setting and reading a bucket's replication configuration, with S3's checks: the
source must keep versions, every destination must exist, belong to the source's
owner and keep versions too, and a region must be one the deployment knows.

Which versions a configuration covers is decided when they are committed
(``engine.change_log``): a version a rule matches is PENDING until the
replication service has shipped it.
"""

from __future__ import annotations

from engine.assembly import ObjectEngine
from engine.errors import InvalidBucketState, InvalidRequestForBucket, NoSuchBucket
from engine.records import BucketRecord
from engine.replication_rules import REPLICATION_ITEM, ReplicationConfig
from engine.versioning import ENABLED


async def read_replication(
    services: ObjectEngine, record: BucketRecord
) -> ReplicationConfig | None:
    _, raw = await services.buckets.read_config(record, REPLICATION_ITEM)
    return ReplicationConfig.decode(raw) if raw else None


async def write_replication(
    services: ObjectEngine, record: BucketRecord, config: ReplicationConfig | None
) -> None:
    """Store ``config`` (None removes it) once S3's checks pass."""
    if config is not None:
        await _check(services, record, config)
    if config is not None:  # listed first: the shippers find every configured bucket
        await services.replicated.put(record.name, record.bucket_id.encode())
    await services.buckets.write_config(
        record, REPLICATION_ITEM, config.encode() if config is not None else None
    )
    services.objects.versioning.replication_changed(record, config)


async def _check(services: ObjectEngine, record: BucketRecord, config: ReplicationConfig) -> None:
    versioning = services.objects.versioning
    if await versioning.state(record) != ENABLED:
        raise InvalidRequestForBucket(
            "Versioning must be 'Enabled' on the bucket to apply a replication configuration"
        )
    if not config.rules:
        raise InvalidRequestForBucket("A replication configuration needs at least one rule")
    for rule in config.rules:
        region = rule.destination_region
        if region is not None and region not in services.settings.regions:
            raise InvalidRequestForBucket(
                f"Destination region {region} is not one of this deployment's regions"
            )
        if rule.storage_class is not None:
            services.tiers.for_class(rule.storage_class)  # InvalidStorageClass
        if region is None:
            await _check_local_destination(services, record, rule.destination_bucket)


async def _check_local_destination(
    services: ObjectEngine, record: BucketRecord, name: str
) -> None:
    if name == record.name:
        raise InvalidRequestForBucket("Destination bucket cannot be the same as the source bucket")
    try:
        destination = await services.buckets.get(name, use_cache=False)
    except NoSuchBucket:
        raise InvalidRequestForBucket(f"Destination bucket must exist: {name}") from None
    if destination.owner != record.owner:
        raise InvalidRequestForBucket(
            f"Destination bucket {name} belongs to another owner"
        )
    if await services.objects.versioning.state(destination) != ENABLED:
        raise InvalidRequestForBucket("Destination bucket must have versioning enabled.")


async def refuse_suspension(services: ObjectEngine, record: BucketRecord) -> None:
    """Versioning cannot be suspended while a replication configuration is present."""
    if await read_replication(services, record) is not None:
        raise InvalidBucketState(
            "Versioning cannot be suspended on a bucket with a replication configuration"
        )
