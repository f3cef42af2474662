"""Object lock (pure): retention and legal holds, and what they forbid.

A bucket created with object lock keeps versioning Enabled for good and may
hold a default retention (``cfg.object-lock``: JSON ``{"mode", "days",
"years"}``). A version's retention (mode and retain-until time) and legal
hold live in its entry's reserved headers, so they travel with the version
through every copy of the index. The rules, as S3's:

- a version under a legal hold, or retained until a time not yet past,
  cannot be deleted (its delete marker-free removal) by anyone, on any path;
- COMPLIANCE retention can only be kept or extended, never shortened,
  removed or turned into GOVERNANCE, whoever asks (the admin included);
- GOVERNANCE retention may be shortened or removed, and its version
  deleted, only with ``bypass``: the bucket's owner (or, once policies
  exist, a principal granted s3:BypassGovernanceRetention) asking for it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass

from engine.errors import EngineError
from engine.records import ObjectEntry

LOCK_CONFIG = "object-lock"
GOVERNANCE, COMPLIANCE = "GOVERNANCE", "COMPLIANCE"
MODE_HEADER = "x-atonix-lock-mode"
UNTIL_HEADER = "x-atonix-lock-until"
HOLD_HEADER = "x-atonix-legal-hold"
DAY = 86400.0


class ObjectLocked(EngineError):
    """The version is protected by object lock (S3: AccessDenied)."""


class InvalidRetention(EngineError):
    """A retention that cannot be set: a bad mode, a date not in the future."""


class ObjectLockNotEnabled(EngineError):
    """Retention or a legal hold asked of a bucket created without object lock."""


@dataclass(frozen=True, slots=True)
class Retention:
    mode: str
    until: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class LockConfig:
    """A bucket's object lock: always enabled once created; an optional default retention."""

    mode: str | None = None
    days: int | None = None
    years: int | None = None

    def default_retention(self, now: float) -> Retention | None:
        if self.mode is None:
            return None
        days = (self.days or 0) + 365 * (self.years or 0)
        return Retention(self.mode, now + days * DAY)

    def encode(self) -> bytes:
        return json.dumps({"mode": self.mode, "days": self.days, "years": self.years}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> LockConfig:
        doc = json.loads(raw)
        return cls(doc.get("mode"), doc.get("days"), doc.get("years"))


def check_mode(mode: str) -> str:
    if mode not in (GOVERNANCE, COMPLIANCE):
        raise InvalidRetention(f"Unknown object lock mode: {mode}")
    return mode


def retention_of(entry: ObjectEntry) -> Retention | None:
    mode, until = entry.headers.get(MODE_HEADER), entry.headers.get(UNTIL_HEADER)
    if mode is None or until is None:
        return None
    return Retention(mode, float(until))


def legal_hold_of(entry: ObjectEntry) -> bool:
    return entry.headers.get(HOLD_HEADER) == "ON"


def with_retention(headers: Mapping[str, str], retention: Retention | None) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k not in (MODE_HEADER, UNTIL_HEADER)}
    if retention is not None:
        out[MODE_HEADER] = check_mode(retention.mode)
        out[UNTIL_HEADER] = repr(retention.until)
    return out


def with_legal_hold(headers: Mapping[str, str], on: bool) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k != HOLD_HEADER}
    if on:
        out[HOLD_HEADER] = "ON"
    return out


def without_lock(headers: Mapping[str, str]) -> dict[str, str]:
    """Stored headers without any retention or legal hold (what a copy starts from)."""
    return {k: v for k, v in headers.items() if k not in (MODE_HEADER, UNTIL_HEADER, HOLD_HEADER)}


def check_deletable(entry: ObjectEntry, now: float, bypass_governance: bool) -> None:
    """ObjectLocked unless this version may be removed now."""
    if legal_hold_of(entry):
        raise ObjectLocked("the object version is under a legal hold")
    retention = retention_of(entry)
    if retention is None or retention.until <= now:
        return
    if retention.mode == GOVERNANCE and bypass_governance:
        return
    raise ObjectLocked(f"the object version is retained ({retention.mode}) until later")


def check_retention_change(
    old: Retention | None, new: Retention | None, now: float, bypass_governance: bool
) -> None:
    """ObjectLocked if replacing ``old`` with ``new`` weakens an active retention unlawfully."""
    if new is not None:
        check_mode(new.mode)
        if new.until <= now:
            raise InvalidRetention("The retain until date must be in the future!")
    if old is None or old.until <= now:
        return
    stronger = new is not None and new.until >= old.until
    if old.mode == COMPLIANCE:
        if not (stronger and new is not None and new.mode == COMPLIANCE):
            raise ObjectLocked("COMPLIANCE retention can only be extended")
        return
    weaker = not stronger
    if weaker and not bypass_governance:
        raise ObjectLocked("shortening GOVERNANCE retention needs the bypass")


def apply_lock(entry: ObjectEntry, config: LockConfig | None, now: float) -> ObjectEntry:
    """A new version as stored: the bucket's default retention unless it asked for its own;
    ObjectLockNotEnabled if it asks for any protection from a bucket without object lock."""
    asks = MODE_HEADER in entry.headers or HOLD_HEADER in entry.headers
    if config is None:
        if asks:
            raise ObjectLockNotEnabled("Bucket is missing Object Lock Configuration")
        return entry
    if MODE_HEADER in entry.headers:
        retention = retention_of(entry)
        check_retention_change(None, retention, now, False)
        return entry
    default = config.default_retention(now)
    if default is None:
        return entry
    return dataclasses.replace(entry, headers=with_retention(entry.headers, default))
