"""Round trips of ``replication verify`` on 10^6 keys: the Merkle narrowing of
``replication.merkle`` run over two in-memory copies (the gateways' side of a
remote verify is this same code over their listing), equal and with planted
differences.

    python -m benchmarks.verify_rounds [--quick]

Reported per case: differences found, exchanges (requests to the two sides), and
the seconds the comparison took once both listings are in memory. What a remote
verify adds is one listing per side, made where the bucket is, and the exchanges
times the link's round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

from engine import VersionItem, cut, in_range, summarize
from replication.merkle import differences

KEYS, KEYS_QUICK = 10**6, 10**5


class MemorySide:
    def __init__(self, items: list[VersionItem]) -> None:
        self._all = items

    async def bounds(self, lo: str, hi: str | None, pieces: int) -> list[str]:
        return cut(in_range(self._all, lo, hi), lo, pieces)

    async def digests(self, bounds, hi):
        return summarize(in_range(self._all, bounds[0], hi), bounds)

    async def items(self, lo: str, hi: str | None) -> list[VersionItem]:
        return list(in_range(self._all, lo, hi))


async def measure(keys: int) -> list[dict]:
    source = [(f"photos/{i:09d}.jpg", f"{i:032x}", f'"{i:032x}"', False) for i in range(keys)]
    rows = []
    for planted in (0, 1, 10, 100):
        rng = random.Random(planted)
        copy = list(source)
        for i in rng.sample(range(keys), planted):
            key, vid, _, marker = copy[i]
            copy[i] = (key, vid, '"changed"', marker)
        start = time.monotonic()
        found = await differences(MemorySide(source), MemorySide(copy))
        assert len(found.keys) == planted
        rows.append({"keys": keys, "differences": planted, "exchanges": found.exchanges,
                     "seconds": round(time.monotonic() - start, 2)})
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    print(json.dumps(asyncio.run(measure(KEYS_QUICK if args.quick else KEYS)), indent=2))
