"""The bytes of one stored chunk: a fixed binary header, then the (compressed) payload.

Pure: no I/O. ``encode_chunk`` fingerprints, checksums and compresses raw bytes;
``decode_chunk`` verifies and returns them, raising ``ChunkCorrupt`` rather than
ever returning wrong bytes.

Header (72 bytes, little-endian)::

    0  magic        4s  b"ATCK"
    4  version      B   1
    5  codec        B   0 raw, 1 zstd, 2 zstd with a trained dictionary,
                        3 delta: zstd against another chunk's raw bytes
    6  cipher       B   0 none; 1 AES-256-GCM (reserved: key id, nonce and tag below)
    7  flags        B   0 (reserved)
    8  raw_len      I   bytes after decoding
    12 stored_len   I   payload bytes after this header
    16 dict_id      I   zstd dictionary id (codec 2), else 0
    20 key_id       I   encryption key id (0 with no cipher)
    24 xxh3_128     16s checksum of the raw bytes, verified on every read
    40 nonce        12s AES-GCM nonce (zeros with no cipher)
    52 tag          16s AES-GCM tag (zeros with no cipher)
    68 reserved     4s  zeros

A delta chunk's payload starts with the SHA-256 of its base chunk (32 bytes),
then a zstd frame whose dictionary is the base's raw bytes (zstd's raw-content
dictionary: matches refer into the base, so a lightly edited chunk costs about
its edits). A base is never itself a delta: one extra read at most.

Encryption per chunk therefore fits without a format change: the cipher byte,
key id, nonce and tag already have their place. The identity (SHA-256) is not
stored: it is the object's name.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from dataclasses import dataclass
from enum import IntEnum

import xxhash
import zstandard

from dedupe.errors import ChunkCorrupt

MAGIC = b"ATCK"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sBBBBIIII16s12s16s4s")
HEADER_SIZE = _HEADER.size  # 72
_NO_NONCE = bytes(12)
_NO_TAG = bytes(16)
_RESERVED = bytes(4)


class Codec(IntEnum):
    RAW = 0
    ZSTD = 1
    ZSTD_DICT = 2
    ZSTD_DELTA = 3


BASE_FP_SIZE = 32  # a delta payload starts with its base chunk's fingerprint


class Cipher(IntEnum):
    NONE = 0
    AES_256_GCM = 1  # reserved


@dataclass(frozen=True, slots=True)
class EncodedChunk:
    """A chunk ready to store: identity, sizes, codec and the full object bytes."""

    fingerprint: bytes  # SHA-256 of the raw bytes (32)
    raw_len: int
    codec: Codec
    blob: bytes  # header + payload

    @property
    def stored_len(self) -> int:
        return len(self.blob)


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    version: int
    codec: Codec
    cipher: Cipher
    raw_len: int
    stored_len: int
    dict_id: int
    checksum: bytes


# zstd contexts are costly to create and not thread-safe: one per worker thread.
_local = threading.local()
ZstdDict = zstandard.ZstdCompressionDict


def _compressor(level: int, zdict: ZstdDict | None) -> zstandard.ZstdCompressor:
    cache = _local.__dict__.setdefault("compressors", {})
    key = (level, zdict.dict_id() if zdict is not None else 0)
    if key not in cache:
        cache[key] = zstandard.ZstdCompressor(level=level, dict_data=zdict)
    return cache[key]


def _decompressor(zdict: ZstdDict | None) -> zstandard.ZstdDecompressor:
    cache = _local.__dict__.setdefault("decompressors", {})
    key = zdict.dict_id() if zdict is not None else 0
    if key not in cache:
        cache[key] = zstandard.ZstdDecompressor(dict_data=zdict)
    return cache[key]


def fingerprint(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def checksum(raw: bytes) -> bytes:
    return xxhash.xxh3_128_digest(raw)


def encode_chunk(
    raw: bytes,
    level: int = 3,
    min_saving: float = 0.03,
    zdict: ZstdDict | None = None,
    fp: bytes | None = None,
) -> EncodedChunk:
    """Fingerprint, checksum and (when it pays) compress one chunk.

    zstd's output (with the tier's trained dictionary when there is one) is kept
    only if it saves at least ``min_saving`` of the raw size; otherwise the chunk
    is stored raw. ``fp``: the fingerprint when the caller computed it already.
    Runs in a worker thread: hashlib, xxhash and zstandard all release the GIL
    on large buffers.
    """
    packed = _compressor(level, zdict).compress(raw)
    dict_id = 0
    if len(packed) > len(raw) * (1.0 - min_saving):
        codec, payload = Codec.RAW, raw
    elif zdict is not None:
        codec, payload, dict_id = Codec.ZSTD_DICT, packed, zdict.dict_id()
    else:
        codec, payload = Codec.ZSTD, packed
    header = _HEADER.pack(
        MAGIC, FORMAT_VERSION, codec, Cipher.NONE, 0, len(raw), len(payload), dict_id, 0,
        checksum(raw), _NO_NONCE, _NO_TAG, _RESERVED,
    )  # fmt: skip
    return EncodedChunk(fp or fingerprint(raw), len(raw), codec, header + payload)


def encode_delta(raw: bytes, base_fp: bytes, base_raw: bytes, level: int = 3) -> EncodedChunk:
    """``raw`` as zstd against ``base_raw`` (the raw bytes of chunk ``base_fp``).

    The caller keeps it only if it is smaller than the chunk's own encoding.
    """
    base = zstandard.ZstdCompressionDict(base_raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    payload = base_fp + zstandard.ZstdCompressor(level=level, dict_data=base).compress(raw)
    header = _HEADER.pack(
        MAGIC, FORMAT_VERSION, Codec.ZSTD_DELTA, Cipher.NONE, 0, len(raw), len(payload), 0, 0,
        checksum(raw), _NO_NONCE, _NO_TAG, _RESERVED,
    )  # fmt: skip
    return EncodedChunk(fingerprint(raw), len(raw), Codec.ZSTD_DELTA, header + payload)


def delta_base(blob: bytes, head: ChunkHeader) -> bytes | None:
    """The base chunk a delta chunk needs (None for every other codec)."""
    if head.codec is not Codec.ZSTD_DELTA:
        return None
    return bytes(blob[HEADER_SIZE : HEADER_SIZE + BASE_FP_SIZE])


def object_size(blob: bytes) -> int | None:
    """The chunk object's whole size as its header declares it (None: no valid header).

    Reads a prefix: lets a reader that fetched too little know how much is left.
    """
    try:
        return HEADER_SIZE + _header_fields(blob)[6]
    except ChunkCorrupt:
        return None


def peek_header(prefix: bytes, fp: bytes = b"") -> tuple[Codec, int, int]:
    """(codec, raw length, whole object size) from the first HEADER_SIZE bytes."""
    fields = _header_fields(prefix, fp)
    try:
        return Codec(fields[2]), fields[5], HEADER_SIZE + fields[6]
    except ValueError as e:
        raise ChunkCorrupt(fp, str(e)) from None


def _header_fields(blob: bytes, fp: bytes = b"") -> tuple:
    """The header's fields, once its length, magic and version are right."""
    if len(blob) < HEADER_SIZE:
        raise ChunkCorrupt(fp, f"short object ({len(blob)} bytes)")
    fields = _HEADER.unpack_from(blob)
    if fields[0] != MAGIC:
        raise ChunkCorrupt(fp, "bad magic")
    if fields[1] != FORMAT_VERSION:
        raise ChunkCorrupt(fp, f"unknown format version {fields[1]}")
    return fields


