"""One multipart upload's state in the meta pool: metadata, life-cycle state and part records.

``upload.<bucket id>.<upload id>`` holds everything in its omap (keys in
``upload_records``). Its state moves one way: open -> completing ->
committed, or open -> aborting; the object is removed at the end of either.
A part record is committed only while the state is ``open`` (an omap guard
in the same atomic operation), so once a completion or an abort has frozen
the upload no part can appear or change behind its back.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass

from engine import layout
from engine.upload_records import (
    GENERATION_KEY,
    MANIFEST_KEY,
    MAX_PART_NUMBER,
    META_KEY,
    PART_PREFIX,
    STATE_KEY,
    Manifest,
    PartRecord,
    UploadMeta,
    UploadState,
    part_key,
)
from storage import GuardFailed, ObjectNotFound, Pool, WriteOp

_PAGE = 1000


@dataclass(slots=True)
class UploadSnapshot:
    """An upload as read in one omap read (plus one part record when asked for)."""

    bucket_id: str
    upload_id: str
    state: UploadState
    meta: UploadMeta
    generation: bytes
    manifest: Manifest | None
    part_raw: bytes | None = None

    @property
    def key(self) -> str:
        return self.meta.info.key

    @property
    def part(self) -> PartRecord | None:
        return PartRecord.decode(self.part_raw) if self.part_raw is not None else None


class UploadStore:
    def __init__(self, meta: Pool) -> None:
        self.meta = meta

    async def create(self, bucket_id: str, meta: UploadMeta) -> None:
        op = (
            WriteOp()
            .create(exclusive=True)
            .omap_set(
                {
                    STATE_KEY: UploadState.OPEN.raw,
                    META_KEY: meta.encode(),
                    GENERATION_KEY: _token(),
                }
            )
        )
        await self.meta.operate(layout.upload_object(bucket_id, meta.info.upload_id), op)

    async def load(
        self, bucket_id: str, upload_id: str, part: int | None = None
    ) -> UploadSnapshot | None:
        """The upload's state, or None when it does not exist."""
        keys = [STATE_KEY, META_KEY, GENERATION_KEY, MANIFEST_KEY]
        if part is not None:
            keys.append(part_key(part))
        try:
            got = await self.meta.omap_get(layout.upload_object(bucket_id, upload_id), keys)
        except ObjectNotFound:
            return None
        if STATE_KEY not in got or META_KEY not in got:
            return None
        manifest = got.get(MANIFEST_KEY)
        return UploadSnapshot(
            bucket_id,
            upload_id,
            UploadState(got[STATE_KEY].decode()),
            UploadMeta.decode(got[META_KEY]),
            got.get(GENERATION_KEY, b""),
            Manifest.decode(manifest) if manifest is not None else None,
            got.get(part_key(part)) if part is not None else None,
        )

    async def commit_part(
        self, bucket_id: str, upload_id: str, part: PartRecord, replaced_raw: bytes | None
    ) -> None:
        """Write the part record while the upload is open (the commit point of UploadPart).

        ``replaced_raw`` is the record read before the write (None if there
        was none): the write only lands if it is still there, so the caller
        reclaims exactly the part it replaced. GuardFailed or ObjectNotFound
        when the upload moved on or the part changed meanwhile.
        """
        op = WriteOp().omap_cmp(STATE_KEY, UploadState.OPEN.raw)
        if replaced_raw is not None:
            op.omap_cmp(part_key(part.number), replaced_raw)
        op.omap_set({part_key(part.number): part.encode(), GENERATION_KEY: _token()})
        await self.meta.operate(layout.upload_object(bucket_id, upload_id), op)

    async def list_parts(
        self, bucket_id: str, upload_id: str, after: int = 0, limit: int = _PAGE
    ) -> list[PartRecord]:
        """Up to ``limit`` part records with numbers > after, in part-number order."""
        if after >= MAX_PART_NUMBER:
            return []  # also keeps the zero-padded key comparison within five digits
        try:
            items = await self.meta.omap_list(
                layout.upload_object(bucket_id, upload_id),
                start_after=part_key(after) if after > 0 else "",
                prefix=PART_PREFIX,
                max_items=limit,
            )
        except ObjectNotFound:
            return []
        return [PartRecord.decode(raw) for _, raw in items]

    async def all_parts(self, bucket_id: str, upload_id: str) -> list[PartRecord]:
        out: list[PartRecord] = []
        while True:
            after = out[-1].number if out else 0
            page = await self.list_parts(bucket_id, upload_id, after, _PAGE)
            out += page
            if len(page) < _PAGE:
                return out

    async def freeze(
        self,
        snapshot: UploadSnapshot,
        new_state: UploadState,
        manifest: Manifest | None = None,
    ) -> bool:
        """Move an open upload to ``new_state`` if nothing changed since ``snapshot``.

        Guarded on the state and the part generation, so a completion's
        manifest is built from exactly the parts that are there. False when
        the guard failed (re-read and decide again).
        """
        op = (
            WriteOp()
            .omap_cmp(STATE_KEY, snapshot.state.raw)
            .omap_cmp(GENERATION_KEY, snapshot.generation)
            .omap_set({STATE_KEY: new_state.raw})
        )
        if manifest is not None:
            op.omap_set({MANIFEST_KEY: manifest.encode()})
        try:
            await self.meta.operate(
                layout.upload_object(snapshot.bucket_id, snapshot.upload_id), op
            )
        except (GuardFailed, ObjectNotFound):
            return False
        return True

    async def set_state(self, bucket_id: str, upload_id: str, state: UploadState) -> None:
        """Unconditionally set the state of an existing upload (no-op if it is gone)."""
        op = WriteOp().assert_exists().omap_set({STATE_KEY: state.raw})
        with contextlib.suppress(ObjectNotFound):
            await self.meta.operate(layout.upload_object(bucket_id, upload_id), op)

    async def remove(self, bucket_id: str, upload_id: str) -> None:
        with contextlib.suppress(ObjectNotFound):
            await self.meta.remove(layout.upload_object(bucket_id, upload_id))


def _token() -> bytes:
    return secrets.token_hex(8).encode()
