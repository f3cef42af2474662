"""Dedupe-aware transfer of a version to another region: only the chunks the other side
lacks travel.

The sender lists the version's chunks (``chunk_map``: fingerprint and length,
in order, from its manifests) and asks the receiver which of them it holds;
the receiver answers from the manifests of the versions it already has of the
same key (``held_chunks``; a question about its other data, or another
owner's, gets no answer, so nothing leaks across buckets). Then the version
travels as *frames*, one per chunk, in order: fingerprint, length and a flag;
a chunk the receiver does not hold has its bytes after the header. The
receiver rebuilds the bytes (``FrameDecoder``; held chunks read from its own
store, sent ones checked against their fingerprints) and writes them as any
replica, so its own chunker and dedupe store them: the unchanged chunks are
found again and cost no new space.

Frame (little-endian): ``fingerprint 32s | length u32 | flag u8 [| bytes]``.
The codec is pure; reading held chunks is the only I/O here.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dedupe import ManifestEntry
from engine import layout
from engine.chunked import ChunkedPayloads
from engine.errors import InvalidRequestForBucket
from engine.records import ObjectEntry

FRAME = struct.Struct("<32sIB")
HELD, SENT = 0, 1
HELD_VERSIONS = 4  # the newest versions of a key whose chunks a receiver offers
MAX_CHUNK = 64 * 1024 * 1024  # a frame longer than any chunk is malformed


class BadFrames(InvalidRequestForBucket):
    """A frame stream that is malformed, or names a chunk the receiver does not hold."""


def frame(fp: bytes, length: int, data: bytes | None) -> bytes:
    """One chunk's frame: its bytes follow only when they are sent."""
    return FRAME.pack(fp, length, HELD if data is None else SENT) + (data or b"")


def framed_size(chunks: list[tuple[bytes, int]], sent: list[bool]) -> int:
    """The length of the frame stream that sends the chunks flagged in ``sent``."""
    return sum(FRAME.size + (length if send else 0)
               for (_, length), send in zip(chunks, sent, strict=True))


@dataclass(frozen=True)
class Frame:
    fingerprint: bytes
    length: int
    data: bytes | None  # None: a chunk the receiver holds


class FrameDecoder:
    """Frames out of a byte stream fed in pieces of any size (pure)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, piece: bytes) -> list[Frame]:
        self._buffer += piece
        out: list[Frame] = []
        while len(self._buffer) >= FRAME.size:
            fp, length, flag = FRAME.unpack_from(self._buffer)
            if flag not in (HELD, SENT) or not 0 < length <= MAX_CHUNK:
                raise BadFrames("Malformed chunk frame")
            end = FRAME.size + (length if flag == SENT else 0)
            if len(self._buffer) < end:
                break
            data = bytes(self._buffer[FRAME.size:end]) if flag == SENT else None
            del self._buffer[:end]
            if data is not None and hashlib.sha256(data).digest() != fp:
                raise BadFrames("A sent chunk does not match its fingerprint")
            out.append(Frame(fp, length, data))
        return out

    def close(self) -> None:
        if self._buffer:
            raise BadFrames("The chunk frames end in the middle of a frame")


async def chunk_map(chunks: ChunkedPayloads, entry: ObjectEntry) -> list[tuple[bytes, int]] | None:
    """(fingerprint, length) of each chunk of the version, in order; None when some of
    its bytes are not in chunks (inline, stripes of the old layout)."""
    if entry.is_inline or not all(seg.is_chunked for seg in entry.segments):
        return None
    out: list[tuple[bytes, int]] = []
    for seg in entry.segments:
        for n in range(seg.stripes):
            manifest = await chunks.load(layout.stripe_oid(seg.data_prefix, n), cached=True)
            out.extend((e.fingerprint, e.length) for e in manifest.entries)
    return out


class HeldChunks:
    """The chunks of a key's newest versions at the receiver, readable by fingerprint."""

    def __init__(self, chunks: ChunkedPayloads, entries: dict[bytes, ManifestEntry]) -> None:
        self._chunks = chunks
        self._entries = entries

    def holds(self, fp: bytes) -> bool:
        return fp in self._entries

    async def read(self, fp: bytes) -> bytes:
        entry = self._entries.get(fp)
        if entry is None:
            raise BadFrames(f"Chunk {fp.hex()} is not held here")
        try:
            return await self._chunks.store.read_entry(entry, self._chunks.cpu)
        except Exception as exc:  # gone or unreadable since the answer: send it all then
            raise BadFrames(f"Chunk {fp.hex()} cannot be read here: {exc}") from None

    async def rebuild(self, frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The version's bytes from its frame stream."""
        decoder = FrameDecoder()
        async for piece in frames:
            for one in decoder.feed(piece):
                yield one.data if one.data is not None else await self.read(one.fingerprint)
        decoder.close()


# The last few answers, by the versions they were made of: a large version's questions
# come in batches and then its PUT, each of which would read every manifest again.
_recent: OrderedDict[tuple[str, ...], HeldChunks] = OrderedDict()
_RECENT = 4


async def held_chunks(chunks: ChunkedPayloads, versions: list[ObjectEntry]) -> HeldChunks:
    """What the receiver offers: the chunks of ``versions`` (a key's newest ones)."""
    offered = versions[:HELD_VERSIONS]
    # Version ids are unique per bucket and stamp-ordered; their data prefixes make the
    # name unique across buckets, and a new version of the key changes it.
    name = tuple(seg.data_prefix for v in offered for seg in v.segments)
    if name in _recent:
        _recent.move_to_end(name)
        return _recent[name]
    entries: dict[bytes, ManifestEntry] = {}
    for version in offered:
        if version.delete_marker or version.is_inline:
            continue
        for seg in version.segments:
            if not seg.is_chunked:
                continue
            for n in range(seg.stripes):
                manifest = await chunks.load(layout.stripe_oid(seg.data_prefix, n), cached=True)
                for e in manifest.entries:
                    entries.setdefault(e.fingerprint, e)
    held = _recent[name] = HeldChunks(chunks, entries)
    while len(_recent) > _RECENT:
        _recent.popitem(last=False)
    return held
