"""One version's read stats (engine.read_stats): windows counted by coarse buckets,
hours folded into days, old days forgotten, merges across an overwrite. No I/O."""

from __future__ import annotations

from engine import ReadStats
from engine.read_stats import DAY, DAYS_KEPT, HOUR, HOURS_KEPT, merged

T0 = 1_700_000_000.0 // DAY * DAY  # a midnight


def test_reads_merge_into_the_hour_they_were_made_in():
    stats = merged(None, 3, T0 + 10, written=T0, now=T0 + 20)
    stats = merged(stats, 2, T0 + HOUR + 5, written=T0, now=T0 + HOUR + 10)
    assert stats.hours == {int(T0 // HOUR): 3, int(T0 // HOUR) + 1: 2}
    assert (stats.reads, stats.last_read, stats.written) == (5, T0 + HOUR + 5, T0)


def test_a_window_counts_every_bucket_it_touches():
    stats = merged(None, 4, T0 + 10, written=T0, now=T0 + 10)
    stats = merged(stats, 1, T0 + 3 * HOUR + 10, written=T0, now=T0 + 3 * HOUR + 10)
    now = T0 + 3 * HOUR + 20
    assert stats.reads_within(60, now) == 1  # the current hour only
    assert stats.reads_within(3 * HOUR, now) == 5  # touches the first hour: counted whole
    assert stats.reads_within(2 * HOUR, now) == 1


def test_old_hours_fold_into_days_and_old_days_are_forgotten():
    stats = merged(None, 7, T0 + 10, written=T0, now=T0 + 10)
    later = T0 + (HOURS_KEPT + 1) * HOUR
    folded = stats.compacted(later)
    assert (folded.hours, folded.days) == ({}, {int(T0 // DAY): 7})
    assert folded.reads_within(3 * DAY, later) == 7
    assert folded.reads_within(DAY, later) == 0
    gone = folded.compacted(T0 + DAYS_KEPT * DAY)
    assert gone.reads == 0 and gone.last_read == T0 + 10


def test_an_overwrite_replaces_older_stats_and_stale_reads_are_ignored():
    old = merged(None, 9, T0 + 10, written=T0, now=T0 + 10)
    new = merged(old, 1, T0 + 100, written=T0 + 50, now=T0 + 100)
    assert (new.reads, new.written) == (1, T0 + 50)
    # Reads of the replaced object flushed late by another gateway leave the new ones be.
    assert merged(new, 5, T0 + 40, written=T0, now=T0 + 200).reads == 1


def test_encoding_round_trips_and_garbage_reads_as_none():
    stats = merged(None, 3, T0 + 0.125, written=T0 + 0.5, now=T0 + 1).compacted(T0 + 3 * DAY)
    assert ReadStats.decode(stats.encode()) == stats
    assert ReadStats.decode(None) is None
    assert ReadStats.decode(b"not json") is None
    assert ReadStats.decode(b'{"w": 1}') is None
