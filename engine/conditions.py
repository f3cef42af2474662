"""Conditions on the current entry of a key, checked atomically with a write (pure).

A conditional write (``If-None-Match: *``, ``If-Match: <etag>``) and a
read-modify-write of an entry (tags) are both expressed as a check of the
entry the index holds at the moment of the write; ``BucketIndex.put_if``
runs the check and the write as one guarded operation, so nothing can slip
in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import NoSuchKey, PreconditionFailed
from engine.records import ObjectEntry

ANY_ETAG = "*"


def bare_etag(etag: str) -> str:
    """An ETag without its quotes (and without a weak ``W/`` prefix)."""
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def etag_matches(candidates: tuple[str, ...], etag: str) -> bool:
    """Whether any of the (bare) candidate ETags, or ``*``, names ``etag``."""
    bare = bare_etag(etag)
    return any(c in (ANY_ETAG, bare) for c in candidates)


@dataclass(frozen=True, slots=True)
class WriteCondition:
    """What the current entry must be for a write to go ahead.

    ``if_match``: bare ETags (or ``*``), one of which the current entry must
    have (a missing key fails with NoSuchKey). ``if_none_match_any``: the key
    must not exist. ``if_none_match``: bare ETags the current entry, if any,
    must not have.
    """

    if_match: tuple[str, ...] | None = None
    if_none_match_any: bool = False
    if_none_match: tuple[str, ...] = ()

    def check(self, current: ObjectEntry | None, key: str) -> None:
        if self.if_none_match_any and current is not None:
            raise PreconditionFailed(Condition="If-None-Match")
        if current is not None and etag_matches(self.if_none_match, current.etag):
            raise PreconditionFailed(Condition="If-None-Match")
        if self.if_match is not None:
            if current is None:
                raise NoSuchKey(Key=key)
            if not etag_matches(self.if_match, current.etag):
                raise PreconditionFailed(Condition="If-Match")


@dataclass(frozen=True, slots=True)
class DeleteCondition:
    """What the current entry must be for a delete to go ahead (a missing key passes:
    it is deleted already). ``if_match``: bare ETags (or ``*``); ``last_modified``: the
    entry's mtime, to the second; ``size``: its size in bytes."""

    if_match: tuple[str, ...] | None = None
    last_modified: int | None = None
    size: int | None = None

    def check(self, current: ObjectEntry | None, key: str) -> None:
        if current is None:
            return
        if self.if_match is not None and not etag_matches(self.if_match, current.etag):
            raise PreconditionFailed(Condition="If-Match")
        if self.last_modified is not None and int(current.mtime) != self.last_modified:
            raise PreconditionFailed(Condition="x-amz-if-match-last-modified-time")
        if self.size is not None and current.size != self.size:
            raise PreconditionFailed(Condition="x-amz-if-match-size")


class EntryChanged(Exception):
    """The entry changed between the read and the guarded write (retry)."""


@dataclass(frozen=True, slots=True)
class SameEntry:
    """The check of a read-modify-write: the entry must still be the one that was read."""

    expected: ObjectEntry
    key: str

    def check(self, current: ObjectEntry | None) -> None:
        if current is None:
            raise NoSuchKey(Key=self.key)
        if current.encode() != self.expected.encode():
            raise EntryChanged(self.key)
