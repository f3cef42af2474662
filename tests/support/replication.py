"""What the replication tests share: waiting for a condition, and a bucket's versions as
boto3 lists them."""

from __future__ import annotations

import time


def until(check, timeout: float, every: float = 0.1):
    """``check()`` once it is truthy, or its last value when ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(every)


def versions(s3, bucket: str) -> list[tuple]:
    """(key, version id, ETag or "marker", is latest) of every version, sorted."""
    listed = s3.list_object_versions(Bucket=bucket)
    out = [(v["Key"], v["VersionId"], v["ETag"], v["IsLatest"]) for v in listed.get("Versions", [])]
    out += [(m["Key"], m["VersionId"], "marker", m["IsLatest"])
            for m in listed.get("DeleteMarkers", [])]
    return sorted(out)
