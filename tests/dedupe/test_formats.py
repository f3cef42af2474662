"""Pure codecs: the chunk object format and the manifest format."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dedupe import (
    ChunkCorrupt,
    Codec,
    Manifest,
    ManifestCorrupt,
    ManifestEntry,
    decode_chunk,
    decode_manifest,
    encode_chunk,
    encode_manifest,
)
from dedupe.chunk_format import HEADER_SIZE, checksum, fingerprint, parse_header

# --- chunks --------------------------------------------------------------------


def test_compressible_chunk_is_zstd_and_round_trips():
    raw = b"log line 42 GET /index.html 200\n" * 500
    enc = encode_chunk(raw)
    assert enc.codec is Codec.ZSTD
    assert enc.stored_len < len(raw) // 5
    assert enc.fingerprint == fingerprint(raw)
    assert decode_chunk(enc.blob, enc.fingerprint, verify_identity=True) == raw


def test_incompressible_chunk_is_stored_raw():
    raw = os.urandom(20_000)
    enc = encode_chunk(raw)
    assert enc.codec is Codec.RAW
    assert enc.stored_len == HEADER_SIZE + len(raw)
    assert decode_chunk(enc.blob) == raw


def test_margin_decides_raw_or_zstd():
    raw = os.urandom(9000) + bytes(1000)  # zstd saves about 10%
    assert encode_chunk(raw, min_saving=0.03).codec is Codec.ZSTD
    assert encode_chunk(raw, min_saving=0.5).codec is Codec.RAW


def test_header_fields():
    raw = bytes(5000)
    head = parse_header(encode_chunk(raw, level=1).blob)
    assert (head.version, head.codec, head.raw_len) == (1, Codec.ZSTD, 5000)
    assert head.checksum == checksum(raw)


@pytest.mark.parametrize("kind", ["zstd", "raw"])
def test_any_flipped_byte_is_detected(kind):
    raw = b"abc" * 3000 if kind == "zstd" else os.urandom(9000)
    blob = encode_chunk(raw).blob
    for pos in [0, 5, 9, 13, 17, 30, HEADER_SIZE, len(blob) // 2 + 40, len(blob) - 1]:
        bad = bytearray(blob)
        bad[pos] ^= 0x40
        with pytest.raises(ChunkCorrupt):
            decode_chunk(bytes(bad), b"x")


def test_truncated_and_wrong_identity_detected():
    enc = encode_chunk(b"hello" * 100)
    with pytest.raises(ChunkCorrupt):
        decode_chunk(enc.blob[:-1])
    with pytest.raises(ChunkCorrupt):
        decode_chunk(enc.blob[:10])
    with pytest.raises(ChunkCorrupt, match="SHA-256"):
        decode_chunk(enc.blob, fingerprint(b"other"), verify_identity=True)


# --- manifests -----------------------------------------------------------------

entries = st.builds(
    ManifestEntry,
    fingerprint=st.binary(min_size=32, max_size=32),
    length=st.integers(1, 2**24),
    codec=st.sampled_from(list(Codec)),
    tier=st.sampled_from(["hot", "cold", "archive-ec", "t\u00e9"]),
    stored_len=st.integers(0, 2**24),
    ext=st.binary(max_size=60),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(owner=st.text(min_size=1, max_size=80), items=st.lists(entries, max_size=40))
def test_manifest_round_trip(owner, items):
    m = Manifest(owner, items)
    back = decode_manifest(encode_manifest(m))
    assert back == m
    assert back.size == sum(e.length for e in items)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(entries, min_size=1, max_size=10), data=st.data())
def test_manifest_damage_is_detected(items, data):
    blob = bytearray(encode_manifest(Manifest("o", items)))
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ManifestCorrupt):
        decode_manifest(bytes(blob))
    with pytest.raises(ManifestCorrupt):
        decode_manifest(bytes(blob[: data.draw(st.integers(0, len(blob) - 1))]))


def test_chunk_span_and_offsets():
    m = Manifest("o", [ManifestEntry(bytes(32), n, Codec.RAW, "hot") for n in (10, 20, 30)])
    assert m.ends == [10, 30, 60]
    assert list(m.chunk_span(0, 60)) == [0, 1, 2]
    assert list(m.chunk_span(10, 30)) == [1]
    assert list(m.chunk_span(9, 11)) == [0, 1]
    assert list(m.chunk_span(59, 100)) == [2]
    assert list(m.chunk_span(60, 70)) == []
    assert list(m.chunk_span(5, 5)) == []
    assert m.start_of(2) == 30


def test_relocation_rewrites_only_that_chunk():
    a, b = b"a" * 32, b"b" * 32
    m = Manifest("o", [ManifestEntry(fp, 1, Codec.RAW, "hot") for fp in (a, b)])
    moved = m.relocated(a, "hot", "cold")
    assert [e.tier for e in moved.entries] == ["cold", "hot"]
    assert moved.chunk_refs() == {("cold", a), ("hot", b)}
    assert decode_manifest(encode_manifest(moved)) == moved
