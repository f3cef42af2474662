"""Validation of bucket names and object keys (pure)."""

from __future__ import annotations

import ipaddress
import re

from engine.errors import InvalidBucketName, InvalidKey, KeyTooLong

MAX_KEY_BYTES = 1024
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def validate_bucket_name(name: str) -> None:
    """AWS's rules for new buckets (3-63 chars, lowercase, digits, dots, hyphens)."""
    if not _BUCKET_RE.match(name):
        raise InvalidBucketName("The specified bucket is not valid.", BucketName=name)
    if ".." in name or ".-" in name or "-." in name:
        raise InvalidBucketName("The specified bucket is not valid.", BucketName=name)
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        raise InvalidBucketName("The specified bucket is not valid.", BucketName=name)
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return
    raise InvalidBucketName("The specified bucket is not valid.", BucketName=name)


def looks_like_bucket_name(name: str) -> bool:
    """Loose check for names in existing-bucket requests (no error, just a yes/no)."""
    return 0 < len(name) <= 255 and "/" not in name


def validate_key(key: str) -> None:
    if not key:
        raise InvalidKey("Object key must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLong("Your key is too long", Key=key[:64])
    if "\x00" in key:
        # RADOS omap keys are C strings; a NUL can never be stored.
        raise InvalidKey("Object key must not contain NUL characters")
