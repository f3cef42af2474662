"""Version ids (pure): newest first as strings, monotonic under a clock that goes back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.versions import (
    NULL,
    HybridClock,
    InvalidVersionId,
    check_version_id,
    parse_version_id,
    stamp_time,
    token,
    version_id,
)


def test_ids_sort_newest_first_even_when_the_wall_clock_goes_back():
    times = iter([100.0, 100.0, 99.0, 101.5, 50.0])
    clock = HybridClock(lambda: next(times), writer="0000beef")
    ids = [clock.new_version_id()[0] for _ in range(5)]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    stamps = [parse_version_id(v)[0] for v in ids]
    assert stamps == sorted(stamps) and stamp_time(stamps[3]) == 101.5


def test_observing_a_newer_stamp_moves_past_it():
    clock = HybridClock(lambda: 10.0, writer="0000beef")
    far = (int(20.0 * 1000) << 16) + 7
    clock.observe(far)
    assert clock.stamp() > far


@given(st.integers(min_value=1, max_value=(1 << 62)), st.integers(min_value=1, max_value=1 << 20))
def test_ids_and_null_tokens_order_by_stamp(stamp, gap):
    newer, older = stamp + gap, stamp
    assert version_id(newer, "00000001") < version_id(older, "00000001")
    assert token(NULL, newer) < token(NULL, older)
    assert token(version_id(newer, "ffffffff"), 0) < token(NULL, older)
    assert parse_version_id(version_id(stamp, "0badcafe")) == (stamp, "0badcafe")


@pytest.mark.parametrize("bad", ["", "nul", "NULL", "0" * 23, "g" * 24, "0" * 25, "../x"])
def test_malformed_ids_are_refused(bad):
    with pytest.raises(InvalidVersionId):
        check_version_id(bad)
    assert check_version_id(NULL) == NULL and check_version_id("0" * 24) == "0" * 24
