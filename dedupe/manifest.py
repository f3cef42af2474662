"""Manifests: the ordered list of chunks that make up one payload. Pure codec.

A manifest belongs to one *owner id* (unique per upload, e.g. ``<bucket id>.<uuid>``):
each chunk it lists carries a reference ``ref.<owner id>``, so the manifest and
the references name each other and fsck can check one against the other.

Each entry says where its chunk lives (a *tier* name, mapped to a pool by the
``ChunkStore``), so a tiering mover relocates a chunk by copying it, rewriting
the manifest's entry and dropping the old reference — the index entry, which
names only the manifest, is never touched. Each entry also has an opaque
extension field (up to 255 bytes, empty today) for per-chunk key material when
AES-256-GCM arrives; the chunk header already has room for nonce and tag.

A chunk lives either in its own object ``c.<fp>`` or at an offset in a pack
(``dedupe.packs``). Manifests with packed chunks set flag ``LOCATED``: each
entry is then followed by the pack id (16 bytes, all zero for a chunk object)
and the offset. Manifests without it are read as before.

Encoding (little-endian)::

    b"ATMF" | version u8 | flags u8 | n_tiers u16 | n_chunks u32 | size u64 | id_len u16 | id
    n_tiers x (len u8 | tier name utf-8)
    n_chunks x (sha256 32s | length u32 | stored_len u32 | codec u8 | tier index u16
                | ext_len u8 | ext [| pack 16s | offset u32 when flags & LOCATED])
    xxh3_64 of all of the above (8 bytes)
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import accumulate

import xxhash

from dedupe.chunk_format import Codec
from dedupe.errors import ManifestCorrupt

MAGIC = b"ATMF"
VERSION = 1
_HEAD = struct.Struct("<4sBBHIQH")
_ENTRY = struct.Struct("<32sIIBHB")
_TRAILER = struct.Struct("<Q")
_LOCATION = struct.Struct("<16sI")
LOCATED = 1  # header flag: entries carry (pack, offset)
_NO_PACK = bytes(16)


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    fingerprint: bytes  # SHA-256 of the raw chunk
    length: int  # raw bytes
    codec: Codec
    tier: str  # where the chunk lives (the ChunkStore maps tiers to pools)
    stored_len: int = 0  # bytes the chunk object takes (header included)
    ext: bytes = b""  # reserved: per-chunk key material (AES-256-GCM)
    pack: bytes = b""  # the pack holding the chunk (dedupe.packs); empty: its own object
    offset: int = 0  # in the pack

    @property
    def holder(self) -> bytes:
        """What carries this chunk's reference: its pack, or the chunk object itself."""
        return self.pack or self.fingerprint


@dataclass(slots=True)
class Manifest:
    owner: str
    entries: list[ManifestEntry] = field(default_factory=list)
    _ends: list[int] | None = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> int:
        return self.ends[-1] if self.entries else 0

    @property
    def ends(self) -> list[int]:
        """Exclusive end offset of each chunk (prefix sums, computed once)."""
        if self._ends is None or len(self._ends) != len(self.entries):
            self._ends = list(accumulate(e.length for e in self.entries))
        return self._ends

    def chunk_span(self, start: int, end: int) -> range:
        """Indices of the entries that hold bytes [start, end)."""
        if start >= end:
            return range(0)
        first = bisect.bisect_right(self.ends, start)
        last = bisect.bisect_left(self.ends, end)
        return range(first, min(last + 1, len(self.entries)))

    def start_of(self, index: int) -> int:
        return self.ends[index - 1] if index > 0 else 0

    def chunk_refs(self) -> set[tuple[str, bytes]]:
        """The distinct (tier, holder) pairs, one reference each: a chunk object's
        fingerprint, or a pack's id (``dedupe.packs.is_pack``)."""
        return {(e.tier, e.holder) for e in self.entries}

    def relocated(self, fingerprint: bytes, from_tier: str, to_tier: str) -> Manifest:
        """A copy with every entry of that chunk in ``from_tier`` moved to ``to_tier``."""
        moved = [
            replace(e, tier=to_tier) if e.fingerprint == fingerprint and e.tier == from_tier else e
            for e in self.entries
        ]
        return Manifest(self.owner, moved)


def encode_manifest(m: Manifest) -> bytes:
    tiers = list(dict.fromkeys(e.tier for e in m.entries))
    tier_index = {t: i for i, t in enumerate(tiers)}
    owner = m.owner.encode()
    flags = LOCATED if any(e.pack for e in m.entries) else 0
    out = bytearray(
        _HEAD.pack(MAGIC, VERSION, flags, len(tiers), len(m.entries), m.size, len(owner))
    )
    out += owner
    for t in tiers:
        name = t.encode()
        out += struct.pack("<B", len(name)) + name
    for e in m.entries:
        out += _ENTRY.pack(
            e.fingerprint, e.length, e.stored_len, e.codec, tier_index[e.tier], len(e.ext)
        )
        out += e.ext
        if flags & LOCATED:
            out += _LOCATION.pack(e.pack or _NO_PACK, e.offset)
    out += _TRAILER.pack(xxhash.xxh3_64_intdigest(out))
    return bytes(out)


def decode_manifest(data: bytes) -> Manifest:
    try:
        return _decode(memoryview(data))
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as e:
        raise ManifestCorrupt(f"undecodable manifest: {e}") from None


def _decode(buf: memoryview) -> Manifest:
    if len(buf) < _HEAD.size + _TRAILER.size:
        raise ManifestCorrupt("manifest too short")
    (want,) = _TRAILER.unpack_from(buf, len(buf) - _TRAILER.size)
    body = buf[: len(buf) - _TRAILER.size]
    if xxhash.xxh3_64_intdigest(body) != want:
        raise ManifestCorrupt("manifest checksum mismatch")
    magic, version, flags, n_tiers, n_chunks, size, owner_len = _HEAD.unpack_from(body)
    if magic != MAGIC or version != VERSION:
        raise ManifestCorrupt(f"not a version-{VERSION} manifest")
    pos = _HEAD.size
    owner = bytes(body[pos : pos + owner_len]).decode()
    pos += owner_len
    tiers = []
    for _ in range(n_tiers):
        n = body[pos]
        tiers.append(bytes(body[pos + 1 : pos + 1 + n]).decode())
        pos += 1 + n
    entries = []
    for _ in range(n_chunks):
        fp, length, stored, codec, tier, ext_len = _ENTRY.unpack_from(body, pos)
        pos += _ENTRY.size
        ext = bytes(body[pos : pos + ext_len])
        pos += ext_len
        pack, offset = b"", 0
        if flags & LOCATED:
            pack, offset = _LOCATION.unpack_from(body, pos)
            pos += _LOCATION.size
            pack = b"" if pack == _NO_PACK else pack
        entries.append(
            ManifestEntry(fp, length, Codec(codec), tiers[tier], stored, ext, pack, offset)
        )
    if pos != len(body):
        raise ManifestCorrupt(f"{len(body) - pos} trailing bytes")
    m = Manifest(owner, entries)
    if m.size != size:
        raise ManifestCorrupt(f"entries add up to {m.size} bytes, header says {size}")
    return m


def manifests_refs(manifests: Iterable[Manifest]) -> dict[tuple[str, bytes], set[str]]:
    """(tier, fingerprint) -> owners that reference it: what the refcounts should be."""
    refs: dict[tuple[str, bytes], set[str]] = {}
    for m in manifests:
        for key in m.chunk_refs():
            refs.setdefault(key, set()).add(m.owner)
    return refs
