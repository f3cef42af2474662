"""The bucket's list of in-progress multipart uploads, for ListMultipartUploads.

It lives in the bucket's root index shard (``idx.<bucket id>.0000``, which
always exists and whose ``h.bucket`` decides the bucket's state) under the
``u`` key space, ordered by (object key, upload id) (see
``upload_records.registry_key``). Shard splits move only the object and
sample key spaces, so the registry never moves. Adding an upload is guarded
on ``h.bucket`` being active, so no upload can be registered in a bucket that
is being deleted: DeleteBucket switches the root's state first and then finds
every upload it has to reclaim here. Object listings and the emptiness check
only read the ``o`` key space, so uploads never show up as objects.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from engine import layout
from engine.index import ACTIVE, StaleBucket
from engine.upload_records import (
    UploadInfo,
    registry_after_key,
    registry_after_prefix,
    registry_key,
    registry_prefix,
    split_registry_key,
)
from storage import GuardFailed, ObjectNotFound, Pool, WriteOp

_SCAN = 1000


@dataclass(slots=True)
class UploadsPage:
    uploads: list[UploadInfo]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None


@dataclass(slots=True)
class UploadsQuery:
    prefix: str = ""
    delimiter: str = ""
    key_marker: str = ""
    upload_id_marker: str = ""
    max_uploads: int = 1000


class UploadRegistry:
    def __init__(self, meta: Pool) -> None:
        self.meta = meta

    async def add(self, bucket_id: str, info: UploadInfo) -> None:
        """Register the upload; StaleBucket if the bucket is gone or being deleted."""
        op = (
            WriteOp()
            .omap_cmp(layout.SHARD_HEADER, layout.shard_header(bucket_id, ACTIVE))
            .omap_set({registry_key(info.key, info.upload_id): info.encode_listing()})
        )
        try:
            await self.meta.operate(layout.index_shard(bucket_id), op)
        except (GuardFailed, ObjectNotFound):
            raise StaleBucket(bucket_id) from None

    async def remove(self, bucket_id: str, key: str, upload_id: str) -> None:
        """Drop the entry (never re-creates a destroyed shard; a missing entry is fine)."""
        op = WriteOp().assert_exists().omap_rm([registry_key(key, upload_id)])
        with contextlib.suppress(ObjectNotFound):
            await self.meta.operate(layout.index_shard(bucket_id), op)

    async def all(self, bucket_id: str) -> list[tuple[str, str]]:
        """Every (key, upload id) registered in the bucket."""
        out: list[tuple[str, str]] = []
        after = ""
        while True:
            batch = await self._scan(bucket_id, after, layout.UPLOAD_PREFIX, _SCAN)
            out += [split_registry_key(raw) for raw, _ in batch]
            if len(batch) < _SCAN:
                return out
            after = batch[-1][0]

    async def page(self, bucket_id: str, q: UploadsQuery) -> UploadsPage:
        """One page of uploads, rolled up at the delimiter like ListObjects.

        Uploads under a common prefix are skipped with one seek past it, so
        a page costs O(page size) backend items.
        """
        uploads: list[UploadInfo] = []
        prefixes: list[str] = []
        cursor = _start_cursor(q)
        scan_prefix = registry_prefix(q.prefix)
        last: tuple[str | None, str | None] = (None, None)
        while len(uploads) + len(prefixes) < q.max_uploads:
            want = q.max_uploads - len(uploads) - len(prefixes)
            batch = await self._scan(bucket_id, cursor, scan_prefix, min(want + 1, _SCAN))
            if not batch:
                return UploadsPage(uploads, prefixes, False, *last)
            for raw, value in batch:
                if len(uploads) + len(prefixes) >= q.max_uploads:
                    return UploadsPage(uploads, prefixes, True, *last)
                key, upload_id = split_registry_key(raw)
                cut = key.find(q.delimiter, len(q.prefix)) if q.delimiter else -1
                if cut >= 0:
                    common = key[: cut + len(q.delimiter)]
                    prefixes.append(common)
                    last = (common, None)
                    cursor = registry_after_prefix(common)
                    break  # re-seek past the whole common prefix
                uploads.append(UploadInfo.decode_listing(key, upload_id, value))
                last = (key, upload_id)
                cursor = raw
        more = await self._scan(bucket_id, cursor, scan_prefix, 1)
        return UploadsPage(uploads, prefixes, bool(more), *last)

    async def _scan(
        self, bucket_id: str, after: str, prefix: str, count: int
    ) -> list[tuple[str, bytes]]:
        try:
            return await self.meta.omap_list(
                layout.index_shard(bucket_id), start_after=after, prefix=prefix, max_items=count
            )
        except ObjectNotFound:
            raise StaleBucket(bucket_id) from None


def _start_cursor(q: UploadsQuery) -> str:
    """The registry key to list after, from key-marker and upload-id-marker (AWS rules).

    Without a key marker the upload-id marker is ignored; a key marker alone
    resumes after every upload of that key; a key marker inside a rolled-up
    common prefix resumes after the whole prefix.
    """
    if not q.key_marker:
        return ""
    if q.delimiter and q.key_marker.startswith(q.prefix):
        cut = q.key_marker.find(q.delimiter, len(q.prefix))
        if cut >= 0:
            return registry_after_prefix(q.key_marker[: cut + len(q.delimiter)])
    if q.upload_id_marker:
        return registry_key(q.key_marker, q.upload_id_marker)
    return registry_after_key(q.key_marker)
