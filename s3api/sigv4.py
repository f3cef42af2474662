"""AWS Signature Version 4 request verification for S3: pure, socket-free, h11 style.

``verify_request`` takes a plain view of the request (method, raw path, raw query,
headers), a secret lookup and the current time, and either returns who signed it
and how its payload must be checked (``AuthResult``), returns ``None`` for an
anonymous request, or raises ``S3Error`` with the code AWS answers. Both header
authentication (``Authorization: AWS4-HMAC-SHA256 ...``) and presigned URLs
(``X-Amz-Algorithm=...`` query parameters) are supported; SigV2 is refused.

The canonical request is built the way AWS S3 builds it (``s3api.sigv4_canonical``).
When a client signed its wire path or query verbatim and that differs from the
canonical encoding (botocore signs a raw ``+`` or ``!`` as sent), the verbatim form
is tried second: both describe the same resource, so nothing more is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from s3api import sigv4_canonical as canon
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4_canonical import ALGORITHM, TERMINATOR, Headers
from s3api.sigv4_parse import (
    AMZ_DATE_FORMAT,
    HEADER_MALFORMED,
    SIGV2_NOT_SUPPORTED,
    AuthHeader,
    PayloadMode,
    iso8601,
    lifetime_problem,
    parse_amz_date,
    parse_authorization_header,
    parse_credential,
    parse_date_header,
    parse_signed_headers,
    payload_mode_of,
    s3_error,
)

__all__ = [
    "AuthHeader",
    "AuthResult",
    "Headers",
    "HttpRequestView",
    "PayloadMode",
    "parse_authorization_header",
    "verify_request",
]

SERVICE = "s3"
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 604800  # one week, in seconds

_QUERY_CREDENTIAL = "Error parsing the X-Amz-Credential parameter; "
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)


@dataclass(frozen=True)
class HttpRequestView:
    """The parts of an HTTP request SigV4 signs, exactly as they were on the wire.

    ``raw_path`` is percent-encoded and has no query; ``raw_query`` has no ``?``.
    ``headers`` may be any mapping or multidict (repeated headers are kept and
    joined with ``,``); it is wrapped in a case-insensitive ``Headers``.
    """

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]

    def __post_init__(self) -> None:
        if not isinstance(self.headers, Headers):
            object.__setattr__(self, "headers", Headers(self.headers))

    @classmethod
    def from_target(cls, method: str, target: str, headers: Mapping[str, str]) -> HttpRequestView:
        """From a request-target such as aiohttp's ``request.raw_path`` (path?query)."""
        path, _, query = target.partition("?")
        return cls(method, path, query, headers)


@dataclass(frozen=True)
class AuthResult:
    """Who signed a request and what the body layer still has to verify."""

    access_key: str
    payload_mode: PayloadMode
    declared_sha256: str | None  # lowercase hex, only for SIGNED_HEX
    seed_signature: str  # the request signature; chunk signatures chain from it
    signing_key: bytes = field(repr=False)
    scope: str  # YYYYMMDD/region/service/aws4_request
    amz_date: str  # YYYYMMDDTHHMMSSZ, as in the string to sign
    presigned: bool = False
    signed_headers: tuple[str, ...] = ()
    decoded_content_length: int | None = None  # x-amz-decoded-content-length (streaming)
    trailer_names: tuple[str, ...] | None = None  # x-amz-trailer, lowercased (streaming)

    @property
    def region(self) -> str:
        return self.scope.split("/")[1]


def _check_scope(
    region: str, service: str, expected_region: str | None, fail: Callable[..., S3Error]
) -> None:
    if service != SERVICE:
        raise fail(f'incorrect service "{service}". This endpoint belongs to "{SERVICE}".')
    if expected_region is not None and region != expected_region:
        raise fail(
            f"the region '{region}' is wrong; expecting '{expected_region}'",
            Region=expected_region,
        )


def _check_all_signed(headers: Headers, signed: tuple[str, ...]) -> None:
    """AWS refuses x-amz-* headers (and Host) that the signature does not cover."""
    signed_set = set(signed)
    missing = [
        name
        for name in headers
        if (name == "host" or name.startswith("x-amz-")) and name not in signed_set
    ]
    if missing:
        raise s3_error(
            S3ErrorCode.AccessDenied,
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(sorted(missing)),
        )


