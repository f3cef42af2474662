"""Clones: a new object version that shares an existing version's stored bytes.

Point-in-time restore and backups to a bucket of this deployment make new
versions of old content. Copying the bytes through a put would read every
chunk back and chunk it again; a clone instead gives each manifest of the
source a twin under a new owner id, with one new reference on every chunk
it names, so no chunk byte is read or written. Only payloads that were
stored without dedupe (raw stripes, a bucket with ``dedupe: false``) are
copied stripe by stripe, and inline payloads travel inside the entry.

Write order is that of every put: references, then manifests, then (by the
caller) the index entry; a crash before the commit leaves references and a
manifest nothing names, which fsck --repair and the collector remove once
they are stale, as after a crashed upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from typing import Protocol

from dedupe import Manifest, decode_manifest, encode_manifest, failpoints
from engine import layout
from engine.object_lock import HOLD_HEADER, MODE_HEADER, UNTIL_HEADER, Retention, with_retention
from engine.objects import ObjectService, visible_or_none
from engine.payload import PayloadStore, read_stripes
from engine.records import BucketRecord, ObjectEntry, Segment
from engine.tiers import restored_headers

_REF_CONCURRENCY = 32
# Retention and legal holds belong to the version they were set on: a clone gets the
# destination bucket's default retention (or what its caller asks), as a copy does.
_LOCK_HEADERS = (MODE_HEADER, UNTIL_HEADER, HOLD_HEADER)


def cloned_entry(source: ObjectEntry, segments: list[Segment], mtime: float) -> ObjectEntry:
    """The entry of a clone: the source's content and metadata, as a new version."""
    headers = {k: v for k, v in source.headers.items() if k not in _LOCK_HEADERS}
    return dataclasses.replace(
        source,
        mtime=mtime,
        headers=restored_headers(headers, None),  # the source's restore is its own
        segments=segments,
        restored=[],
        user_meta=dict(source.user_meta),
        checksums=dict(source.checksums),
        tags=dict(source.tags),
        version_id=None,
        delete_marker=False,
        stamp=0,
    )


def same_content(a: ObjectEntry | None, b: ObjectEntry | None) -> bool:
    """Whether two entries hold the same bytes and metadata (what a restore must reproduce)."""
    if a is None or b is None:
        return a is b
    if a.delete_marker or b.delete_marker:
        return a.delete_marker == b.delete_marker

    def meta(e: ObjectEntry) -> tuple:
        headers = {k: v for k, v in e.headers.items() if k not in _LOCK_HEADERS}
        return (e.size, e.etag, e.content_type, e.user_meta, headers, e.tags, e.parts)

    return meta(a) == meta(b)


class KeyCondition(Protocol):
    """What a key must hold for a clone to be committed (``WriteCondition`` is one)."""

    def check(self, current: ObjectEntry | None, key: str) -> None: ...


class PayloadCloner:
    """Clones of object versions: payload twins under new data prefixes, committed."""

    def __init__(self, objects: ObjectService) -> None:
        self.objects = objects
        self.payloads: PayloadStore = objects.payloads

    async def commit(
        self,
        source: ObjectEntry,
        destination: BucketRecord,
        key: str,
        condition: KeyCondition | None = None,
        retention: Retention | None = None,
    ) -> ObjectEntry:
        """Make a clone of ``source`` the current version of ``key`` in ``destination``,
        if ``condition`` holds for the key's visible entry at the commit; the new entry.
        ``retention``: the clone's own (the destination must have object lock)."""
        segments = await self.clone(source, destination.bucket_id)
        new = cloned_entry(source, segments, self.objects.clock.time())
        if retention is not None:
            new.headers = with_retention(new.headers, retention)

        def check(current: ObjectEntry | None) -> None:
            if condition is not None:
                condition.check(visible_or_none(current), key)

        try:
            done = await self.objects.commit_entry(destination, key, new, check)
        except BaseException:
            await self.payloads.remove(segments)
            raise
        await self.payloads.release(done.garbage)
        assert done.entry is not None
        return done.entry

    async def clone(self, source: ObjectEntry, bucket_id: str) -> list[Segment]:
        """New segments with the bytes of ``source``'s (release them if the commit fails)."""
        made: list[Segment] = []
        try:
            for seg in source.segments:
                prefix = f"{bucket_id}.{uuid.uuid4().hex}"
                made.append(await self._clone_segment(seg, prefix))
        except BaseException:
            with contextlib.suppress(Exception):
                await self.payloads.remove(made)
            raise
        return made

    async def _clone_segment(self, seg: Segment, prefix: str) -> Segment:
        twin = dataclasses.replace(seg, data_prefix=prefix)
        done = 0
        try:
            for n in range(seg.stripes):
                if seg.is_chunked:
                    await self._clone_manifest(layout.stripe_oid(seg.data_prefix, n),
                                               layout.stripe_oid(prefix, n))
                else:
                    await self._copy_stripe(seg, prefix, n)
                done = n + 1
        except BaseException:
            # The stripes or manifests this segment got so far: nothing will name them.
            with contextlib.suppress(Exception):
                await self.payloads.remove([dataclasses.replace(twin, stripes=done)])
            raise
        return twin

    async def _clone_manifest(self, owner: str, new_owner: str) -> None:
        chunked = self.payloads.chunked
        if chunked is None:
            raise RuntimeError("a chunked segment, but this engine has no chunk store")
        source = decode_manifest(await chunked.meta.read(layout.manifest_object(owner)))
        slots = asyncio.Semaphore(_REF_CONCURRENCY)
        taken: list[tuple[str, bytes]] = []

        async def ref(tier: str, fp: bytes) -> None:
            async with slots:
                await chunked.store.add_ref(tier, fp, new_owner)
                taken.append((tier, fp))

        twin = Manifest(new_owner, list(source.entries))
        try:
            await asyncio.gather(*(ref(t, fp) for t, fp in sorted(source.chunk_refs())))
            await chunked.meta.write_full(layout.manifest_object(new_owner), encode_manifest(twin))
            await failpoints.hit("clone.after_manifest")
        except BaseException:
            # A chunk the source names is gone (ObjectNotFound) or the write failed:
            # give back what this twin took, so nothing is left referenced by nobody.
            for tier, fp in taken:
                await chunked.store.drop_ref(tier, fp, new_owner)
            raise

    async def _copy_stripe(self, seg: Segment, prefix: str, n: int) -> None:
        data = self.payloads.data
        start = n * seg.stripe_size
        end = min(start + seg.stripe_size, seg.size)
        pieces = [p async for p in read_stripes(data, seg.data_prefix, seg.stripe_size, start, end)]
        await data.write_full(layout.stripe_oid(prefix, n), b"".join(pieces))
