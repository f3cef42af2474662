"""The tiering policy and where it places one object. Pure: no I/O, no clock.

A policy names its tiers (hottest first), the rules that place objects on
them and the mover's throttle. ``Policy.place`` answers, for the facts of one
object version at one instant, which tier it belongs on, which rule says so
and why, and when and where it would move next. ``tier plan``, ``tier
apply``, ``tier explain`` and the mover all ask this one function.

Rules are tried in file order; the first whose match holds decides (like a
firewall, not like S3 lifecycle's union: an operator reads the file top down).
Within a rule:

- ``exclude``: the object stays wherever it is;
- ``pin``: the object belongs on that tier, full stop;
- ``promote``: N reads within a window bring it back to the hottest tier
  (or the one named), overriding transitions counted from the write;
- ``transitions``: after N days since the write (``days``) or since the last
  read (``days_since_read``); of those that hold, the coldest wins;
- ``noncurrent``: transitions of versions that are no longer current,
  counted from when they stopped being current.

Transitions only move data colder: an object already colder than what its
rule asks stays (only a pin or a promotion brings data back), so a policy
edit never makes the mover shuttle data back and forth.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

DAY = 86400.0

HOT, WARM, COLD = "hot", "warm", "cold"
KINDS = (HOT, WARM, COLD)
INSTANT, ARCHIVE = "instant", "archive"

# S3 storage class -> (tier kind, cold flavour). INTELLIGENT_TIERING starts hot
# and is then the policy's to place; the others name a kind of tier.
STORAGE_CLASS_KINDS: Mapping[str, tuple[str, str | None]] = {
    "STANDARD": (HOT, None),
    "REDUCED_REDUNDANCY": (HOT, None),
    "INTELLIGENT_TIERING": (HOT, None),
    "STANDARD_IA": (WARM, None),
    "ONEZONE_IA": (WARM, None),
    "GLACIER_IR": (COLD, INSTANT),
    "GLACIER": (COLD, ARCHIVE),
    "DEEP_ARCHIVE": (COLD, ARCHIVE),
}


class UnknownStorageClass(ValueError):
    """A storage class S3 does not define, or one no tier of this policy serves."""


@dataclass(frozen=True)
class Tier:
    name: str
    kind: str  # hot | warm | cold
    pool: str = ""  # hot/warm: the RADOS pool (empty: the deployment's own naming)
    replicated: bool = True  # warm: replicated or erasure-coded pool
    # warm, erasure-coded: k data and m coding chunks, no two in one failure domain
    erasure_k: int = 2
    erasure_m: int = 1
    failure_domain: str = "host"
    zstd_level: int = 3
    cost_per_gb_month: float = 0.0
    flavour: str = INSTANT  # cold: instant (readable) or archive (needs RestoreObject)
    endpoint: str = ""  # cold: the S3 endpoint
    bucket: str = ""  # cold: the remote bucket
    pack_bytes: int = 0  # cold: bytes per remote object (0: the deployment's default)
    region: str = "us-east-1"  # cold
    key_prefix: str = "atonix/"  # cold: every remote key starts with it
    access_key: str | None = None  # cold: None uses boto3's chain (environment, profile)
    secret_key: str | None = None
    timeout_seconds: float = 30.0  # cold: per request attempt
    attempts: int = 5  # cold: per request, with backoff and jitter between them

    @property
    def storage_class(self) -> str:
        """What HEAD, GET and listings report for data on this tier."""
        if self.kind == HOT:
            return "STANDARD"
        if self.kind == WARM:
            return "STANDARD_IA"
        return "GLACIER_IR" if self.flavour == INSTANT else "GLACIER"


@dataclass(frozen=True)
class Match:
    bucket: str = "*"  # glob
    prefix: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    min_size: int = 0
    max_size: int | None = None  # inclusive
    content_type: str = "*"  # glob, e.g. "text/*"

    def holds(self, facts: ObjectFacts) -> bool:
        # ("*" is the usual glob: skipped, as a plan asks this of every version.)
        return (
            (self.bucket == "*" or fnmatch.fnmatchcase(facts.bucket, self.bucket))
            and facts.key.startswith(self.prefix)
            and all(facts.tags.get(k) == v for k, v in self.tags.items())
            and facts.size >= self.min_size
            and (self.max_size is None or facts.size <= self.max_size)
            and (self.content_type == "*"
                 or fnmatch.fnmatchcase(facts.content_type or "", self.content_type))
        )


@dataclass(frozen=True)
class Transition:
    to: str
    days: float | None = None  # since the write (or, for noncurrent rules, since superseded)
    days_since_read: float | None = None
    keep_newer: int = 0  # noncurrent rules: the newest this many noncurrent versions stay

    def due_at(self, since_write: float, since_read: float) -> float:
        """The instant this transition starts to hold (epoch seconds)."""
        if self.days is not None:
            return since_write + self.days * DAY
        assert self.days_since_read is not None
        return since_read + self.days_since_read * DAY


@dataclass(frozen=True)
class Promotion:
    reads: int
    within_s: float
    to: str = ""  # empty: the hottest tier


@dataclass(frozen=True)
class Rule:
    name: str
    match: Match = field(default_factory=Match)
    transitions: tuple[Transition, ...] = ()
    noncurrent: tuple[Transition, ...] = ()
    promote: Promotion | None = None
    pin: str = ""
    exclude: bool = False
    # Expiration (from S3 lifecycle rules): the current version is deleted this many
    # days after its write, or from an instant; noncurrent versions this many days
    # after they were superseded, keeping the newest ``keep_noncurrent`` of them.
    expire_days: float | None = None
    expire_at: float | None = None
    expire_noncurrent_days: float | None = None
    keep_noncurrent: int = 0


@dataclass(frozen=True)
class Throttle:
    mb_per_s: float = 64.0
    ops_per_s: float = 500.0


@dataclass(frozen=True)
class ObjectFacts:
    """What the policy may look at for one object version."""

    bucket: str
    key: str
    size: int
    tier: str  # where its data is now
    written: float  # epoch seconds
    content_type: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    last_read: float | None = None
    recent_reads: int = 0  # reads within the rule's promotion window
    noncurrent_since: float | None = None  # None: the current version
    noncurrent_rank: int = 0  # 0: the newest noncurrent version of its key
    storage_class: str = "STANDARD"  # as the client asked


@dataclass(frozen=True)
class Placement:
    tier: str  # where the object belongs now
    rule: str | None  # the rule that decided, None if none matched
    reason: str
    next_tier: str | None = None  # where it would go next if nothing else happens
    next_at: float | None = None  # and when (epoch seconds)
    expire: bool = False  # the version is to be deleted (an expiration rule is due)

    def moves(self, facts: ObjectFacts) -> bool:
        return self.tier != facts.tier


@dataclass(frozen=True)
class Policy:
    tiers: tuple[Tier, ...]
    rules: tuple[Rule, ...] = ()
    throttle: Throttle = field(default_factory=Throttle)
    source: str = "built-in default"
    # One bucket's S3 lifecycle rules (tiering.lifecycle_rules): every one that matches
    # applies, as in S3, and they come before ``rules`` for the versions they act on.
    bucket_rules: tuple[Rule, ...] = ()

    def tier(self, name: str) -> Tier:
        for t in self.tiers:
            if t.name == name:
                return t
        raise KeyError(name)

    def rank(self, name: str) -> int:
        """0 for the hottest tier; unknown tiers (data left by an older policy) rank hottest."""
        for i, t in enumerate(self.tiers):
            if t.name == name:
                return i
        return -1

    @property
    def hottest(self) -> Tier:
        return self.tiers[0]

    def tier_for_class(self, storage_class: str) -> Tier:
        """The tier a write with this ``x-amz-storage-class`` lands on."""
        if storage_class not in STORAGE_CLASS_KINDS:
            raise UnknownStorageClass(f"{storage_class} is not an S3 storage class")
        kind, flavour = STORAGE_CLASS_KINDS[storage_class]
        for t in self.tiers:
            if t.kind == kind and (flavour is None or t.flavour == flavour):
                return t
        raise UnknownStorageClass(f"no tier of this deployment serves {storage_class}")

    def rule_for(self, facts: ObjectFacts) -> Rule | None:
        merged = _merged([r for r in self.bucket_rules if r.match.holds(facts)], facts)
        if merged is not None:
            return merged
        return next((r for r in self.rules if r.match.holds(facts)), None)

    def place(self, facts: ObjectFacts, now: float) -> Placement:
        rule = self.rule_for(facts)
        if rule is None:
            return Placement(facts.tier, None, "no rule matches; data stays where it was written")
        if rule.exclude:
            return Placement(facts.tier, rule.name, "excluded from tiering by the rule")
        if rule.pin:
            return Placement(rule.pin, rule.name, f"pinned to {rule.pin}")
        expired = _expiry(rule, facts, now)
        if expired is not None:
            return Placement(facts.tier, rule.name, expired, expire=True)
        if facts.noncurrent_since is not None:
            moving = tuple(t for t in rule.noncurrent if facts.noncurrent_rank >= t.keep_newer)
            return self._by_transitions(facts, now, rule, moving, facts.noncurrent_since)
        promotion = rule.promote
        if promotion is not None and facts.recent_reads >= promotion.reads:
            to = promotion.to or self.hottest.name
            reason = f"{facts.recent_reads} reads in the promotion window (>= {promotion.reads})"
            if self.rank(to) < self.rank(facts.tier):
                return Placement(to, rule.name, "promoted: " + reason)
            return Placement(facts.tier, rule.name, "kept: " + reason)
        return self._by_transitions(facts, now, rule, rule.transitions, facts.written)

    def _by_transitions(
        self,
        facts: ObjectFacts,
        now: float,
        rule: Rule,
        transitions: tuple[Transition, ...],
        since: float,
    ) -> Placement:
        last_read = facts.last_read if facts.last_read is not None else facts.written
        due = [(t.due_at(since, last_read), t) for t in transitions]
        held = [t for at, t in due if at <= now]
        target, reason = facts.tier, "no transition of the rule is due yet"
        if held:
            coldest = max(held, key=lambda t: self.rank(t.to))
            if self.rank(coldest.to) > self.rank(facts.tier):
                target, reason = coldest.to, "transition due: " + _describe(coldest)
            else:
                reason = f"already on {facts.tier}, as cold as the rule asks or colder"
        upcoming = sorted(
            ((at, t) for at, t in due if at > now and self.rank(t.to) > self.rank(target)),
            key=lambda pair: pair[0],
        )
        if not upcoming:
            return Placement(target, rule.name, reason)
        at, nxt = upcoming[0]
        return Placement(target, rule.name, reason, nxt.to, at)


def _merged(rules: list[Rule], facts: ObjectFacts) -> Rule | None:
    """The union of the lifecycle rules matching a version, or None if none of them acts
    on its kind (current or noncurrent): then the policy file's rules decide."""
    if facts.noncurrent_since is None:
        acting = [r for r in rules
                  if r.transitions or r.expire_days is not None or r.expire_at is not None]
    else:
        acting = [r for r in rules if r.noncurrent or r.expire_noncurrent_days is not None]
    if not acting:
        return None
    if len(acting) == 1:
        return acting[0]

    def least(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return min(present) if present else None

    return Rule(
        name=" + ".join(r.name for r in acting),
        transitions=tuple(t for r in acting for t in r.transitions),
        noncurrent=tuple(t for r in acting for t in r.noncurrent),
        expire_days=least([r.expire_days for r in acting]),
        expire_at=least([r.expire_at for r in acting]),
        expire_noncurrent_days=least([r.expire_noncurrent_days for r in acting]),
        keep_noncurrent=max(r.keep_noncurrent for r in acting),
    )


def _expiry(rule: Rule, facts: ObjectFacts, now: float) -> str | None:
    """Why the version has expired under ``rule``, or None if it has not."""
    if facts.noncurrent_since is None:
        if rule.expire_days is not None and now >= facts.written + rule.expire_days * DAY:
            return f"expired: {_days(rule.expire_days)} since written"
        if rule.expire_at is not None and now >= rule.expire_at:
            return "expired: its rule's expiration date has passed"
        return None
    days = rule.expire_noncurrent_days
    if days is None or facts.noncurrent_rank < rule.keep_noncurrent:
        return None
    if now >= facts.noncurrent_since + days * DAY:
        return f"expired: {_days(days)} since it stopped being current"
    return None


@functools.cache  # a plan describes the same few transitions for every version
def _describe(t: Transition) -> str:
    if t.days is not None:
        return f"{_days(t.days)} since written -> {t.to}"
    return f"{_days(t.days_since_read or 0)} since last read -> {t.to}"


def _days(d: float) -> str:
    return f"{d:g} day" + ("" if d == 1 else "s")


def default_policy() -> Policy:
    """Without a policy file: hot and warm on the deployment's own backend, no rules,
    so STANDARD and STANDARD_IA work and cold classes are refused."""
    return Policy(tiers=(Tier("hot", HOT), Tier("warm", WARM, zstd_level=9)))
