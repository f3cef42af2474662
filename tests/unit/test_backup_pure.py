"""The pure parts of backups: schedules, catalogue codec, ETag checks, copy names."""

from __future__ import annotations

import hashlib

import pytest

from backup.catalog import (
    CatalogEntry,
    EtagCheck,
    decode_catalog,
    encode_catalog,
    new_run_id,
    target_key,
    version_ident,
)
from backup.schedule import RETRY_S, Schedule, parse_schedules
from engine import ObjectEntry

DAY = 86400.0
T0 = 1_765_000_000.0 - 1_765_000_000.0 % DAY  # a midnight (UTC)


def test_daily_schedule_is_due_once_per_slot_and_catches_up():
    s = Schedule.parse({"bucket": "b", "to": "v", "daily": "02:30"})
    slot = T0 + 2.5 * 3600
    assert s.last_slot(slot - 1) == slot - DAY
    assert s.last_slot(slot) == slot
    assert not s.is_due(slot - 60, slot - 60, slot - 1), "ran just before: next slot later"
    assert s.is_due(slot - 60, slot - 60, slot + 1), "the slot passed: due"
    assert not s.is_due(slot + 5, slot + 5, slot + 600), "ran for this slot already"
    # Down for three days: one run catches up, not three.
    assert s.is_due(slot - 3 * DAY, slot - 3 * DAY, slot + 3600)
    assert not s.is_due(slot + 3600, slot + 3600, slot + 7200)
    assert s.is_due(None, None, T0)


def test_interval_schedule_and_retry_after_failure():
    s = Schedule.parse({"bucket": "b", "to": "v", "every": "6h", "lock_days": 30})
    assert s.every == 6 * 3600 and s.lock_days == 30
    assert not s.is_due(T0, T0, T0 + 5 * 3600)
    assert s.is_due(T0, T0, T0 + 6 * 3600)
    # The last attempt failed (it is not the last success): wait RETRY_S before retrying.
    assert not s.is_due(T0, T0 + 6 * 3600, T0 + 6 * 3600 + 10)
    assert s.is_due(T0, T0 + 6 * 3600, T0 + 6 * 3600 + RETRY_S)


@pytest.mark.parametrize("item", [
    {"bucket": "b", "to": "v"},
    {"bucket": "b", "to": "v", "every": "6h", "daily": "01:00"},
    {"bucket": "b", "to": "v", "every": "often"},
    {"bucket": "b", "to": "v", "daily": "25:00"},
    {"to": "v", "every": "1h"},
    "not a mapping",
])
def test_bad_schedules_are_refused(item):
    with pytest.raises(ValueError):
        parse_schedules([item])


def test_catalog_round_trips_and_names_are_stable():
    entries = [CatalogEntry("k/é", "abc", "atonix-backup/b/abc/k/é", "v1", 3, '"e"', "t/p",
                            {"m": "1"}, {"t": "2"}, "run1", 12.5, [5, 5])]
    assert decode_catalog(encode_catalog(entries)) == entries
    assert new_run_id(T0, "a1b2c3") == new_run_id(T0, "a1b2c3") < new_run_id(T0 + 1, "000000")
    assert target_key("p/", "b", "id", "k") == "p/b/id/k"
    long = target_key("p/", "b", "id", "x" * 1100)
    assert len(long) < 200 and long.startswith("p/b/id/#")
    null = ObjectEntry(1, '"0123456789abcdef"', 10.0)
    assert version_ident(null).startswith("null-")
    assert version_ident(ObjectEntry(1, '"e"', 10.0, version_id="f" * 24)) == "f" * 24


def test_etag_check_recomputes_simple_and_multipart_etags():
    data = b"x" * 1000 + b"y" * 10
    simple = EtagCheck('"' + hashlib.md5(data).hexdigest() + '"', [])
    for i in range(0, len(data), 7):
        simple.update(data[i : i + 7])
    assert simple.matches() and simple.size == len(data)

    parts = [data[:1000], data[1000:]]
    combined = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    multi = EtagCheck(f'"{combined}-2"', [1000, 10])
    for i in range(0, len(data), 333):
        multi.update(data[i : i + 333])
    assert multi.matches()
    wrong = EtagCheck(f'"{combined}-2"', [1000, 10])
    wrong.update(data[:-1] + b"z")
    assert not wrong.matches()


def test_etag_check_with_an_empty_last_part():
    parts = [b"a" * 100, b""]
    combined = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    check = EtagCheck(f'"{combined}-2"', [100, 0])
    check.update(parts[0])
    assert check.matches()


def test_run_ids_sort_by_start_to_the_millisecond():
    assert new_run_id(T0 + 0.001, "ffffff") > new_run_id(T0, "ffffff")
    assert new_run_id(T0 + 0.002, "000000") > new_run_id(T0 + 0.001, "ffffff")
    assert ".001Z-" in new_run_id(T0 + 0.001, "abcdef")


def test_schedules_refuse_zero_intervals_and_locks():
    for bad in ({"every": "0s"}, {"every": "1h", "lock_days": 0},
                {"every": "1h", "lock_days": "x"}):
        with pytest.raises(ValueError):
            Schedule.parse({"bucket": "b", "to": "v", **bad})
