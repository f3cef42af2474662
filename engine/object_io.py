"""What object reads and writes carry: a PUT's request (body, metadata, conditions) and a
reader of one version's byte range, plus HTTP range resolution. Value types shared
by the object, copy, multipart and front-end code."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from engine.conditions import WriteCondition
from engine.errors import InvalidObjectState, InvalidRange
from engine.payload import PayloadStore
from engine.records import ObjectEntry, Segment
from engine.replica_commit import ReplicaOf
from engine.tiers import storage_class_of


@dataclass(slots=True)
class PutRequest:
    body: AsyncIterator[bytes]
    size: int | None  # Content-Length when known (None for chunked bodies)
    content_type: str | None = None
    user_meta: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    content_md5: bytes | None = None
    tags: dict[str, str] | None = None
    # Called once the body is consumed: checksums computed over it ({"CRC32": base64}).
    checksums: Callable[[], dict[str, str]] | None = None
    condition: WriteCondition | None = None  # checked atomically with the commit
    storage_class: str | None = None  # x-amz-storage-class: picks the tier (engine.tiers)
    # A replica from another region: committed with its source's version id and stamp.
    replica: ReplicaOf | None = None


@dataclass(slots=True)
class ObjectReader:
    """An entry plus the byte range to stream; ``body()`` yields the bytes."""

    entry: ObjectEntry
    start: int
    end: int  # exclusive
    _payloads: PayloadStore
    # What the bytes are read from: the entry's segments, or an archived version's
    # restored copy; None: archived and not restored, so no byte may be read.
    segments: list[Segment] | None

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def archived(self) -> bool:
        """The version's bytes wait in an archive tier for a RestoreObject."""
        return self.segments is None

    async def body(self) -> AsyncIterator[bytes]:
        if self.segments is None:
            raise InvalidObjectState(
                "The operation is not valid for the object's storage class",
                StorageClass=storage_class_of(self.entry.headers),
            )
        if self.length <= 0:
            return
        if self.entry.is_inline:
            yield self.entry.inline[self.start : self.end]
            return
        async for chunk in self._payloads.read(self.segments, self.start, self.end):
            yield chunk

    async def start_body(self) -> AsyncIterator[bytes]:
        """The body with its first piece already read: a payload that fails its check
        (a corrupt chunk) raises here, before the response headers are sent."""
        pieces = self.body()
        first = await anext(pieces, None)
        return _prepend(first, pieces)


async def _prepend(first: bytes | None, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is None:
        return
    yield first
    async for piece in rest:
        yield piece


def resolve_range(byte_range: tuple[int | None, int | None], size: int) -> tuple[int, int]:
    """[start, end) for an inclusive HTTP range; InvalidRange when unsatisfiable."""
    first, last = byte_range
    if first is None:
        if last is None or last == 0:
            raise InvalidRange(ActualObjectSize=str(size))
        return max(size - last, 0), size
    if first >= size:
        raise InvalidRange(ActualObjectSize=str(size))
    end = size if last is None else min(last + 1, size)
    return first, end
