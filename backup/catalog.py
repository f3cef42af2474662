"""What a backup run holds, and how it is named and checked (pure).

A run's *catalogue* lists every object of the source bucket as it was when
the run read it: the key, the identity of the source version, where its copy
lives in the target and the metadata a restore puts back. Runs are
incremental: a key whose source version is the one the last good run
copied keeps that run's copy, so only new versions move. Each catalogue is
whole, so restoring a run needs that run's record alone.

Copies are filed under ``<prefix><bucket>/<version identity>/<key>`` and never
overwritten, so a target keeps every run's copies (and their retention)
however often a key changes, versioned or not.

A copy is verified by reading it back in full and recomputing the source's
S3 ETag over the bytes read: the MD5 of a simple object, or for a multipart
one the MD5 of its parts' MD5s, with the part sizes the engine kept.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

import zstandard

from engine import NULL, ObjectEntry

MAX_KEY = 1024
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


@dataclass(slots=True)
class CatalogEntry:
    key: str
    ident: str  # the source version's identity (see ``version_ident``)
    target_key: str
    target_version: str | None  # the copy's version id in the target, if it has one
    size: int
    etag: str
    content_type: str
    user_meta: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    run: str = ""  # the run that copied it
    lock_until: float | None = None  # the copy's COMPLIANCE retention, if any
    part_sizes: list[int] = field(default_factory=list)  # a multipart ETag's parts
    headers: dict[str, str] = field(default_factory=dict)  # Cache-Control, Content-Encoding...


@dataclass(slots=True)
class RunRecord:
    run_id: str
    bucket: str
    target: str  # the target's address (never its credentials)
    started: float
    status: str = RUNNING
    finished: float = 0.0
    objects: int = 0  # in the catalogue
    copied: int = 0  # copied by this run (the rest were kept from earlier runs)
    bytes_copied: int = 0
    verified: int = 0
    lock_until: float | None = None  # COMPLIANCE retention of this run's copies
    base_run: str | None = None  # the run whose copies unchanged keys kept
    error: str = ""
    owner: str = ""  # the source bucket's owner and region, to re-create it on restore
    region: str = "us-east-1"

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> RunRecord:
        return cls(**json.loads(raw))


def new_run_id(now: float, token: str) -> str:
    """Sortable by start time (to the millisecond): ``20261207T031500.123Z-<token>``."""
    ms = int(now * 1000) % 1000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{ms:03d}Z-{token}"


def content_headers(entry: ObjectEntry) -> dict[str, str]:
    """The headers an object is served with (not the gateway's own reserved ones)."""
    return {k: v for k, v in entry.headers.items() if not k.startswith("x-atonix-")}


def version_ident(entry: ObjectEntry) -> str:
    """A source version's identity: its id, or for the null version its stamp and ETag."""
    if entry.version_id is not None and entry.version_id != NULL:
        return entry.version_id
    when = entry.stamp or int(entry.mtime * 1_000_000)
    return f"null-{when:x}-{entry.etag.strip(chr(34))[:12]}"


def target_key(prefix: str, bucket: str, ident: str, key: str) -> str:
    """Where a version's copy lives; keys too long for that get a digest of themselves."""
    name = f"{prefix}{bucket}/{ident}/{key}"
    if len(name.encode()) <= MAX_KEY:
        return name
    return f"{prefix}{bucket}/{ident}/#" + hashlib.sha256(key.encode()).hexdigest()


def encode_catalog(entries: list[CatalogEntry]) -> bytes:
    doc = [asdict(e) for e in entries]
    return zstandard.ZstdCompressor(level=3).compress(
        json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    )


def decode_catalog(raw: bytes) -> list[CatalogEntry]:
    doc = json.loads(zstandard.ZstdDecompressor().decompress(raw))
    return [CatalogEntry(**item) for item in doc]


def part_sizes(entry: ObjectEntry) -> list[int]:
    """The sizes of a multipart object's parts (what its ETag was computed over)."""
    multipart = entry.parts > 0 and "-" in entry.etag
    return [seg.size for seg in entry.segments] if multipart else []


class EtagCheck:
    """Recomputes an S3 ETag over bytes read back, with the source's part sizes."""

    def __init__(self, etag: str, sizes: list[int]) -> None:
        self.expected = etag.strip('"')
        self.part_sizes = sizes
        self._part = hashlib.md5(usedforsecurity=False)
        self._whole = hashlib.md5(usedforsecurity=False)
        self._digests: list[bytes] = []
        self._in_part = 0
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        if not self.part_sizes:
            self._whole.update(data)
            return
        view = memoryview(data)
        while view:
            limit = self.part_sizes[len(self._digests)] if len(self._digests) < len(
                self.part_sizes) else len(view) + self._in_part
            take = min(len(view), limit - self._in_part)
            self._part.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == limit:
                self._digests.append(self._part.digest())
                self._part = hashlib.md5(usedforsecurity=False)
                self._in_part = 0

    def matches(self) -> bool:
        if not self.part_sizes:
            return self._whole.hexdigest() == self.expected
        digests = list(self._digests)
        if self._in_part:
            digests.append(self._part.digest())
        # Declared parts not reached by any byte: empty ones (a last part of 0 bytes).
        for size in self.part_sizes[len(digests):]:
            if size == 0:
                digests.append(hashlib.md5(b"", usedforsecurity=False).digest())
        combined = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
        return f"{combined}-{len(digests)}" == self.expected
