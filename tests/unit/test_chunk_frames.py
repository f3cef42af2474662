"""The frame codec of dedupe-aware transfers between regions (engine.chunk_transfer):
pure, fed in pieces of any size; a sent chunk must match its fingerprint, and a
stream that is cut short or malformed is refused."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import BadFrames, frame, framed_size
from engine.chunk_transfer import FRAME, FrameDecoder


def chunks_of(*pieces: bytes) -> list[tuple[bytes, int]]:
    return [(hashlib.sha256(p).digest(), len(p)) for p in pieces]


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8),
       st.lists(st.booleans(), min_size=8, max_size=8), st.integers(1, 97))
def test_frames_decode_whatever_the_piece_size(pieces, flags, cut):
    chunks = chunks_of(*pieces)
    sent = flags[:len(pieces)]
    stream = b"".join(frame(fp, n, p if s else None)
                      for (fp, n), p, s in zip(chunks, pieces, sent, strict=True))
    assert len(stream) == framed_size(chunks, sent)
    decoder, frames = FrameDecoder(), []
    for start in range(0, len(stream), cut):
        frames += decoder.feed(stream[start:start + cut])
    decoder.close()
    assert [(f.fingerprint, f.length) for f in frames] == chunks
    assert [f.data for f in frames] == [p if s else None for p, s in zip(pieces, sent,
                                                                          strict=True)]


def test_a_sent_chunk_must_match_its_fingerprint():
    (fp, n), = chunks_of(b"right bytes")
    with pytest.raises(BadFrames, match="fingerprint"):
        FrameDecoder().feed(frame(fp, n, b"wrong bytes"))


def test_malformed_or_cut_streams_are_refused():
    (fp, n), = chunks_of(b"abc")
    with pytest.raises(BadFrames, match="Malformed"):
        FrameDecoder().feed(FRAME.pack(fp, n, 7))
    with pytest.raises(BadFrames, match="Malformed"):
        FrameDecoder().feed(FRAME.pack(fp, 0, 0))
    decoder = FrameDecoder()
    assert decoder.feed(frame(fp, n, b"abc")[:-1]) == []
    with pytest.raises(BadFrames, match="middle"):
        decoder.close()
