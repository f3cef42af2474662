"""Tunables of the dedupe layer, in one frozen value the engine builds from its settings."""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    """FastCDC sizes. The defaults were picked by ``benchmarks/dedupe.py --sweep``
    (docs/design-dedupe.md): about 32 KiB chunks.

    FastCDC's real mean is about ``avg_size + min_size`` (the cut-point skip), so
    ``avg_size=24 KiB, min_size=8 KiB`` gives chunks of about 32 KiB.
    """

    min_size: int = 8 * KiB
    avg_size: int = 24 * KiB
    max_size: int = 128 * KiB
    normalized_chunking: int = 1

    def __post_init__(self) -> None:
        if not 64 <= self.min_size <= self.avg_size <= self.max_size:
            raise ValueError(f"need 64 <= min <= avg <= max, got {self}")
        if not 256 <= self.avg_size <= 4 * MiB or not 1024 <= self.max_size <= 16 * MiB:
            raise ValueError(f"chunk sizes out of FastCDC's range: {self}")


@dataclass(frozen=True, slots=True)
class DedupeConfig:
    chunking: ChunkingConfig = ChunkingConfig()
    # zstd level per chunk; 3 is zstd's own default (fast, good ratio).
    zstd_level: int = 3
    # Store a chunk raw unless zstd saves at least this fraction of its size:
    # incompressible data then costs no decompression on read.
    min_saving: float = 0.03
    # Compress with the tier's trained zstd dictionary (learned from its first
    # compressible chunks; see dedupe.dictionary).
    use_dictionary: bool = True
    # Store a new chunk that follows a duplicate as a zstd delta against the
    # chunk it replaced, when that is smaller (dedupe.delta): edits then cost
    # about their own size instead of a whole chunk each.
    delta_chunks: bool = True
    # Chunks one writer has in flight (hashing, compressing, storing): bounds
    # memory to about write_window x max_size per upload.
    write_window: int = 16
    # New chunks go into packs of about this many stored bytes, written with one
    # operation each (dedupe.packs); 0 stores every chunk as an object of its
    # own (the layout before packs, still read everywhere).
    pack_bytes: int = 4 * MiB
    # The collector's pass rewrites a pack whose chunks still in use take less
    # than this share of it (dedupe.compaction).
    pack_min_live: float = 0.5
    # The tier new chunks are written to (None: the store's default, the hot tier).
    tier: str | None = None
    # Tiers hotter than ``tier``, hottest first: a chunk one of them holds in a pack is
    # referenced there rather than stored again (shared chunks stay in the hottest).
    hotter_tiers: tuple[str, ...] = ()
    # Owners whose references do not make a hotter tier's pack needed there: the
    # manifests of the version being moved out of it (its own use is what moves).
    moving_owners: frozenset[str] = frozenset()
    # Chunks one reader fetches ahead of the one it is yielding.
    read_ahead: int = 4
    # A chunk with no references is removed only after it stayed so this long:
    # readers of a just-replaced object still find its chunks.
    gc_grace_seconds: float = 3600.0
    # fsck drops a reference no live manifest names only when it is older than
    # this, so uploads still in flight (refs taken, manifest not yet committed)
    # keep theirs.
    stale_ref_seconds: float = 24 * 3600.0
