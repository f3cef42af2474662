"""Browser-based POST uploads (pure): the SigV4 form signature and the POST policy.

A form POST carries no signed request; it carries a base64 JSON *policy*
(expiration + conditions on the form fields) and ``x-amz-signature``, the
SigV4 HMAC of that base64 text under the signing key of ``x-amz-credential``,
or (the older form S3 still accepts) ``AWSAccessKeyId`` and ``signature``,
the base64 HMAC-SHA1 of the policy text under the secret key itself.
The checks run in S3's order: required fields, signature (over the policy as
received), policy syntax (InvalidPolicyDocument), expiration, conditions,
uncovered fields. ``content-length-range`` is enforced while the file streams.
Field names compare case-insensitively, values case-sensitively.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from s3api import sigv4_canonical as canon
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4_parse import parse_amz_date, parse_credential

SERVICE = "s3"
FIELD_MISSING = (
    "Bucket POST must contain a field named '{}'.  "
    "If it is specified, please check the order of the fields."
)
# Fields no condition needs to name.
_EXEMPT = frozenset({"x-amz-signature", "file", "policy", "awsaccesskeyid", "signature"})
_V2_FIELDS = ("AWSAccessKeyId", "Signature")
# Field families no condition needs to name either: x-ignore-*, and the file's checksum
# (x-amz-checksum-*), which is verified against the file itself.
_UNNAMED_PREFIXES = ("x-ignore-", "x-amz-checksum-")


@dataclass(frozen=True, slots=True)
class Condition:
    operation: str  # "eq", "starts-with" or "content-length-range"
    field: str  # lowercased, without "$" ("" for content-length-range)
    value: str
    text: str  # as S3 prints it in "Policy Condition failed: ..."
    has_dollar: bool = True
    bounds: tuple[int, int] | None = None  # content-length-range only


@dataclass(frozen=True, slots=True)
class PostPolicy:
    expiration: datetime
    conditions: tuple[Condition, ...]

    @property
    def length_range(self) -> tuple[int, int] | None:
        """The tightest content-length-range of the policy (min, max), if any."""
        ranges = [c.bounds for c in self.conditions if c.bounds is not None]
        if not ranges:
            return None
        return max(r[0] for r in ranges), min(r[1] for r in ranges)


# -- signature ------------------------------------------------------------------------


def missing_field(name: str) -> S3Error:
    return S3Error(
        S3ErrorCode.InvalidArgument, FIELD_MISSING.format(name), ArgumentName=name, ArgumentValue=""
    )


def is_v2_form(fields: Mapping[str, str]) -> bool:
    """Whether the form is signed the older way (``AWSAccessKeyId`` + ``signature``)."""
    return any(name.lower() in fields for name in _V2_FIELDS)


def access_key_of(fields: Mapping[str, str], region: str) -> str:
    """The access key that claims to have signed the form; S3's errors for missing fields."""
    if is_v2_form(fields):
        for name in _V2_FIELDS:
            if name.lower() not in fields:
                raise missing_field(name)
        return fields["awsaccesskeyid"]
    return credential_of(fields, region)[0]


def credential_of(fields: Mapping[str, str], region: str) -> tuple[str, str, str]:
    """(access key, credential date, credential region) of a SigV4 form; S3's errors if not."""
    for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature"):
        if name.lower() not in fields:
            raise missing_field(name)
    algorithm = fields["x-amz-algorithm"]
    if algorithm != canon.ALGORITHM:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            f'X-Amz-Algorithm only supports "{canon.ALGORITHM}"',
            ArgumentName="X-Amz-Algorithm",
            ArgumentValue=algorithm,
        )
    credential = fields["x-amz-credential"]

    def bad_credential(reason: str, **details: str) -> S3Error:
        return S3Error(
            S3ErrorCode.InvalidArgument,
            reason,
            ArgumentName="X-Amz-Credential",
            ArgumentValue=credential,
            **details,
        )

    access_key, date, cred_region, service = parse_credential(credential, bad_credential)
    if service != SERVICE:
        raise bad_credential(f'incorrect service "{service}". This endpoint belongs to "s3".')
    if cred_region != region:
        raise bad_credential(
            f"the region '{cred_region}' is wrong; expecting '{region}'", Region=region
        )
    if parse_amz_date(fields["x-amz-date"]) is None:
        raise S3Error(
            S3ErrorCode.InvalidArgument,
            "X-Amz-Date must be formated via ISO8601 Long format",
            ArgumentName="X-Amz-Date",
            ArgumentValue=fields["x-amz-date"],
        )
    return access_key, date, cred_region


def _v2_signature(secret: str, policy: str) -> str:
    digest = hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_signature(
    fields: Mapping[str, str], region: str, lookup_secret: Callable[[str], str | None]
) -> str:
    """Check the form's signature over the policy text; the access key that signed it."""
    if is_v2_form(fields):
        access_key = access_key_of(fields, region)
        date = cred_region = ""
    else:
        access_key, date, cred_region = credential_of(fields, region)
    secret = lookup_secret(access_key)
    if secret is None:
        raise S3Error(S3ErrorCode.InvalidAccessKeyId, AWSAccessKeyId=access_key)
    policy = fields["policy"]
    if is_v2_form(fields):
        expected, provided = _v2_signature(secret, policy), fields["signature"]
        matches = hmac.compare_digest(expected.encode(), provided.encode())
    else:
        key = canon.signing_key(secret, date, cred_region, SERVICE)
        provided = fields["x-amz-signature"]
        matches = canon.signatures_equal(canon.sign(key, policy), provided)
    if not matches:
        raise S3Error(
            S3ErrorCode.SignatureDoesNotMatch,
            AWSAccessKeyId=access_key,
            StringToSign=policy,
            SignatureProvided=provided,
            StringToSignBytes=" ".join(f"{b:02x}" for b in policy.encode()),
        )
    return access_key


