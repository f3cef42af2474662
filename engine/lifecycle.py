"""A bucket's S3 lifecycle configuration, as stored: a value type shared by the S3
front end (which parses and renders the XML) and the tiering service (which
carries the rules out with the same mover as the tiering policy).

Stored as JSON in the bucket configuration document ``lifecycle``, written
and read like every bucket configuration (guarded on the bucket id, read
from the backend).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

LIFECYCLE_ITEM = "lifecycle"


@dataclass(frozen=True)
class LifecycleRule:
    rule_id: str = ""
    enabled: bool = True
    prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    size_greater_than: int | None = None  # bytes, exclusive (ObjectSizeGreaterThan)
    size_less_than: int | None = None  # bytes, exclusive (ObjectSizeLessThan)
    # (days since written, storage class); (days since noncurrent, storage class), with a
    # third item when NewerNoncurrentVersions spares the newest that many versions
    transitions: tuple[tuple[int, str], ...] = ()
    noncurrent_transitions: tuple[tuple, ...] = ()
    expiration_days: int | None = None
    expiration_date: str | None = None  # ISO 8601, midnight UTC, as S3 requires
    expired_object_delete_marker: bool = False
    noncurrent_expiration_days: int | None = None
    newer_noncurrent_versions: int | None = None  # kept besides the current one
    abort_incomplete_days: int | None = None  # AbortIncompleteMultipartUpload
    # How the filter was written (Filter/Prefix/And, or the legacy top-level Prefix),
    # so GetBucketLifecycleConfiguration answers with the document's own shape.
    filter_form: str = "filter"


def encode_rules(rules: Sequence[LifecycleRule]) -> bytes:
    return json.dumps([asdict(r) for r in rules], separators=(",", ":")).encode()


def decode_rules(raw: bytes) -> list[LifecycleRule]:
    out = []
    for doc in json.loads(raw):
        doc["transitions"] = tuple(tuple(t) for t in doc.get("transitions", ()))
        doc["noncurrent_transitions"] = tuple(
            tuple(t) for t in doc.get("noncurrent_transitions", ())
        )
        out.append(LifecycleRule(**doc))
    return out
