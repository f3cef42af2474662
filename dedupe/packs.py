"""Chunk packs: many new chunks in one backend object, written with one operation.

A pack ``k.<32 hex>`` holds the chunks one upload *created* (plain chunks
only: deltas stay single objects, so a pack never depends on another), each a
complete ``chunk_format`` blob at its offset, so a chunk is read with one
ranged read and checked exactly like a chunk object. Its omap:

- ``gen``, ``ref.<owner>``, ``zero_since``: the reference protocol of chunk
  objects (``dedupe.store``), per pack instead of per chunk. A manifest
  references each pack it uses once.
- ``table``: the chunk table (fingerprint, offset, stored length, raw length,
  codec per chunk), which the collector, fsck and compaction read.

A pack is created whole with its first reference in one exclusive create and is
never rewritten, so readers need no locking; its chunks are found through the
fingerprint index (``dedupe.fingerprints``), which is written after the pack.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass, field

from dedupe.chunk_format import Codec, EncodedChunk
from dedupe.errors import ManifestCorrupt

CHUNK_PREFIX = "c."
PACK_PREFIX = "k."
PACK_ID_LEN = 16
TABLE_KEY = "table"
_ROW = struct.Struct("<32sIIIB")


def new_pack_id() -> bytes:
    return secrets.token_bytes(PACK_ID_LEN)


def is_pack(key: bytes) -> bool:
    """Reference holders are keyed by a chunk's fingerprint (32 bytes) or a pack id (16)."""
    return len(key) == PACK_ID_LEN


def holder_oid(key: bytes) -> str:
    """The backend object of a reference holder: ``k.<id>`` for a pack, ``c.<fp>`` for a chunk."""
    return (PACK_PREFIX if len(key) == PACK_ID_LEN else CHUNK_PREFIX) + key.hex()


@dataclass(frozen=True, slots=True)
class PackSlot:
    """Where one chunk lives inside a pack."""

    fingerprint: bytes
    offset: int
    stored_len: int
    length: int  # raw bytes
    codec: Codec


def encode_table(slots: list[PackSlot]) -> bytes:
    return b"".join(
        _ROW.pack(s.fingerprint, s.offset, s.stored_len, s.length, s.codec) for s in slots
    )


def decode_table(data: bytes) -> list[PackSlot]:
    if len(data) % _ROW.size:
        raise ManifestCorrupt(f"pack table of {len(data)} bytes is not whole rows")
    try:
        return [
            PackSlot(fp, offset, stored, length, Codec(codec))
            for fp, offset, stored, length, codec in _ROW.iter_unpack(data)
        ]
    except ValueError as e:
        raise ManifestCorrupt(f"pack table: {e}") from None


@dataclass(slots=True)
class PackBuffer:
    """The chunks a writer has appended to the pack it will write next."""

    pack: bytes = field(default_factory=new_pack_id)
    slots: list[PackSlot] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)
    size: int = 0
    raw_size: int = 0

    def append(self, chunk: EncodedChunk) -> PackSlot:
        slot = PackSlot(chunk.fingerprint, self.size, chunk.stored_len, chunk.raw_len, chunk.codec)
        self.slots.append(slot)
        self.blobs.append(chunk.blob)
        self.size += chunk.stored_len
        self.raw_size += chunk.raw_len
        return slot

    def append_blob(self, slot: PackSlot, blob: bytes) -> PackSlot:
        """Copy a chunk's stored bytes from another pack (compaction)."""
        moved = PackSlot(slot.fingerprint, self.size, len(blob), slot.length, slot.codec)
        self.slots.append(moved)
        self.blobs.append(blob)
        self.size += len(blob)
        self.raw_size += slot.length
        return moved

    def data(self) -> bytes:
        return b"".join(self.blobs)


@dataclass(frozen=True, slots=True)
class PackedAt:
    """A chunk's place in a pack, as a reader needs it."""

    pack: bytes
    offset: int
    stored_len: int
