"""The pure parts of the range-sharded bucket index: routes, headers, sampling.

The index itself is tested against both backends in tests/test_index_shards.py.
"""

from __future__ import annotations

from engine.index_shards import RouteTable, ShardView, SplitMark, is_sampled, split_point


def test_route_table_routes_by_exclusive_lower_bound():
    table = RouteTable()
    table.add("g", "s1")
    table.add("p", "s2")
    assert table.for_key("a") == "0000"
    assert table.for_key("g") == "0000"  # "g" is the root's upper bound (inclusive)
    assert table.for_key("g0") == "s1"
    assert table.for_key("zz") == "s2"
    assert table.for_keys_after("g") == "s1"  # keys after "g" start in s1
    assert table.for_keys_after("f") == "0000"


def test_route_table_knows_a_cached_view_is_stale():
    table = RouteTable()
    old = ShardView("0000").evolve()  # the whole key space
    table.learn(old)
    assert table.fresh_view("0000") == old
    table.add("m", "t1")  # a split the view predates
    assert table.fresh_view("0000") is None
    table.learn(old.evolve(upto="m", next="t1"))
    assert table.fresh_view("0000") is not None


def test_header_encoding_round_trips_and_never_repeats():
    view = ShardView("0000", sample=4).evolve()
    marked = view.evolve(split=SplitMark("k", "t1", "me", 0))
    beat = marked.evolve(split=SplitMark("k", "t1", "me", 1))
    committed = marked.evolve(upto="k", next="t1", split=None)
    raws = {view.raw, marked.raw, beat.raw, committed.raw}
    assert len(raws) == 4
    for v in (view, marked, beat, committed):
        assert ShardView.decode("0000", v.raw) == v
    assert marked.epoch == beat.epoch != view.epoch  # a heartbeat is not a change of content
    assert committed.covers("k") and not committed.covers("k0")


def test_sampling_is_deterministic_and_about_one_in_rate():
    keys = [f"key{i}" for i in range(20000)]
    picked = [k for k in keys if is_sampled("bucket", k, 100)]
    assert picked == [k for k in keys if is_sampled("bucket", k, 100)]
    assert 120 < len(picked) < 280
    assert split_point(["a", "b", "c", "d"]) == "b" and split_point(["a"]) is None
