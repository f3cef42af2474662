"""Where a new chunk can be stored as a delta: stream-informed base selection.

A new version of a file differs from the old one in a few places. Content-defined
chunking finds every unchanged chunk, but each chunk holding an edit is new in
full (~32 KiB for an edit of a few bytes). Stored as a zstd delta against the
chunk it replaced, it costs about its edits.

Finding "the chunk it replaced" needs no similarity index: the upload itself
says. A new chunk usually follows a chunk that deduplicated (the unchanged bytes
before the edit). That chunk's references name manifests that hold it, and in
such a manifest the bytes after it are the old version of what follows it in
this upload. So the planner aligns the upload with that manifest at the last
duplicate and proposes, for each new chunk, the old chunk at the same aligned
offset. It costs one omap read and one (cached) manifest load per alignment,
and nothing at all for uploads without duplicates (no alignment is ever made).

The planner only proposes; ``ChunkStore.put_delta`` decides (a base must be a
plain chunk, and still exist), and the writer keeps a delta only when it is
smaller than the chunk's own encoding. A wrong proposal costs CPU, never bytes.

The writer stores chunks concurrently; the planner keeps each chunk's result as
a future, so a new chunk waits only for the *previous* chunk's outcome (its
existence check), not for its storage.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from dedupe.chunk_format import Codec
from dedupe.manifest import Manifest, ManifestEntry
from dedupe.refs import DELTA_OWNER_PREFIX
from dedupe.store import ChunkStore

# A run of more new chunks than this after the last duplicate is new data, not an
# edit: stop proposing bases (each proposal costs a base read and a compression).
MAX_RUN = 16
_OWNERS_TRIED = 3  # per alignment
_ANCHORS_TRIED = 3  # per new chunk
_MANIFESTS_KEPT = 2  # decoded, per upload (up to ~5 MB each for a 1 GiB span)
_MAX_LOADS = 16  # manifest loads per upload: one that lines up with nothing stops looking


class ManifestSource(Protocol):
    """How the dedupe layer reads the manifest of an owner (the engine stores them)."""

    async def load_manifest(self, owner: str) -> Manifest | None: ...


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chunk of this upload that deduplicated: where an alignment can start."""

    fingerprint: bytes
    offset: int  # in this upload
    holder: bytes = b""  # the pack holding it (see dedupe.packs); empty: its own object


@dataclass(frozen=True, slots=True)
class Alignment:
    """This upload's byte ``o`` lines up with byte ``o + shift`` of ``manifest``."""

    manifest: Manifest
    shift: int
    run: int  # new chunks since the anchor


State = Anchor | Alignment | None


class BasePlanner:
    """Per upload: proposes a base chunk for each new chunk (see module docstring)."""

    def __init__(self, store: ChunkStore, tier: str, owner: str, source: ManifestSource) -> None:
        self.store = store
        self.tier = tier
        self.owner = owner
        self.source = source
        self._states: dict[int, asyncio.Future[State]] = {}
        self._manifests: dict[str, Manifest] = {}  # the latest loaded, oldest first
        self._loads = 0
        self._anchors: deque[Anchor] = deque(maxlen=2 * _ANCHORS_TRIED)  # latest duplicates
        # Whether new chunks should look for a base now: since the latest duplicate,
        # until a new chunk found no alignment (or MAX_RUN ran out). While not, the
        # writer stores new chunks as any unique upload does (create first).
        self.active = False

    def _future(self, index: int) -> asyncio.Future[State]:
        fut = self._states.get(index)
        if fut is None:
            fut = self._states[index] = asyncio.get_running_loop().create_future()
        return fut

    def settle(self, index: int, state: State) -> None:
        """Record chunk ``index``'s outcome (an Anchor for a duplicate); only chunk
        ``index + 1`` reads it. Idempotent: the first outcome counts."""
        fut = self._future(index)
        if fut.done():
            return
        fut.set_result(state)
        if isinstance(state, Anchor):
            self._anchors.append(state)
            self.active = True
        # Chunk ``index`` has read its predecessor's state by now, if it needed it.
        # (Dropped by index distance instead, a slow chunk could lose the state it
        # still waits for, and wait forever.)
        self._states.pop(index - 1, None)

    async def propose(self, index: int, offset: int, length: int) -> ManifestEntry | None:
        """The base for new chunk ``index`` (``length`` bytes at ``offset``); settles
        its own state."""
        try:
            previous = await self._future(index - 1) if index > 0 else None
            aligned = await self._align(previous)
        except BaseException:
            self.settle(index, None)
            raise
        if aligned is None or aligned.run >= MAX_RUN:
            self.active = False
            self.settle(index, None)
            return None
        self.settle(index, Alignment(aligned.manifest, aligned.shift, aligned.run + 1))
        return self._entry_at(aligned, offset, length)

    async def _align(self, previous: State) -> Alignment | None:
        if not isinstance(previous, Anchor):
            return previous
        # The duplicate just before may belong to no other manifest any more (say,
        # a chunk only a deleted version had): earlier duplicates line up as well.
        earlier = sorted(
            (a for a in self._anchors if a.offset < previous.offset),
            key=lambda a: a.offset,
            reverse=True,
        )
        for anchor in [previous, *earlier][:_ANCHORS_TRIED]:
            aligned = await self._align_at(anchor)
            if aligned is not None:
                return aligned
        return None

    async def _align_at(self, anchor: Anchor) -> Alignment | None:
        owners = [
            o
            for o in await self.store.some_owners(self.tier, anchor.holder or anchor.fingerprint)
            if o != self.owner and not o.startswith(DELTA_OWNER_PREFIX)
        ]
        for owner in owners[:_OWNERS_TRIED]:
            manifest = await self._manifest(owner)
            if manifest is None:
                continue
            # A scan, not an index: alignments are rare (one per edit), and an
            # index of a 1 GiB manifest would cost more memory than the manifest.
            for i, entry in enumerate(manifest.entries):
                if entry.fingerprint == anchor.fingerprint:
                    return Alignment(manifest, manifest.start_of(i) - anchor.offset, 0)
        return None

    async def _manifest(self, owner: str) -> Manifest | None:
        manifest = self._manifests.pop(owner, None)
        if manifest is None:
            if self._loads >= _MAX_LOADS:
                return None
            self._loads += 1
            manifest = await self.source.load_manifest(owner)
            if manifest is None:
                return None
        self._manifests[owner] = manifest  # now the latest
        while len(self._manifests) > _MANIFESTS_KEPT:
            del self._manifests[next(iter(self._manifests))]
        return manifest

    def _entry_at(self, aligned: Alignment, offset: int, length: int) -> ManifestEntry | None:
        """The old chunk that overlaps most of the new one's aligned bytes.

        (An edit can move a cut: the next new chunk then starts inside the old
        chunk before it but holds mostly the one after.)
        """
        m = aligned.manifest
        start, end = max(offset + aligned.shift, 0), min(offset + length + aligned.shift, m.size)
        best, most = None, 0
        for i in m.chunk_span(start, end):
            overlap = min(end, m.ends[i]) - max(start, m.start_of(i))
            if overlap > most:
                best, most = m.entries[i], overlap
        if best is None or best.codec is Codec.ZSTD_DELTA or best.tier != self.tier:
            return None
        return best
