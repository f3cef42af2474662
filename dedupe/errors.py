"""Typed errors of the dedupe layer (the engine maps them; storage errors pass through)."""

from __future__ import annotations


class DedupeError(Exception):
    """Base of every dedupe-layer error."""


class ChunkCorrupt(DedupeError):
    """A chunk's stored bytes fail their header, length or XXH3 check.

    Raised instead of ever returning wrong bytes.
    """

    def __init__(self, fingerprint: bytes, reason: str) -> None:
        super().__init__(f"chunk {fingerprint.hex()} is corrupt: {reason}")
        self.fingerprint = fingerprint
        self.reason = reason


class ChunkMissing(DedupeError):
    """A manifest names a chunk that is not in its pool."""

    def __init__(self, fingerprint: bytes, tier: str) -> None:
        super().__init__(f"chunk {fingerprint.hex()} is missing from tier {tier!r}")
        self.fingerprint = fingerprint
        self.tier = tier


class ManifestCorrupt(DedupeError):
    """Manifest bytes that do not decode (bad magic, version, checksum or length)."""


class FailpointHit(DedupeError):
    """Raised by an armed failpoint (tests only: simulates a crash at that step)."""