def parse_header(blob: bytes, fp: bytes = b"") -> ChunkHeader:
    fields = _header_fields(blob, fp)
    _magic, version, codec, cipher, _flags, raw_len, stored_len, dict_id, _key, xxh = fields[:10]
    try:
        codec, cipher = Codec(codec), Cipher(cipher)
    except ValueError as e:
        raise ChunkCorrupt(fp, str(e)) from None
    if cipher is not Cipher.NONE:
        raise ChunkCorrupt(fp, "encrypted chunks are not supported yet")
    if len(blob) != HEADER_SIZE + stored_len:
        got = len(blob) - HEADER_SIZE
        raise ChunkCorrupt(fp, f"payload is {got} bytes, header says {stored_len}")
    if (codec is Codec.ZSTD_DICT) != (dict_id != 0):
        raise ChunkCorrupt(fp, f"codec {codec.name} with dictionary id {dict_id}")
    if codec is Codec.ZSTD_DELTA and stored_len <= BASE_FP_SIZE:
        raise ChunkCorrupt(fp, "delta chunk without its base")
    return ChunkHeader(version, codec, cipher, raw_len, stored_len, dict_id, xxh)


def decode_chunk(
    blob: bytes,
    fp: bytes = b"",
    *,
    verify_identity: bool = False,
    zdict: ZstdDict | None = None,
    base_raw: bytes | None = None,
) -> bytes:
    """The raw bytes of a stored chunk, verified against its XXH3-128 checksum.

    A ``ZSTD_DICT`` chunk needs ``zdict``, the dictionary its header names; a
    ``ZSTD_DELTA`` chunk needs ``base_raw``, the raw bytes of its base chunk.
    ``verify_identity`` also recomputes SHA-256 against ``fp`` (fsck does;
    reads rely on the cheaper XXH3).
    """
    head = parse_header(blob, fp)
    payload = memoryview(blob)[HEADER_SIZE:]
    if head.codec is Codec.RAW:
        raw = bytes(payload)
    elif head.codec is Codec.ZSTD_DELTA:
        if base_raw is None:
            raise ValueError("a delta chunk needs its base's raw bytes")
        base = zstandard.ZstdCompressionDict(base_raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        try:
            raw = zstandard.ZstdDecompressor(dict_data=base).decompress(
                payload[BASE_FP_SIZE:], max_output_size=head.raw_len
            )
        except zstandard.ZstdError as e:
            raise ChunkCorrupt(fp, f"zstd delta: {e}") from None
    else:
        if head.codec is Codec.ZSTD_DICT and (zdict is None or zdict.dict_id() != head.dict_id):
            raise ValueError(f"chunk needs zstd dictionary {head.dict_id}")
        use = zdict if head.codec is Codec.ZSTD_DICT else None
        try:
            raw = _decompressor(use).decompress(payload, max_output_size=head.raw_len)
        except zstandard.ZstdError as e:
            raise ChunkCorrupt(fp, f"zstd: {e}") from None
    if len(raw) != head.raw_len:
        raise ChunkCorrupt(fp, f"decoded {len(raw)} bytes, header says {head.raw_len}")
    if checksum(raw) != head.checksum:
        raise ChunkCorrupt(fp, "XXH3-128 checksum mismatch")
    if verify_identity and fingerprint(raw) != fp:
        raise ChunkCorrupt(fp, "SHA-256 does not match the chunk's name")
    return raw
