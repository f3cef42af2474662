"""Multipart upload records, their encodings and the completion rules (pure).

An upload's state lives in the omap of ``upload.<bucket id>.<upload id>`` in
the meta pool (keys below); the bucket's list of uploads lives in its index
shard under ``u`` (see ``registry_key``). Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from engine.errors import (
    EntityTooLarge,
    EntityTooSmall,
    InvalidPart,
    InvalidPartOrder,
)
from engine.payload import MAX_OBJECT_SIZE
from engine.records import ObjectEntry, Segment

MIN_PART_SIZE = 5 * 1024**2  # every part but the last (AWS)
MAX_PART_SIZE = 5 * 1024**3
MAX_PART_NUMBER = 10_000

# Omap keys of an upload object. Part keys are zero-padded so that bytewise
# order is part-number order (ListParts pages with one range scan).
STATE_KEY = "s"
META_KEY = "m"
GENERATION_KEY = "g"  # replaced by every part write; completion is guarded on it
MANIFEST_KEY = "c"  # the chosen parts and the entry, written when completion starts
PART_PREFIX = "p"

# Registry keys: ``u`` + escaped object key + separator + upload id. The
# escape maps \x01 to \x01\x02 (keys never hold NUL), so the separator
# \x01\x01 sorts below anything that can follow a key: the order of registry
# keys is (object key, upload id), bytewise, as ListMultipartUploads wants.
_ESC, _ESCAPED, _SEP = "\x01", "\x01\x02", "\x01\x01"
# Sorts after every valid UTF-8 continuation (U+10FFFF is the largest code point).
AFTER_ALL = "\U0010ffff"


class UploadState(StrEnum):
    OPEN = "open"  # parts may be uploaded
    COMPLETING = "completing"  # parts are frozen; the entry may or may not be committed
    COMMITTED = "committed"  # the entry is in the index; only cleanup remains
    ABORTING = "aborting"  # parts are frozen and being reclaimed

    @property
    def raw(self) -> bytes:
        return self.value.encode()


@dataclass(slots=True)
class UploadInfo:
    """What ListMultipartUploads shows of an upload (also the registry value)."""

    key: str
    upload_id: str
    initiated: float
    owner: str
    storage_class: str = "STANDARD"
    checksum_algorithm: str = ""  # e.g. "CRC32"; "" when none was asked for
    checksum_type: str = ""  # "COMPOSITE" or "FULL_OBJECT" with an algorithm

    def encode_listing(self) -> bytes:
        fields = asdict(self)
        del fields["key"], fields["upload_id"]  # both are in the registry key
        return json.dumps(fields, separators=(",", ":")).encode()

    @classmethod
    def decode_listing(cls, key: str, upload_id: str, raw: bytes) -> UploadInfo:
        return cls(key=key, upload_id=upload_id, **json.loads(raw))


@dataclass(slots=True)
class UploadMeta:
    """Everything CreateMultipartUpload fixed for the object it will become."""

    info: UploadInfo
    content_type: str = "binary/octet-stream"
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def decode(cls, raw: bytes) -> UploadMeta:
        fields = json.loads(raw)
        fields["info"] = UploadInfo(**fields["info"])
        return cls(**fields)


@dataclass(slots=True)
class PartRecord:
    number: int
    size: int
    etag: str  # quoted
    mtime: float
    segment: Segment
    checksums: dict[str, str] = field(default_factory=dict)  # e.g. {"CRC32": base64}

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> PartRecord:
        fields = json.loads(raw)
        fields["segment"] = Segment(**fields["segment"])
        return cls(**fields)


@dataclass(slots=True)
class Manifest:
    """A completion in progress: the (part number, ETag) list asked for and the entry built."""

    requested: list[tuple[int, str]]
    entry: ObjectEntry
    # entry_identity() of the entry the key held when the upload froze: a resumed
    # completion commits only over that one (None: written before this was kept).
    replaces: str | None = None

    def encode(self) -> bytes:
        doc = {"requested": [list(p) for p in self.requested], "replaces": self.replaces}
        head = json.dumps(doc, separators=(",", ":")).encode()
        return len(head).to_bytes(4, "big") + head + self.entry.encode()

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        n = int.from_bytes(raw[:4], "big")
        doc = json.loads(raw[4 : 4 + n])
        if isinstance(doc, list):  # the older form: the requested parts only
            doc = {"requested": doc, "replaces": None}
        requested = [(int(num), str(tag)) for num, tag in doc["requested"]]
        return cls(requested, ObjectEntry.decode(raw[4 + n :]), doc.get("replaces"))


def entry_identity(entry: ObjectEntry | None) -> str:
    """Tells one committed entry from any other of the same key ("" for none)."""
    if entry is None:
        return ""
    prefixes = ",".join(s.data_prefix for s in entry.segments)
    return f"{entry.etag}|{entry.mtime!r}|{prefixes}"


def new_upload_id(now: float) -> str:
    """Time-prefixed, so uploads of one key list in initiation order, as on AWS."""
    return f"{int(now * 1_000_000):014x}{secrets.token_hex(9)}"


def part_key(number: int) -> str:
    return f"{PART_PREFIX}{number:05d}"


def part_data_prefix(bucket_id: str, upload_id: str, number: int) -> str:
    """A fresh data prefix per part upload: a re-upload never touches committed stripes."""
    return f"{bucket_id}.{upload_id}.p{number}.{secrets.token_hex(4)}"


# -- registry keys --------------------------------------------------------------


def _escape(key: str) -> str:
    return key.replace(_ESC, _ESCAPED)


def registry_key(object_key: str, upload_id: str) -> str:
    return f"u{_escape(object_key)}{_SEP}{upload_id}"


def split_registry_key(raw: str) -> tuple[str, str]:
    """(object key, upload id) of a registry key (upload ids never hold \\x01)."""
    escaped, _, upload_id = raw[1:].rpartition(_SEP)
    return escaped.replace(_ESCAPED, _ESC), upload_id


def registry_prefix(key_prefix: str) -> str:
    """Registry keys of every upload whose object key starts with key_prefix."""
    return "u" + _escape(key_prefix)


def registry_after_key(object_key: str) -> str:
    """Sorts after every upload of object_key and before any longer key's."""
    return "u" + _escape(object_key) + _SEP + AFTER_ALL


