"""The change-feed contract, on every backend: a publish is seen by every listener
before it returns. Each test attaches two or three independent connections to one
pool, as separate gateway processes would (separate librados clients, separate maps
of the local data directory)."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from storage import ChangeFeed
from tests.contract.conftest import make_backend


@contextlib.asynccontextmanager
async def feeds(backend_kind, tmp_path, pool, *listen: bool):
    """One feed per flag, each on its own backend connection."""
    opened = []
    try:
        for flag in listen:
            other = make_backend(backend_kind, tmp_path)
            await other.connect()
            feed = other.changes(pool.name)
            opened.append((other, feed))
            await feed.start(listen=flag)
        yield [feed for _, feed in opened]
    finally:
        for other, feed in opened:
            await feed.close()
            await other.close()


def _tags(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(64) for _ in range(n)]


async def test_a_publish_moves_every_listeners_generation_before_it_returns(
    backend_kind, tmp_path, pool
):
    async with feeds(backend_kind, tmp_path, pool, True, True) as (writer, reader):
        assert isinstance(reader, ChangeFeed)
        tag, other = _tags(2, 1)
        before, untouched = reader.generation(tag), reader.generation(other)
        mine = writer.generation(tag)
        assert before is not None and mine is not None
        await writer.publish([tag])
        assert reader.generation(tag) != before
        assert writer.generation(tag) != mine  # the publisher hears itself too
        if (tag ^ other) & 0xFFFF:  # another slot: no spurious change
            assert reader.generation(other) == untouched


async def test_a_publish_only_feed_reaches_listeners(backend_kind, tmp_path, pool):
    async with feeds(backend_kind, tmp_path, pool, False, True) as (cli, gateway):
        tags = _tags(5, 2)
        before = [gateway.generation(t) for t in tags]
        await cli.publish(tags)
        after = [gateway.generation(t) for t in tags]
        assert all(b != a for b, a in zip(before, after, strict=True))


async def test_concurrent_publishes_are_all_heard(backend_kind, tmp_path, pool):
    """Coalesced sends must not drop a tag: 300 writers, each waits for its own."""
    async with feeds(backend_kind, tmp_path, pool, True, True, True) as (w1, w2, reader):
        tags = _tags(300, 3)
        seen = {t: reader.generation(t) for t in tags}

        async def one(feed, tag):
            await feed.publish([tag])
            assert reader.generation(tag) != seen[tag], "returned before the reader heard it"

        await asyncio.gather(*(one(w1 if i % 2 else w2, t) for i, t in enumerate(tags)))


async def test_a_closed_listener_neither_answers_nor_holds_up_publishers(
    backend_kind, tmp_path, pool
):
    async with feeds(backend_kind, tmp_path, pool, True, True) as (writer, gone):
        await gone.close()
        assert gone.generation(_tags(1, 4)[0]) is None
        await asyncio.wait_for(writer.publish(_tags(10, 5)), 30)


@pytest.mark.parametrize("count", [0, 1])
async def test_empty_and_single_publishes(backend_kind, tmp_path, pool, count):
    async with feeds(backend_kind, tmp_path, pool, True) as (feed,):
        await feed.publish(_tags(count, 6))
