"""Content-defined chunk boundaries: stable under any split of the stream, within bounds."""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyfastcdc import FastCDC

from dedupe import ChunkingConfig, StreamChunker
from dedupe.chunker import chunk_all
from tests.dedupe.conftest import SMALL

CONFIGS = [
    SMALL,
    ChunkingConfig(min_size=64, avg_size=256, max_size=1024),
    ChunkingConfig(min_size=2048, avg_size=4096, max_size=8192, normalized_chunking=2),
]


def feed_split(data: bytes, cuts: list[int], config: ChunkingConfig) -> list[bytes]:
    chunker = StreamChunker(config)
    out: list[bytes] = []
    pos = 0
    for cut in [*sorted(cuts), len(data)]:
        out += chunker.feed(data[pos:cut])
        pos = cut
    return out + chunker.finish()


def lumpy_bytes(seed: int, size: int) -> bytes:
    """Random bytes with repeated runs, so content-defined cuts land in varied places."""
    rng = random.Random(seed)
    parts, total = [], 0
    while total < size:
        piece = rng.choice([rng.randbytes(rng.randint(1, 5000)), bytes(rng.randint(1, 3000))])
        parts.append(piece)
        total += len(piece)
    return b"".join(parts)[:size]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    size=st.integers(0, 120_000),
    cuts=st.lists(st.integers(0, 120_000), max_size=30),
    which=st.sampled_from(range(len(CONFIGS))),
)
def test_boundaries_do_not_depend_on_how_the_stream_is_split(seed, size, cuts, which):
    config = CONFIGS[which]
    data = lumpy_bytes(seed, size)
    whole = chunk_all(data, config)
    split = feed_split(data, [c for c in cuts if c <= size], config)
    assert split == whole
    assert b"".join(whole) == data
    for chunk in whole[:-1]:
        assert config.min_size <= len(chunk) <= config.max_size
    if whole:
        assert 0 < len(whole[-1]) <= config.max_size


def test_same_cuts_as_pyfastcdc_on_the_whole_buffer():
    data = os.urandom(300_000)
    cdc = FastCDC(SMALL.avg_size, min_size=SMALL.min_size, max_size=SMALL.max_size)
    assert chunk_all(data, SMALL) == [bytes(c.data) for c in cdc.cut_buf(data)]


def test_one_byte_feeds_and_empty_feeds():
    data = lumpy_bytes(7, 40_000)
    chunker = StreamChunker(SMALL)
    out: list[bytes] = []
    for i in range(len(data)):
        out += chunker.feed(b"")
        out += chunker.feed(data[i : i + 1])
    out += chunker.finish()
    assert out == chunk_all(data, SMALL)


def test_memory_is_bounded_by_the_tail():
    chunker = StreamChunker(SMALL)
    for _ in range(200):
        chunker.feed(os.urandom(4096))
        assert chunker.buffered < 2 * SMALL.max_size + 4096


def test_insert_at_start_keeps_most_chunks():
    # Seeded: with arbitrary bytes, about 1 draw in 3,000 needs a few more cuts to resync.
    data = random.Random(11).randbytes(400_000)
    before = set(chunk_all(data, SMALL))
    after = chunk_all(b"!" + data, SMALL)
    reused = sum(1 for c in after if c in before)
    assert reused >= len(after) - 3


def test_empty_stream_has_no_chunks():
    assert StreamChunker(SMALL).finish() == []
    assert chunk_all(b"", SMALL) == []


def test_config_rejects_bad_sizes():
    import pytest

    with pytest.raises(ValueError):
        ChunkingConfig(min_size=8192, avg_size=4096, max_size=16384)
    with pytest.raises(ValueError):
        ChunkingConfig(min_size=64, avg_size=128, max_size=1024)