def registry_after_prefix(common_prefix: str) -> str:
    """Sorts after every upload whose key starts with common_prefix."""
    return "u" + _escape(common_prefix) + AFTER_ALL


# -- completion -----------------------------------------------------------------


def normalize_etag(etag: str) -> str:
    return etag.strip().strip('"')


def multipart_etag(parts: list[PartRecord]) -> str:
    """AWS's ETag of a multipart object: md5 of the parts' binary md5s, then -N."""
    digest = hashlib.md5()
    for part in parts:
        digest.update(bytes.fromhex(normalize_etag(part.etag)))
    return f'"{digest.hexdigest()}-{len(parts)}"'


def select_parts(
    requested: list[tuple[int, str]], stored: dict[int, PartRecord]
) -> list[PartRecord]:
    """The stored parts a completion names, checked the way S3 checks them.

    Order first (InvalidPartOrder), then existence and ETag (InvalidPart),
    then the minimum size of every part but the last (EntityTooSmall).
    """
    previous = 0
    for number, _ in requested:
        if number <= previous:
            raise InvalidPartOrder(
                "The list of parts was not in ascending order. "
                "Parts must be ordered by part number."
            )
        previous = number
    chosen: list[PartRecord] = []
    for number, etag in requested:
        part = stored.get(number)
        if part is None or normalize_etag(part.etag) != normalize_etag(etag):
            raise InvalidPart(
                "One or more of the specified parts could not be found.  The part may "
                "not have been uploaded, or the specified entity tag may not match the "
                "part's entity tag.",
                PartNumber=str(number),
                ETag=normalize_etag(etag),
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise EntityTooSmall(
                "Your proposed upload is smaller than the minimum allowed size",
                ProposedSize=str(part.size),
                MinSizeAllowed=str(MIN_PART_SIZE),
                PartNumber=str(part.number),
                ETag=normalize_etag(part.etag),
            )
    if sum(p.size for p in chosen) > MAX_OBJECT_SIZE:
        raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size")
    return chosen


def completed_entry(meta: UploadMeta, parts: list[PartRecord]) -> ObjectEntry:
    """The index entry of the completed object: one segment per part, no bytes copied.

    Its mtime is the upload's initiation time, as AWS reports for multipart objects.
    """
    return ObjectEntry(
        size=sum(p.size for p in parts),
        etag=multipart_etag(parts),
        mtime=meta.info.initiated,
        content_type=meta.content_type,
        user_meta=dict(meta.user_meta),
        headers=dict(meta.headers),
        segments=[p.segment for p in parts],
        parts=len(parts),
        tags=dict(meta.tags),
    )