def _check_signature(
    req: HttpRequestView,
    *,
    signed: tuple[str, ...],
    payload_hash: str,
    amz_date: str,
    scope: str,
    key: bytes,
    provided: str,
    access_key: str,
    presigned: bool,
) -> None:
    headers = req.headers
    assert isinstance(headers, Headers)
    block = canon.canonical_headers(headers, signed)
    first = None
    forms = [
        (
            canon.canonical_uri(req.raw_path),
            canon.canonical_query(req.raw_query, exclude_signature=presigned),
        ),
        (req.raw_path or "/", canon.verbatim_query(req.raw_query, exclude_signature=presigned)),
    ]
    for index, (uri, query) in enumerate(forms):
        if index and (uri, query) == forms[0]:
            break
        request = canon.canonical_request(req.method, uri, query, block, signed, payload_hash)
        to_sign = canon.string_to_sign(amz_date, scope, request)
        if canon.signatures_equal(canon.sign(key, to_sign), provided):
            return
        if first is None:
            first = (request, to_sign)
    assert first is not None
    raise s3_error(
        S3ErrorCode.SignatureDoesNotMatch,
        AWSAccessKeyId=access_key,
        StringToSign=first[1],
        SignatureProvided=provided,
        CanonicalRequest=first[0],
    )


def _lookup(lookup_secret: Callable[[str], str | None], access_key: str) -> str:
    secret = lookup_secret(access_key)
    if secret is None:
        raise s3_error(S3ErrorCode.InvalidAccessKeyId, AWSAccessKeyId=access_key)
    return secret


def _streaming_extras(headers: Headers) -> dict:
    decoded = headers.get("x-amz-decoded-content-length")
    trailer = headers.get("x-amz-trailer")
    return {
        "decoded_content_length": int(decoded) if decoded and decoded.isdigit() else None,
        "trailer_names": None
        if trailer is None
        else tuple(name.strip().lower() for name in trailer.split(",") if name.strip()),
    }


