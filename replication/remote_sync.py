"""One key made equal in another region's bucket: the cross-region half of shipping by
state (the same-region half is ``engine.replicas``, which clones payloads instead).

The region's versions of the key are listed; versions the change log says
were removed are deleted there; every version the rule ships and the region
lacks is sent with its own version id and stamp (a body streamed from the
source's reader, or a delete marker), oldest first. Versions the region
already has are left alone: their metadata is not compared yet (tags and
ACLs changed after the first shipping stay behind; see the design's 8b).
"""

from __future__ import annotations

from collections.abc import Callable

from engine import ObjectEntry, ReplicationRule, SyncResult, ships
from replication.remote_region import RegionClient


async def sync_remote_key(
    source, key: str, gone: tuple[str, ...], client: RegionClient, bucket: str,
    rule_for: Callable[[ObjectEntry], ReplicationRule | None],
) -> SyncResult:
    """``source``: the AuthorizedBucket shipped from; ``bucket``: the region's bucket."""
    result = SyncResult()
    mine = await source.key_versions(key)
    theirs = await client.versions(bucket, key)
    have = {v.version_id for v in mine}
    for vid in gone:
        if vid in theirs and vid not in have:
            await client.delete_version(bucket, key, vid)
            result.removed += 1
    for version in reversed(mine):  # oldest first
        if not ships(version, rule_for(version)):
            continue
        if version.version_id not in theirs:
            if version.delete_marker:
                await client.put_marker_replica(bucket, key, version)
            else:
                await client.put_replica(bucket, key, version, source.read(version).body())
                result.bytes += version.size
            result.copied += 1
        result.shipped.append(version)
    return result
