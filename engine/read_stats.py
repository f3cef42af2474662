"""One object version's read statistics, as stored, and how new reads merge in (pure).

Counts live in coarse time buckets so a value stays small however often the
object is read: one per hour for the last ``HOURS_KEPT`` hours, then one per
day for the last ``DAYS_KEPT`` days; older reads are forgotten (a promotion
window longer than ``DAYS_KEPT`` days counts only those). A window is counted
by whole buckets: every bucket it touches counts in full, so a count may
include up to one bucket's worth of reads from just before the window, never
fewer than the window holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

HOUR = 3600.0
DAY = 86400.0
HOURS_KEPT = 48
DAYS_KEPT = 90


@dataclass(slots=True)
class ReadStats:
    written: float  # the write time (mtime) of the version these reads were of
    last_read: float
    hours: dict[int, int] = field(default_factory=dict)  # hour number (epoch / 3600) -> reads
    days: dict[int, int] = field(default_factory=dict)  # day number -> reads (older ones)

    @property
    def reads(self) -> int:
        """Every read still counted (the last ``DAYS_KEPT`` days)."""
        return sum(self.hours.values()) + sum(self.days.values())

    def reads_within(self, seconds: float, now: float) -> int:
        """Reads in the ``seconds`` before ``now``, counted by the buckets the window touches."""
        start = now - seconds
        count = sum(n for h, n in self.hours.items() if (h + 1) * HOUR > start)
        return count + sum(n for d, n in self.days.items() if (d + 1) * DAY > start)

    def compacted(self, now: float) -> ReadStats:
        """Hours older than ``HOURS_KEPT`` folded into their days; days past ``DAYS_KEPT`` gone."""
        first_hour = int(now // HOUR) - HOURS_KEPT + 1
        first_day = int(now // DAY) - DAYS_KEPT + 1
        hours: dict[int, int] = {}
        days = dict(self.days)
        for h, n in self.hours.items():
            if h >= first_hour:
                hours[h] = n
            else:
                day = int(h * HOUR // DAY)
                days[day] = days.get(day, 0) + n
        days = {d: n for d, n in days.items() if d >= first_day}
        return ReadStats(self.written, self.last_read, hours, days)

    def encode(self) -> bytes:
        return orjson.dumps({
            "w": self.written,
            "l": self.last_read,
            "h": {str(h): n for h, n in self.hours.items()},
            "d": {str(d): n for d, n in self.days.items()},
        })

    @classmethod
    def decode(cls, raw: bytes | None) -> ReadStats | None:
        """The stats in ``raw``; None for none, or for a value this code cannot read."""
        if raw is None:
            return None
        try:
            doc = orjson.loads(raw)
            return cls(
                float(doc["w"]),
                float(doc["l"]),
                {int(h): int(n) for h, n in doc.get("h", {}).items()},
                {int(d): int(n) for d, n in doc.get("d", {}).items()},
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None


def merged(
    stored: ReadStats | None, reads: int, read_at: float, written: float, now: float
) -> ReadStats:
    """``stored`` with ``reads`` more, made from ``read_at`` on (the first read a flush
    interval saw), of the version written at ``written``. They all count in the hour of
    ``read_at``: a flush interval is seconds, a bucket an hour. Stats of another write
    (an overwrite under the same key and version id) are replaced by the newer write's."""
    if stored is not None and stored.written > written:
        return stored.compacted(now)  # these reads were of the object that was replaced
    if stored is None or stored.written < written:
        stored = ReadStats(written, read_at)
    hour = int(read_at // HOUR)
    hours = dict(stored.hours)
    hours[hour] = hours.get(hour, 0) + reads
    last = max(stored.last_read, read_at)
    return ReadStats(written, last, hours, stored.days).compacted(now)