def verify_request(
    req: HttpRequestView,
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    *,
    region: str | None = None,
) -> AuthResult | None:
    """Verify a request's SigV4 signature; ``None`` when it carries no authentication.

    ``lookup_secret(access_key)`` returns the secret or ``None`` (InvalidAccessKeyId).
    ``region``, when given, is enforced against the credential scope.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    authorization = req.headers.get("authorization")
    params: dict[str, str] = {}
    if req.raw_query:
        for name, value in parse_qsl(req.raw_query, keep_blank_values=True):
            params.setdefault(name, value)
    presign = any(
        name in params for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
    )
    sigv2_query = "AWSAccessKeyId" in params and "Signature" in params
    if authorization is not None:
        if presign or sigv2_query:
            raise s3_error(
                S3ErrorCode.InvalidArgument,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be "
                "specified",
                ArgumentName="Authorization",
                ArgumentValue=authorization,
            )
        return _verify_header(req, authorization, lookup_secret, now, region)
    if presign:
        return _verify_presigned(req, params, lookup_secret, now, region)
    if sigv2_query:
        raise s3_error(S3ErrorCode.InvalidRequest, SIGV2_NOT_SUPPORTED)
    return None


def _verify_header(
    req: HttpRequestView,
    authorization: str,
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    region: str | None,
) -> AuthResult:
    headers = req.headers
    assert isinstance(headers, Headers)
    auth = parse_authorization_header(authorization)

    def malformed(reason: str, **details: str) -> S3Error:
        return s3_error(
            S3ErrorCode.AuthorizationHeaderMalformed, HEADER_MALFORMED + reason, **details
        )

    _check_scope(auth.region, auth.service, region, malformed)
    raw_date = headers.get("x-amz-date")
    if raw_date is not None:
        moment = parse_amz_date(raw_date.strip())
        amz_date = raw_date.strip()
    else:
        raw_date = headers.get("date")
        moment = parse_date_header(raw_date) if raw_date is not None else None
        amz_date = moment.strftime(AMZ_DATE_FORMAT) if moment is not None else ""
    if moment is None:
        raise s3_error(
            S3ErrorCode.AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    if auth.date != amz_date[:8]:
        raise malformed(
            f'Invalid credential date "{auth.date}". '
            f'This date is not the same as X-Amz-Date: "{amz_date[:8]}".'
        )
    secret = _lookup(lookup_secret, auth.access_key)
    if abs(now - moment) > MAX_SKEW:
        raise s3_error(
            S3ErrorCode.RequestTimeTooSkewed,
            RequestTime=raw_date or "",
            ServerTime=iso8601(now),
            MaxAllowedSkewMilliseconds=str(int(MAX_SKEW.total_seconds() * 1000)),
        )
    content_sha = headers.get("x-amz-content-sha256")
    if content_sha is None:
        raise s3_error(
            S3ErrorCode.InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256",
        )
    mode, declared = payload_mode_of(content_sha)
    _check_all_signed(headers, auth.signed_headers)
    key = canon.signing_key(secret, auth.date, auth.region, auth.service)
    _check_signature(
        req,
        signed=auth.signed_headers,
        payload_hash=content_sha,
        amz_date=amz_date,
        scope=auth.scope,
        key=key,
        provided=auth.signature,
        access_key=auth.access_key,
        presigned=False,
    )
    return AuthResult(
        access_key=auth.access_key,
        payload_mode=mode,
        declared_sha256=declared,
        seed_signature=auth.signature.lower(),
        signing_key=key,
        scope=auth.scope,
        amz_date=amz_date,
        signed_headers=auth.signed_headers,
        **(_streaming_extras(headers) if mode.is_streaming else {}),
    )


def _verify_presigned(
    req: HttpRequestView,
    params: dict[str, str],
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    region: str | None,
) -> AuthResult:
    headers = req.headers
    assert isinstance(headers, Headers)

    def query_error(message: str | None = None, **details: str) -> S3Error:
        return s3_error(S3ErrorCode.AuthorizationQueryParametersError, message, **details)

    def credential_error(reason: str, **details: str) -> S3Error:
        return query_error(_QUERY_CREDENTIAL + reason, **details)

    if any(name not in params for name in _PRESIGN_PARAMS):
        raise query_error()
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise query_error(f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    access_key, date, cred_region, service = parse_credential(
        params["X-Amz-Credential"], credential_error
    )
    _check_scope(cred_region, service, region, credential_error)
    amz_date = params["X-Amz-Date"]
    moment = parse_amz_date(amz_date)
    if moment is None:
        raise query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    raw_expires = params["X-Amz-Expires"]
    if not re.fullmatch(r"-?\d{1,12}", raw_expires):
        raise query_error("X-Amz-Expires should be a number")
    expires = int(raw_expires)
    if not 0 < expires <= MAX_PRESIGN_EXPIRES:  # 403 as Ceph RGW (AWS: 400): never valid
        raise s3_error(S3ErrorCode.AccessDenied, lifetime_problem(expires, MAX_PRESIGN_EXPIRES))
    if date != amz_date[:8]:
        raise query_error(
            f'Invalid credential date "{date}". '
            f'This date is not the same as X-Amz-Date: "{amz_date[:8]}".'
        )
    signed = parse_signed_headers(params["X-Amz-SignedHeaders"])
    if signed is None:
        raise query_error("X-Amz-SignedHeaders is malformed")
    secret = _lookup(lookup_secret, access_key)
    if moment - now > MAX_SKEW:
        raise s3_error(S3ErrorCode.AccessDenied, "Request is not valid yet")
    if now > moment + timedelta(seconds=expires):
        raise s3_error(
            S3ErrorCode.AccessDenied,
            "Request has expired",
            **{"X-Amz-Expires": raw_expires},
            Expires=iso8601(moment + timedelta(seconds=expires)),
            ServerTime=iso8601(now),
        )
    payload_hash = params.get("X-Amz-Content-Sha256", PayloadMode.UNSIGNED.value)
    mode, declared = payload_mode_of(payload_hash)
    _check_all_signed(headers, signed)
    scope = f"{date}/{cred_region}/{service}/{TERMINATOR}"
    key = canon.signing_key(secret, date, cred_region, service)
    provided = params["X-Amz-Signature"]
    _check_signature(
        req,
        signed=signed,
        payload_hash=payload_hash,
        amz_date=amz_date,
        scope=scope,
        key=key,
        provided=provided,
        access_key=access_key,
        presigned=True,
    )
    return AuthResult(
        access_key=access_key,
        payload_mode=mode,
        declared_sha256=declared,
        seed_signature=provided.lower(),
        signing_key=key,
        scope=scope,
        amz_date=amz_date,
        presigned=True,
        signed_headers=signed,
        **(_streaming_extras(headers) if mode.is_streaming else {}),
    )
