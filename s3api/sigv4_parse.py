"""Parsing the parts of a SigV4 request: Authorization header, credential, dates, payload mode.

Pure functions; every refusal is the ``S3Error`` AWS S3 answers for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from functools import lru_cache

from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4_canonical import ALGORITHM, TERMINATOR

AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
HEADER_MALFORMED = "The authorization header is malformed; "
SIGV2_NOT_SUPPORTED = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
)
CREDENTIAL_HELP = (
    'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
)

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")


class PayloadMode(Enum):
    """What ``x-amz-content-sha256`` (or a presigned URL) promises about the body."""

    SIGNED_HEX = "hex"  # the body's SHA-256 is AuthResult.declared_sha256
    UNSIGNED = "UNSIGNED-PAYLOAD"
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"

    @property
    def is_streaming(self) -> bool:
        """The body is aws-chunked framed (decode it with ``s3api.chunked``)."""
        return self.value.startswith("STREAMING-")


_MODES_BY_VALUE = {mode.value: mode for mode in PayloadMode if mode is not PayloadMode.SIGNED_HEX}
_ECDSA_MODES = frozenset(
    {"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"}
)


@dataclass(frozen=True)
class AuthHeader:
    """A parsed ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    access_key: str
    date: str  # YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


def s3_error(code: S3ErrorCode, message: str | None = None, **details: str) -> S3Error:
    return S3Error(code, message, **details)


@lru_cache(maxsize=64)
def _valid_date(date: str) -> bool:
    if len(date) != 8 or not date.isdigit():
        return False
    try:
        datetime.strptime(date, "%Y%m%d")
    except ValueError:
        return False
    return True


def parse_credential(value: str, fail: Callable[[str], S3Error]) -> tuple[str, str, str, str]:
    """(access_key, date, region, service) of ``AKID/YYYYMMDD/region/service/aws4_request``.

    ``fail(reason)`` builds the error; the header and the query word it differently.
    """
    parts = value.rsplit("/", 4)
    if len(parts) != 5 or not all(parts[:4]) or not _valid_date(parts[1]):
        raise fail(CREDENTIAL_HELP)
    access_key, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise fail(f'incorrect terminal "{terminator}". This endpoint uses "{TERMINATOR}".')
    return access_key, date, region, service


def parse_signed_headers(value: str) -> tuple[str, ...] | None:
    """Lowercased names of ``a;b;c``, or ``None`` when a name is empty."""
    names = tuple(name.strip().lower() for name in value.split(";"))
    return names if all(names) else None


def parse_authorization_header(value: str) -> AuthHeader:
    """Parse an ``Authorization`` header value; raise the S3Error AWS answers if unusable."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm == "AWS":
        raise s3_error(S3ErrorCode.InvalidRequest, SIGV2_NOT_SUPPORTED)
    if algorithm != ALGORITHM:
        raise s3_error(
            S3ErrorCode.InvalidArgument,
            "Unsupported Authorization Type",
            ArgumentName="Authorization",
            ArgumentValue=value,
        )

    def malformed(reason: str) -> S3Error:
        return s3_error(S3ErrorCode.AuthorizationHeaderMalformed, HEADER_MALFORMED + reason)

    components: dict[str, str] = {}
    for component in rest.split(","):
        component = component.strip()
        if not component:
            continue
        name, sep, val = component.partition("=")
        known = name in ("Credential", "SignedHeaders", "Signature")
        if not sep or not known or name in components:
            raise malformed(f'the authorization component "{component}" is malformed.')
        components[name] = val.strip()
    if len(components) != 3:
        raise malformed(
            "the authorization header requires three components: "
            "Credential, SignedHeaders, and Signature."
        )
    access_key, date, region, service = parse_credential(components["Credential"], malformed)
    signed = parse_signed_headers(components["SignedHeaders"])
    if signed is None:
        raise malformed(
            f'the authorization component "SignedHeaders={components["SignedHeaders"]}" '
            "is malformed."
        )
    return AuthHeader(access_key, date, region, service, signed, components["Signature"])


def parse_amz_date(value: str) -> datetime | None:
    """``YYYYMMDDTHHMMSSZ`` as an aware UTC datetime, or ``None``."""
    if not _AMZ_DATE.fullmatch(value):
        return None
    try:  # by slicing: strptime is a tenth of a presigned request's cost
        return datetime(
            int(value[0:4]), int(value[4:6]), int(value[6:8]),
            int(value[9:11]), int(value[11:13]), int(value[13:15]), tzinfo=UTC,
        )
    except ValueError:
        return None


def parse_date_header(value: str) -> datetime | None:
    """A ``Date`` header: ISO 8601 basic or any HTTP-date form, as aware UTC."""
    parsed = parse_amz_date(value.strip())
    if parsed is not None:
        return parsed
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def iso8601(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def payload_mode_of(value: str) -> tuple[PayloadMode, str | None]:
    """(mode, lowercase hex digest or None) for an ``x-amz-content-sha256`` value."""
    mode = _MODES_BY_VALUE.get(value)
    if mode is not None:
        return mode, None
    if _HEX64.fullmatch(value):
        return PayloadMode.SIGNED_HEX, value.lower()
    if value in _ECDSA_MODES:  # SigV4a streaming: not supported
        raise s3_error(S3ErrorCode.NotImplemented, Header="x-amz-content-sha256")
    raise s3_error(
        S3ErrorCode.InvalidArgument,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, "
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=value,
    )


def lifetime_problem(expires: int, longest: int) -> str:
    """Why a presigned URL's X-Amz-Expires is out of range (0 < expires <= longest)."""
    if expires < 0:
        return "X-Amz-Expires must be non-negative"
    if expires == 0:
        return "X-Amz-Expires must be greater than 0"
    return f"X-Amz-Expires must be less than a week (in seconds) that is {longest}"
