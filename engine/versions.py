"""Version ids (pure): hybrid logical clock stamps, newest first, unique without coordination.

A version id is 24 hex digits: 16 of ``MAX - stamp`` and 8 naming the
writer (a random id per process today; a region's id once regions exist).
``stamp`` is a hybrid logical clock value, milliseconds of wall time shifted
left by 16 bits plus a counter: it never goes back in one process even if
the wall clock does, and a process that sees a newer stamp (a version
replicated from elsewhere) moves past it. So ids of one key sort newest
first as plain strings, and two regions order their versions by the same
rule: stamp first, then writer id.

``null`` is the version id of objects written while versioning was off or
suspended. In the index a version is filed under its *token*: its id, or for
the null version its stamp followed by ``null``, so every version of a key,
the null one included, sorts by age.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

NULL = "null"
_MAX = (1 << 64) - 1
_COUNTER_BITS = 16
_ID = re.compile(r"^[0-9a-f]{24}$")


class InvalidVersionId(ValueError):
    """Not a version id this gateway could have made (nor ``null``)."""


class HybridClock:
    """Stamps that only grow: max(wall time, last stamp + 1), wall time in ms << 16."""

    def __init__(self, wall: Callable[[], float], writer: str | None = None) -> None:
        self.wall = wall
        self.writer = writer or secrets.token_hex(4)
        if not re.fullmatch(r"[0-9a-f]{8}", self.writer):
            raise ValueError("a writer id is 8 lowercase hex digits")
        self.last = 0

    def stamp(self) -> int:
        physical = int(self.wall() * 1000) << _COUNTER_BITS
        self.last = max(physical, self.last + 1)
        return self.last

    def observe(self, stamp: int) -> None:
        """A stamp made elsewhere (replication): later stamps of ours sort after it."""
        self.last = max(self.last, stamp)

    def new_version_id(self) -> tuple[str, int]:
        stamp = self.stamp()
        return version_id(stamp, self.writer), stamp


def version_id(stamp: int, writer: str) -> str:
    return f"{_MAX - stamp:016x}{writer}"


def parse_version_id(vid: str) -> tuple[int, str]:
    """(stamp, writer) of a version id; InvalidVersionId for anything else (``null`` too)."""
    if not _ID.match(vid):
        raise InvalidVersionId(vid)
    return _MAX - int(vid[:16], 16), vid[16:]


def check_version_id(vid: str) -> str:
    """``vid`` if it is ``null`` or a well-formed id; InvalidVersionId otherwise."""
    if vid != NULL:
        parse_version_id(vid)
    return vid


def token(vid: str | None, stamp: int) -> str:
    """Where a version is filed among its key's versions (newest first)."""
    if vid is None or vid == NULL:
        return f"{_MAX - stamp:016x}{NULL}"
    return vid


def stamp_time(stamp: int) -> float:
    """The wall time (seconds) a stamp was made at."""
    return (stamp >> _COUNTER_BITS) / 1000.0
