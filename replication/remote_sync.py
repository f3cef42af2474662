"""One key made equal in another region's bucket: the cross-region half of shipping by
state (the same-region half is ``engine.replicas``, which clones payloads instead).

The change-log records name the versions a change wrote and removed. Each
removed one is deleted there (the source passes on only removals of its
own originals, never of replicas); each written one that still exists and
that the rule ships is sent as it is *now* with its own version id and
stamp (a body streamed from the source's reader, or a delete marker),
oldest first. Sending a version twice replaces it with the same content,
so a pass repeated after a crash does no harm, and no listing of the other
region is needed: one request per version, one round trip.
"""

from __future__ import annotations

from collections.abc import Callable

from engine import NO_PRIMACY, ObjectEntry, Primacy, ReplicationRule, SyncResult, ships
from replication.remote_region import ChunksRefused, RegionClient

# Smaller versions go whole: the question costs a round trip, the bytes little.
CHUNKWISE_FROM = 1024 * 1024


async def sync_remote_key(
    source, key: str, gone: tuple[str, ...], written: tuple[str, ...], client: RegionClient,
    bucket: str, rule_for: Callable[[ObjectEntry], ReplicationRule | None],
    primacy: Primacy = NO_PRIMACY,
) -> SyncResult:
    """``source``: the AuthorizedBucket shipped from; ``bucket``: the region's bucket;
    ``primacy``: the source's, which every request names (engine.primacy fences by it)."""
    result = SyncResult()
    mine = await source.key_versions(key)
    have = {v.version_id or "null" for v in mine}
    for vid in gone if not client.settings.plain else ():
        if vid not in have and vid != "null":
            await client.delete_version(bucket, key, vid, primacy)
            result.removed += 1
    plain = client.settings.plain
    for version in reversed(mine):  # oldest first
        if (version.version_id or "null") not in written or not ships(version, rule_for(version)):
            continue
        if plain and version is not mine[0]:
            continue  # there a PUT makes the current version: only ours goes
        if version.delete_marker:
            await client.put_marker_replica(bucket, key, version, primacy)
        else:
            result.bytes += await _send(source, client, bucket, key, version, primacy)
        result.copied += 1
        result.shipped.append(version)
    return result


async def _send(source, client: RegionClient, bucket: str, key: str, version: ObjectEntry,
                primacy: Primacy) -> int:
    """Send one version, chunk-wise when it is large and chunked (only what the region
    lacks travels), else whole; the bytes sent."""
    if not client.settings.plain and version.size >= CHUNKWISE_FROM:
        chunks = await source.chunk_map(version)
        if chunks:
            try:
                return await client.put_replica_chunks(
                    bucket, key, version, chunks, source.read(version).body(), primacy)
            except ChunksRefused:
                pass  # an older gateway, or a chunk it held went meanwhile
    await client.put_replica(bucket, key, version, source.read(version).body(), primacy)
    return version.size
