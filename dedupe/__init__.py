"""dedupe: content-defined chunks, fingerprints, compression and reference counts.

The layer between the object engine and the storage backend (imports only
``storage``). The engine's payload path uses:

- ``DedupeWriter``: stream a body in, get a ``Manifest`` once every chunk is
  stored and referenced (then the engine stores the manifest and commits its
  index entry); ``abort()`` drops references of a failed upload.
- ``read_range``: stream a byte range of a manifest back, verified.
- ``ChunkStore.release``: drop a manifest's references after its entry is gone.
- ``ChunkCollector`` and ``fsck``: background garbage collection and checking.
- ``encode_manifest`` / ``decode_manifest``: the manifest's bytes.

See docs/design-dedupe.md.
"""

from dedupe.cache import ChunkCache
from dedupe.chunk_format import Codec, EncodedChunk, decode_chunk, encode_chunk
from dedupe.chunker import StreamChunker
from dedupe.config import ChunkingConfig, DedupeConfig
from dedupe.delta import ManifestSource
from dedupe.errors import ChunkCorrupt, ChunkMissing, DedupeError, FailpointHit, ManifestCorrupt
from dedupe.fsck import FsckReport, fsck
from dedupe.gc import ChunkCollector, GcReport
from dedupe.manifest import Manifest, ManifestEntry, decode_manifest, encode_manifest
from dedupe.reader import read_all, read_range
from dedupe.store import ChunkStore, DedupeStats
from dedupe.workers import CpuPool
from dedupe.writer import DedupeWriter

__all__ = [
    "ChunkCache",
    "ChunkCollector",
    "ChunkCorrupt",
    "ChunkMissing",
    "ChunkStore",
    "ChunkingConfig",
    "Codec",
    "CpuPool",
    "DedupeConfig",
    "DedupeError",
    "DedupeStats",
    "DedupeWriter",
    "EncodedChunk",
    "FailpointHit",
    "FsckReport",
    "GcReport",
    "Manifest",
    "ManifestCorrupt",
    "ManifestEntry",
    "ManifestSource",
    "StreamChunker",
    "decode_chunk",
    "decode_manifest",
    "encode_chunk",
    "encode_manifest",
    "fsck",
    "read_all",
    "read_range",
]
