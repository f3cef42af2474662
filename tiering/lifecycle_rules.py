"""S3 lifecycle rules as tiering policy rules: one mover carries out both.

A bucket's lifecycle configuration (``engine.LifecycleRule``, stored by
PutBucketLifecycleConfiguration) becomes policy ``Rule`` objects matching
that bucket only. As in S3, every lifecycle rule that matches a version
applies (their actions united: the earliest expiry, the coldest due
transition), and they come before the policy file's rules for the versions
they act on: the bucket owner's own configuration is the more specific one.
Transitions map their storage class to the tier that serves it; a class no
tier serves any more (the policy changed since the rule was stored) drops
that transition only. Expiration, noncurrent expiration and the abort of
incomplete multipart uploads carry over as they are; expired object delete
markers are removed by the apply pass itself (``delete_marker_rules``).
Disabled rules are left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from engine import LifecycleRule
from tiering.policy import Match, Policy, Rule, Transition, UnknownStorageClass


def lifecycle_policy(policy: Policy, bucket: str, rules: list[LifecycleRule]) -> Policy:
    """``policy`` with the bucket's lifecycle rules (tried before its own)."""
    translated = tuple(
        rule
        for n, r in enumerate(rules)
        if r.enabled and _acts_on_objects(rule := _rule(policy, bucket, n, r))
    )
    if not translated:
        return policy
    return replace(policy, bucket_rules=translated)


def abort_after_days(rules: list[LifecycleRule]) -> list[tuple[str, float]]:
    """(key prefix, days) of every enabled AbortIncompleteMultipartUpload action."""
    return [
        (r.prefix, float(r.abort_incomplete_days))
        for r in rules
        if r.enabled and r.abort_incomplete_days is not None
    ]


def delete_marker_rules(rules: list[LifecycleRule]) -> list[tuple[str, float]]:
    """(key prefix, days) of the enabled rules that remove expired object delete markers
    (a current delete marker with no other version): at once with
    ``ExpiredObjectDeleteMarker``, or, as S3 does for ``Expiration`` with ``Days``, once the
    marker is that old. Rules filtering on tags or a minimum size never match a marker."""
    out = []
    for r in rules:
        if not r.enabled or r.tags or r.size_greater_than is not None:
            continue
        if r.expired_object_delete_marker:
            out.append((r.prefix, 0.0))
        elif r.expiration_days is not None:
            out.append((r.prefix, float(r.expiration_days)))
    return out


def _rule(policy: Policy, bucket: str, n: int, r: LifecycleRule) -> Rule:
    gt, lt = r.size_greater_than, r.size_less_than
    match = Match(
        bucket=bucket,
        prefix=r.prefix,
        tags=dict(r.tags),
        min_size=gt + 1 if gt is not None else 0,
        max_size=lt - 1 if lt is not None else None,
    )
    expire_at = None
    if r.expiration_date is not None:
        when = dt.datetime.fromisoformat(r.expiration_date.replace("Z", "+00:00"))
        # A date without a zone is UTC, as S3 reads it (never the server's local time).
        expire_at = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
    return Rule(
        name=f"lifecycle {r.rule_id or f'#{n + 1}'}",
        match=match,
        transitions=_transitions(policy, r.transitions),
        noncurrent=_transitions(policy, r.noncurrent_transitions),
        expire_days=r.expiration_days,
        expire_at=expire_at,
        expire_noncurrent_days=r.noncurrent_expiration_days,
        keep_noncurrent=r.newer_noncurrent_versions or 0,
    )


def _acts_on_objects(rule: Rule) -> bool:
    """Whether the rule does anything to object versions (an abort-only rule does not,
    and must not shadow the policy file's rules for the bucket)."""
    return bool(
        rule.transitions or rule.noncurrent or rule.expire_days is not None
        or rule.expire_at is not None or rule.expire_noncurrent_days is not None
    )


def _transitions(policy: Policy, specs: tuple[tuple, ...]) -> tuple[Transition, ...]:
    """(days, class) or, for noncurrent versions, (days, class, newer versions kept)."""
    out = []
    for days, storage_class, *newer in specs:
        try:
            tier = policy.tier_for_class(storage_class)
        except UnknownStorageClass:
            continue
        keep = int(newer[0]) if newer and newer[0] else 0
        out.append(Transition(to=tier.name, days=float(days), keep_newer=keep))
    return tuple(out)
