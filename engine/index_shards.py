"""Range shards of the bucket index: shard headers, the route table and key sampling (pure).

A bucket's index is a chain of shards; each covers the object keys in
``(after, upto]`` (``after`` is exclusive, ``upto`` inclusive, None = no upper
bound) and names the shard that covers the keys above it. The root shard
(``after == ""``) always exists. A split only ever lowers a shard's ``upto``
and hands the upper part to a new shard, so a shard's lower bound never
changes and a route that is out of date always lands on a shard at or left of
the right one: the right one is reached by following ``next`` (a B-link
"move right"). See docs/design.md, "The bucket index".

Every shard stores its own header under ``h.range`` (``ShardView.encode``).
Writes guard on its exact bytes, so a write routed with an out-of-date view
fails its guard instead of landing in a shard that no longer covers the key.
No header value ever repeats (ranges only shrink; split ids are random), so
"the same bytes" means "nothing changed".
"""

from __future__ import annotations

import bisect
import hashlib
import json
import secrets
from dataclasses import dataclass, field, replace

from engine import layout

ROOT_SHARD = "0000"  # the root shard keeps the first layout's name, idx.<bucket id>.0000
# Sample keys kept per shard at the split threshold: the key count is
# estimated as samples x rate, and the median sample is the split point.
SAMPLES_AT_THRESHOLD = 256
DEFAULT_SPLIT_THRESHOLD = 50_000
DEFAULT_SPLIT_LEASE_S = 30.0


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """How the bucket index shards (every gateway over one backend should agree)."""

    split_threshold: int = DEFAULT_SPLIT_THRESHOLD  # keys per shard before it splits in two
    # A split that shows no progress for this long is taken over by another gateway.
    split_lease_s: float = DEFAULT_SPLIT_LEASE_S
    split_in_background: bool = True  # False: the write that triggers a split waits for it

    @property
    def sample_rate(self) -> int:
        """1 in ``sample_rate`` keys carries a sample key (1 = every key)."""
        return max(1, self.split_threshold // SAMPLES_AT_THRESHOLD)


@dataclass(frozen=True, slots=True)
class SplitMark:
    """A split in progress on the source shard: it is frozen until the split commits."""

    at: str  # the last key that stays in the source shard
    to: str  # id of the shard that receives the keys above ``at``
    owner: str  # the gateway running it; "" = abandoned, anyone may resume at once
    beat: int = 0  # bumped as the copy makes progress (a stalled split is taken over)


@dataclass(frozen=True, slots=True)
class ShardView:
    """One shard's header as last read: its range, successor, and split state."""

    shard: str
    after: str = ""
    upto: str | None = None
    next: str | None = None
    sample: int = 1
    pending: bool = False  # created by a split whose copy may still be running
    split: SplitMark | None = None
    legacy: bool = False  # a root shard written before ranges existed (no h.range yet)
    raw: bytes = field(default=b"", compare=False)

    def covers(self, key: str) -> bool:
        return key > self.after and (self.upto is None or key <= self.upto)

    @property
    def epoch(self) -> tuple:
        """What a reader relies on: the range, the successor and whether a split is underway.

        Leaves out the split's owner and heartbeat, which change while the
        shard's content cannot (it is frozen), and ``pending``: a pending
        shard takes no writes, so activating it changes nothing a scan saw."""
        return (self.after, self.upto, self.next, self.split and self.split.to)

    def encode(self) -> bytes:
        split = self.split
        doc = {
            "after": self.after,
            "upto": self.upto,
            "next": self.next,
            "k": self.sample,
            "pending": self.pending,
            "split": None if split is None else [split.at, split.to, split.owner, split.beat],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def evolve(self, **changes) -> ShardView:
        """A copy with ``changes`` and its new encoding."""
        view = replace(self, legacy=False, **changes)
        return replace(view, raw=view.encode())

    @classmethod
    def decode(cls, shard: str, raw: bytes | None, default_sample: int = 1) -> ShardView:
        if raw is None:  # legacy root: the whole key space, no splits yet
            return cls(shard, sample=default_sample, legacy=True)
        doc = json.loads(raw)
        split = doc.get("split")
        return cls(
            shard,
            after=doc["after"],
            upto=doc["upto"],
            next=doc["next"],
            sample=int(doc.get("k", 1)),
            pending=bool(doc.get("pending")),
            split=SplitMark(*split) if split else None,
            raw=bytes(raw),
        )

    @classmethod
    def root(cls, sample: int) -> ShardView:
        return cls(ROOT_SHARD, sample=sample).evolve()


class RouteTable:
    """One bucket's shard map as this process knows it: lower bound -> shard, plus views.

    Entries are facts that never become wrong (lower bounds never change and
    shards are never merged), so the table only grows; views may be stale and
    are checked by the shard header on every use.
    """

    def __init__(self) -> None:
        self.afters: list[str] = [""]
        self.shards: list[str] = [ROOT_SHARD]
        self.views: dict[str, ShardView] = {}
        self.loaded = False  # the backend's map was read at least once
        self.unconfirmed: dict[str, str] = {}  # learned by moving right, maybe not in the map

    def add(self, after: str, shard: str, confirmed: bool = True) -> bool:
        """Record ``after -> shard``; True if it was new to this table."""
        i = bisect.bisect_left(self.afters, after)
        if i < len(self.afters) and self.afters[i] == after:
            new = self.shards[i] != shard
            self.shards[i] = shard
        else:
            self.afters.insert(i, after)
            self.shards.insert(i, shard)
            new = True
        if confirmed:
            self.unconfirmed.pop(after, None)
        elif new:
            self.unconfirmed[after] = shard
        return new

    def learn(self, view: ShardView) -> None:
        self.views[view.shard] = view
        self.add(view.after, view.shard, confirmed=view.shard == ROOT_SHARD)
        if view.next is not None and view.upto is not None:
            self.add(view.upto, view.next, confirmed=False)

    def for_key(self, key: str) -> str:
        """The shard with the largest lower bound below ``key`` (keys are > after)."""
        return self.shards[max(bisect.bisect_left(self.afters, key) - 1, 0)]

    def for_keys_after(self, cursor: str) -> str:
        """The shard holding the first keys > ``cursor``."""
        return self.shards[max(bisect.bisect_right(self.afters, cursor) - 1, 0)]

    def fresh_view(self, shard: str) -> ShardView | None:
        """The cached view, unless the table already knows it is out of date.

        A cached view that still claims keys the table routes to a later shard
        predates a split: using it would only fail the guard or the check.
        """
        view = self.views.get(shard)
        if view is None:
            return None
        i = bisect.bisect_right(self.afters, view.after)
        if i == len(self.afters):
            return view
        if view.upto is None or self.afters[i] < view.upto:
            return None
        return view


def new_shard_id() -> str:
    return secrets.token_hex(6)


def initial_generations() -> dict[str, bytes]:
    """Every generation slot of a new shard, so a conditional write never finds one missing."""
    token = secrets.token_hex(8).encode()
    return {layout.generation_slot_key(slot): token for slot in range(layout.GENERATION_SLOTS)}


def is_sampled(bucket_id: str, key: str, rate: int) -> bool:
    """Whether ``key`` carries a sample key (same answer in every gateway).

    Keyed by the bucket id so that no one can choose keys that all dodge the
    sample and keep a shard from ever splitting."""
    if rate <= 1:
        return True
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=bucket_id.encode()[:64]).digest()
    return int.from_bytes(digest, "big") % rate == 0


def split_point(samples: list[str]) -> str | None:
    """The last key of the lower half (None if the samples cannot split the shard)."""
    if len(samples) < 2:
        return None
    return samples[len(samples) // 2 - 1]
