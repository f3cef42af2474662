"""Range digests (replication.merkle): differences found, and found cheaply."""

from __future__ import annotations

import random

import pytest

from engine import cut, summarize
from replication.merkle import Item, differences


class ListSide:
    """A side over an in-memory sorted list (what a gateway computes server-side)."""

    def __init__(self, items: list[Item]) -> None:
        self.all = sorted(items)

    def _range(self, lo: str, hi: str | None) -> list[Item]:
        return [i for i in self.all if i[0] >= lo and (hi is None or i[0] < hi)]

    async def bounds(self, lo, hi, pieces):
        return cut(self._range(lo, hi), lo, pieces)

    async def digests(self, bounds, hi):
        return summarize(self._range(bounds[0], hi), bounds)

    async def items(self, lo, hi):
        return self._range(lo, hi)


def bucket(n: int, seed: int = 0) -> list[Item]:
    rng = random.Random(seed)
    return [(f"k{i:07d}", f"v{rng.getrandbits(32):08x}", f"e{i}", False) for i in range(n)]


async def test_equal_copies_cost_one_exchange():
    items = bucket(20000)
    found = await differences(ListSide(items), ListSide(list(items)))
    assert found.keys == [] and found.exchanges == 3


@pytest.mark.parametrize("seed", range(5))
async def test_every_planted_difference_is_found_in_about_log_n_exchanges(seed):
    rng = random.Random(seed)
    source = bucket(20000, seed)
    copy = list(source)
    planted = set()
    for _ in range(5):
        i = rng.randrange(len(copy))
        key = copy[i][0]
        planted.add(key)
        kind = rng.choice(("drop", "etag", "extra"))
        if kind == "drop":
            copy.pop(i)
        elif kind == "etag":
            copy[i] = (key, copy[i][1], "other", False)
        else:
            copy.append((key, "vffffffff", "x", True))
    found = await differences(ListSide(source), ListSide(copy), pieces=16, leaf=64)
    assert set(found.keys) == planted
    assert found.exchanges <= 5 * 3 * 5 + 3  # differences x levels (log16 20000 ~ 4) x 3


async def test_a_key_with_many_versions_and_an_empty_side():
    many = [("same", f"v{i:04d}", "e", False) for i in range(1000)]
    found = await differences(ListSide(many), ListSide([]), leaf=10)
    assert found.keys == ["same"]
    found = await differences(ListSide([]), ListSide(many), leaf=10)
    assert found.keys == ["same"]
