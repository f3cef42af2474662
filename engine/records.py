"""Records stored on the backend and their byte encodings (pure)."""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field, fields

import orjson

ENTRY_MAGIC = b"E1"
STRIPES = "stripes"
MANIFESTS = "manifests"
_LEN = struct.Struct(">I")
# Omitted from an encoded entry when they hold these values: unversioned entries
# keep the bytes they always had.
_VERSION_DEFAULTS = {"version_id": None, "delete_marker": False, "stamp": 0, "restored": []}


@dataclass(slots=True)
class BucketRecord:
    name: str
    bucket_id: str
    owner: str
    created: float
    region: str = "us-east-1"

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> BucketRecord:
        return cls(**json.loads(raw))


@dataclass(frozen=True, slots=True)
class BucketDedupe:
    """A bucket's data-path policy (``cfg.dedupe``): dedupe on/off and zstd level (0 = off)."""

    enabled: bool = True
    compression_level: int | None = None  # None: the engine's default


@dataclass(slots=True)
class Segment:
    """A run of payload pieces ``<data_prefix>.<n:08x>``, each ``stripe_size`` bytes
    (the last one shorter).

    ``kind`` says what the pieces are: ``stripes`` are raw byte objects in the
    data pool (the original layout, still read); ``manifests`` are dedupe
    manifests (``m.<data_prefix>.<n:08x>`` in the meta pool, each the owner of
    the chunk references of its span; see engine.chunked).

    A simple PUT has one segment; a multipart object has one per part, so a
    part's bytes are never copied when the upload completes.
    """

    data_prefix: str
    size: int
    stripe_size: int
    stripes: int
    kind: str = "stripes"

    @property
    def is_chunked(self) -> bool:
        return self.kind == MANIFESTS


@dataclass(slots=True)
class ObjectEntry:
    """One object version in the bucket index.

    Small objects carry their bytes in ``inline``; larger ones point at
    payload ``segments`` in the data pool.
    """

    size: int
    etag: str  # quoted, as S3 returns it
    mtime: float
    content_type: str = "binary/octet-stream"
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # Content-Encoding, Cache-Control...
    segments: list[Segment] = field(default_factory=list)
    parts: int = 0  # number of multipart parts (segments map 1:1 to parts); 0 = simple PUT
    checksums: dict[str, str] = field(default_factory=dict)  # e.g. {"CRC32": base64}
    tags: dict[str, str] = field(default_factory=dict)
    inline: bytes = b""
    # Versioning (engine.versions): the version id (None: the null version), whether
    # this version is a delete marker, and the hybrid-clock stamp it was written at
    # (0 for entries written while the bucket was never versioned).
    version_id: str | None = None
    delete_marker: bool = False
    stamp: int = 0
    # A temporary copy of an archived (cold archive tier) version's payload in the
    # hot tier, made by RestoreObject and dropped when the restore expires.
    restored: list[Segment] = field(default_factory=list)

    def encode(self) -> bytes:
        # (orjson, and no dataclasses.asdict deep copy: this runs on every PUT)
        meta = {}
        for name in _ENTRY_FIELDS:
            value = getattr(self, name)
            if name not in _VERSION_DEFAULTS or value != _VERSION_DEFAULTS[name]:
                meta[name] = value
        meta["segments"] = [asdict(seg) for seg in self.segments]
        if self.restored:
            meta["restored"] = [asdict(seg) for seg in self.restored]
        head = orjson.dumps(meta)
        return ENTRY_MAGIC + _LEN.pack(len(head)) + head + self.inline

    @classmethod
    def decode(cls, raw: bytes) -> ObjectEntry:
        if raw[:2] != ENTRY_MAGIC:
            raise ValueError("not an object entry")
        (n,) = _LEN.unpack_from(raw, 2)
        meta = orjson.loads(raw[6 : 6 + n])
        segments = meta.get("segments")
        meta["segments"] = [Segment(**seg) for seg in segments] if segments else []
        if "restored" in meta:
            meta["restored"] = [Segment(**seg) for seg in meta["restored"]]
        return cls(**meta, inline=bytes(raw[6 + n :]))

    @property
    def is_inline(self) -> bool:
        return not self.segments

    @property
    def stored_segments(self) -> list[Segment]:
        """Every payload the entry owns: what is released with it."""
        return self.segments + self.restored if self.restored else self.segments


_ENTRY_FIELDS = tuple(f.name for f in fields(ObjectEntry) if f.name != "inline")
