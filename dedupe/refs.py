"""The omap record of a reference holder (a chunk object or a pack): its keys and
the values the writer, the collector and fsck read and write there.

The protocol these keys carry (generations, references per owner, the
collector's zero mark, a delta's link to its base) is described in
``dedupe.store``; this module is its vocabulary, free of I/O.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from dedupe.packs import PackedAt

BASE_KEY = "base"
GEN_KEY = "gen"
PLAIN_KEY = "plain"  # on every chunk that is not a delta: only those may be bases
REF_PREFIX = "ref."
ZERO_KEY = "zero_since"
DELTA_OWNER_PREFIX = "delta:"


def ref_key(owner: str) -> str:
    return REF_PREFIX + owner


def new_gen() -> bytes:
    return secrets.token_hex(8).encode()


def delta_owner(delta_fp: bytes, token: str) -> str:
    """The owner of the reference a delta chunk holds on its base."""
    return f"{DELTA_OWNER_PREFIX}{delta_fp.hex()}.{token}"


@dataclass(frozen=True, slots=True)
class DeltaLink:
    """A delta chunk's ``base`` value: its base and the token of its reference there."""

    base: bytes
    token: str
    at: PackedAt | None = None  # where the base is, when it is packed

    @property
    def holder(self) -> bytes:
        """What carries the delta's reference on its base."""
        return self.at.pack if self.at is not None else self.base

    def encode(self) -> bytes:
        at = self.at
        where = "" if at is None else f".{at.pack.hex()}.{at.offset}.{at.stored_len}"
        return f"{self.base.hex()}.{self.token}{where}".encode()

    @staticmethod
    def decode(value: bytes | None) -> DeltaLink | None:
        base, _, rest = (value or b"").decode(errors="replace").partition(".")
        token, *where = rest.split(".")
        try:
            at = PackedAt(bytes.fromhex(where[0]), int(where[1]), int(where[2])) if where else None
            return DeltaLink(bytes.fromhex(base), token, at) if token else None
        except (ValueError, IndexError):
            return None

    @staticmethod
    def from_owner(owner: str) -> tuple[bytes, str] | None:
        """(delta fp, token) of a ``delta:`` reference owner, else None."""
        if not owner.startswith(DELTA_OWNER_PREFIX):
            return None
        fp, _, token = owner[len(DELTA_OWNER_PREFIX) :].partition(".")
        try:
            return bytes.fromhex(fp), token
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class ZeroMark:
    since: float
    gen: bytes

    def encode(self) -> bytes:
        return f"{self.since:.6f} ".encode() + self.gen

    def waited(self, now: float) -> float:
        """Seconds since the mark; ``since`` is stored rounded to the microsecond, so a
        mark set at ``now`` may read back a fraction in the future: that counts as 0."""
        elapsed = now - self.since
        return 0.0 if -1e-6 < elapsed < 0 else elapsed

    @staticmethod
    def decode(value: bytes) -> ZeroMark | None:
        since, _, gen = value.partition(b" ")
        try:
            return ZeroMark(float(since), gen)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class RefState:
    """A consistent snapshot (one omap read) of what the collector needs."""

    gen: bytes | None
    has_refs: bool
    zero_mark: ZeroMark | None
    zero_raw: bytes | None
    delta: DeltaLink | None = None  # a delta chunk's base
    table: bytes | None = None  # a pack's chunk table
