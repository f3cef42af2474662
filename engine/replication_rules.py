"""A bucket's replication configuration, as stored: a value type shared by the S3 front
end (which parses and renders the XML), the engine (which decides at commit which
versions are PENDING) and the replication service (which ships them).

Stored as JSON in the bucket configuration document ``replication``. The
rules follow S3's replication configuration V2: a filter (prefix and tags),
a priority, a status, delete-marker replication and a destination bucket
with an optional storage class. A destination ``arn:aws:s3:::NAME`` is a
bucket of this deployment (same-region replication); ``arn:aws:s3:REGION::NAME``
names a region of the deployment's configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

REPLICATION_ITEM = "replication"
REPLICATION_STATUS_HEADER = "x-amz-replication-status"
PENDING, COMPLETED, FAILED, REPLICA = "PENDING", "COMPLETED", "FAILED", "REPLICA"
REPLICATED_BUCKETS = "replicated-buckets"  # service records: one per configured bucket
_ARN = re.compile(r"^arn:aws:s3:([a-z0-9-]*)::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$")


class InvalidDestination(ValueError):
    """A destination that is not ``arn:aws:s3:[REGION]::BUCKET``."""


def parse_destination(arn: str) -> tuple[str | None, str]:
    """(region or None for this one, bucket) of a destination ARN."""
    found = _ARN.match(arn)
    if found is None:
        raise InvalidDestination(f"Invalid destination bucket ARN: {arn}")
    return found.group(1) or None, found.group(2)


@dataclass(frozen=True)
class ReplicationRule:
    destination: str  # arn:aws:s3:[REGION]::BUCKET, as the client wrote it
    rule_id: str = ""
    priority: int = 0
    enabled: bool = True
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    storage_class: str | None = None  # None: the source version's class
    delete_markers: bool = False  # DeleteMarkerReplication
    # How the filter was written (Filter with Prefix/Tag/And, or the V1 top-level
    # Prefix), so GetBucketReplication answers with the document's own shape.
    filter_form: str = "filter"

    @property
    def destination_bucket(self) -> str:
        return parse_destination(self.destination)[1]

    @property
    def destination_region(self) -> str | None:
        return parse_destination(self.destination)[0]

    def matches(self, key: str, tags: Mapping[str, str]) -> bool:
        return (self.enabled and key.startswith(self.prefix)
                and all(tags.get(k) == v for k, v in self.tags.items()))


@dataclass(frozen=True)
class ReplicationConfig:
    rules: tuple[ReplicationRule, ...]
    role: str = ""

    def encode(self) -> bytes:
        doc = {"role": self.role, "rules": [asdict(r) for r in self.rules]}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> ReplicationConfig:
        doc = json.loads(raw)
        return cls(tuple(ReplicationRule(**r) for r in doc["rules"]), doc.get("role", ""))

    def covers(self, key: str) -> bool:
        """Whether some enabled rule may cover ``key`` (its tags aside): what makes a
        change of the key worth a change-log record."""
        return any(r.enabled and key.startswith(r.prefix) for r in self.rules)

    def rules_for(self, key: str, tags: Mapping[str, str]) -> list[ReplicationRule]:
        """The rules a version of ``key`` with ``tags`` goes by: for each destination the
        matching rule of the highest priority (S3's rule when several match)."""
        best: dict[str, ReplicationRule] = {}
        for rule in self.rules:
            if not rule.matches(key, tags):
                continue
            held = best.get(rule.destination)
            if held is None or rule.priority > held.priority:
                best[rule.destination] = rule
        return list(best.values())


# Which region takes clients' writes to a bucket replicated active-passive (engine.primacy).
@dataclass(frozen=True, order=True)
class Primacy:
    epoch: int
    primary: str  # a region name ("" with epoch 0: no primacy, active-active)

    def encode(self) -> bytes:
        return f"{self.epoch:020d} {self.primary}".encode()

    @classmethod
    def decode(cls, raw: bytes) -> Primacy:
        epoch, _, primary = raw.decode().partition(" ")
        return cls(int(epoch), primary)

    def header(self) -> str:
        """As ``x-atonix-replica-primacy`` carries it: ``EPOCH REGION``."""
        return f"{self.epoch} {self.primary}".rstrip()

    @classmethod
    def parse_header(cls, value: str) -> Primacy:
        """The header's value; ValueError if malformed."""
        epoch, _, primary = value.strip().partition(" ")
        parsed = cls(int(epoch), primary.strip())
        if parsed.epoch < 0 or (parsed.epoch == 0) != (parsed.primary == ""):
            raise ValueError(f"malformed primacy {value!r}")
        return parsed


NO_PRIMACY = Primacy(0, "")