# -- the policy document ----------------------------------------------------------------


def _invalid(reason: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidPolicyDocument, "Invalid Policy: " + reason)


def _json_text(items: list) -> str:
    return "[" + ", ".join(json.dumps(item, ensure_ascii=False) for item in items) + "]"


def _parse_expiration(value: object) -> datetime:
    if not isinstance(value, str):
        raise _invalid(f"Invalid 'expiration' value: '{value}'")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise _invalid(f"Invalid 'expiration' value: '{value}'")


def _simple_condition(item: dict) -> Condition:
    if len(item) != 1:
        raise _invalid(
            "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
        )
    ((name, value),) = item.items()
    if not isinstance(value, str):
        raise _invalid("Invalid Simple-Condition: value must be a string.")
    return Condition("eq", name.lower(), value, _json_text(["eq", "$" + name, value]))


def _bound(value: object) -> int | None:
    """A content-length-range bound (an integer or a numeric string), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _length_range(item: list) -> Condition:
    if len(item) != 3:
        raise _invalid("Invalid content-length-range: wrong number of arguments.")
    if any(isinstance(v, float) for v in item[1:]):
        raise _invalid("Invalid JSON.")
    low, high = _bound(item[1]), _bound(item[2])
    if (low is not None and low < 0) or (high is not None and high < 0):
        raise _invalid("Invalid content-length-range: bounds must not be negative.")
    # Bounds that are not numbers fail as a condition (403), not as a policy error.
    bounds = (low, high) if low is not None and high is not None else None
    return Condition("content-length-range", "", "", _json_text(item), bounds=bounds)


def _array_condition(item: list) -> Condition:
    if not item or not isinstance(item[0], str):
        raise _invalid("Invalid Condition: missing operation identifier.")
    operation = item[0].lower()
    if operation == "content-length-range":
        return _length_range(item)
    if operation not in ("eq", "starts-with"):
        raise _invalid(f"Invalid Condition: unknown operation '{item[0]}'.")
    if len(item) != 3:
        raise _invalid(f"Invalid {item[0]}: wrong number of arguments.")
    if not isinstance(item[1], str) or not isinstance(item[2], str):
        raise _invalid("Invalid JSON.")
    name = item[1]
    has_dollar = name.startswith("$")
    field = (name[1:] if has_dollar else name).lower()
    return Condition(operation, field, item[2], _json_text(item), has_dollar)


def parse_policy(policy_b64: str) -> PostPolicy:
    """Decode and validate a policy; InvalidPolicyDocument with S3's reason if unusable."""
    try:
        raw = base64.b64decode(policy_b64, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("invalid Base64 encoding.") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _invalid("Invalid JSON.") from None
    if not isinstance(doc, dict):
        raise _invalid("Invalid JSON.")
    for name in doc:
        if name not in ("expiration", "conditions"):
            raise _invalid(f"Unexpected: '{name.lower()}'")
    if "expiration" not in doc:
        raise _invalid("Policy missing expiration.")
    if "conditions" not in doc:
        raise _invalid("Policy missing conditions.")
    if not isinstance(doc["conditions"], list):
        raise _invalid("Invalid 'conditions' value: must be a List.")
    conditions = []
    for item in doc["conditions"]:
        if isinstance(item, dict):
            conditions.append(_simple_condition(item))
        elif isinstance(item, list):
            conditions.append(_array_condition(item))
        else:
            raise _invalid("Invalid condition test: must be a List or Object.")
    return PostPolicy(_parse_expiration(doc["expiration"]), tuple(conditions))


# -- evaluation ----------------------------------------------------------------------------


def _denied(reason: str) -> S3Error:
    return S3Error(S3ErrorCode.AccessDenied, "Invalid according to Policy: " + reason)


def _holds(condition: Condition, value: str | None) -> bool:
    if value is None or not condition.has_dollar:
        return False
    if condition.operation == "eq":
        return value == condition.value
    if condition.field == "content-type":
        # A Content-Type list passes only if every type in it has the prefix.
        return all(part.strip().startswith(condition.value) for part in value.split(","))
    return value.startswith(condition.value)


def check_policy(
    policy: PostPolicy, fields: Mapping[str, str], bucket: str, now: datetime
) -> None:
    """Expiration, every condition, then fields no condition names (``fields`` lowercased)."""
    if now >= policy.expiration:
        raise _denied("Policy expired.")
    values = {**fields, "bucket": bucket}
    covered: set[str] = set()
    for condition in policy.conditions:
        if condition.operation == "content-length-range":
            if condition.bounds is None:
                raise _denied("Policy Condition failed: " + condition.text)
            continue  # checked against the file as it streams
        if not _holds(condition, values.get(condition.field)):
            raise _denied("Policy Condition failed: " + condition.text)
        covered.add(condition.field)
    extra = [
        name
        for name in values
        if name not in _EXEMPT and name not in covered and not name.startswith(_UNNAMED_PREFIXES)
    ]
    if extra:
        raise _denied("Extra input fields: " + ", ".join(extra))


def expand_filename(value: str, filename: str | None) -> str:
    """``${filename}`` in a field becomes the uploaded file's base name (if it has one)."""
    if filename is None:
        return value
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return value.replace("${filename}", base)
