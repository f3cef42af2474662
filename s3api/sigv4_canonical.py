"""Canonical forms of AWS Signature Version 4 as S3 computes them: pure functions, no I/O.

Everything here works on strings and bytes exactly as they were on the wire, so
it can be unit-tested against botocore's signers and AWS's published examples
without a socket. ``s3api.sigv4`` builds request verification on top of it and
``s3api.chunked`` the aws-chunked body decoder.

S3 specifics (they differ from the generic SigV4 of other AWS services):

* the canonical URI is the path URI-encoded once, never twice, and never
  normalised (no dot-segment removal, ``//`` stays ``//``): each segment is
  percent-decoded and re-encoded with only the RFC 3986 unreserved characters
  left bare, so ``%2F`` inside a segment stays ``%2F`` and ``$`` becomes ``%24``;
* the canonical query keeps every parameter, ``=`` always present, sorted by
  encoded name and then encoded value;
* header values are trimmed and runs of whitespace collapse to one space;
  a header sent several times is the comma-joined list of its trimmed values.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

# Only RFC 3986 unreserved characters (and '/' between path segments) stay bare.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~/]*")
_PLAIN_QUERY_PART = re.compile(r"[A-Za-z0-9\-._~]*")


def _wire_bytes(text: str) -> bytes:
    # Servers hand us undecodable bytes as surrogate escapes; give the bytes back.
    return text.encode("utf-8", "surrogateescape")


def uri_encode(data: bytes) -> str:
    """Percent-encode everything except A-Z a-z 0-9 - . _ ~ (uppercase hex)."""
    return quote(data, safe="")


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-value aware, read-only header view.

    Built from a mapping or from ``(name, value)`` pairs. A multidict's ``items()``
    (aiohttp's ``request.headers``) yields every occurrence, so repeated headers
    keep all their values. Lookup returns the values trimmed and joined by ``,``.
    """

    __slots__ = ("_values",)

    def __init__(self, source: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        values: dict[str, list[str]] = {}
        if isinstance(source, Headers):
            values = {name: list(vals) for name, vals in source._values.items()}
        else:
            pairs = source.items() if isinstance(source, Mapping) else source
            for name, value in pairs:
                values.setdefault(name.lower(), []).append(value)
        self._values = values

    def __getitem__(self, name: str) -> str:
        return ",".join(value.strip() for value in self._values[name.lower()])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({self._values!r})"

    def get_all(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), ()))

    def canonical_value(self, name: str) -> str:
        """Trimall each value (as botocore does), then join repeats with ','."""
        return ",".join(" ".join(value.split()) for value in self._values.get(name, ()))


def canonical_uri(raw_path: str) -> str:
    """The S3 canonical URI of a path as sent on the wire (percent-encoded, no query)."""
    if not raw_path:
        return "/"
    if _PLAIN_PATH.fullmatch(raw_path):
        return raw_path
    return "/".join(
        uri_encode(unquote_to_bytes(segment)) for segment in _wire_bytes(raw_path).split(b"/")
    )


def _requote_query_part(part: str) -> str:
    if _PLAIN_QUERY_PART.fullmatch(part):
        return part
    # Form decoding: '+' is a space; literal plus signs arrive as %2B.
    return uri_encode(unquote_to_bytes(_wire_bytes(part.replace("+", " "))))


def canonical_query(raw_query: str, *, exclude_signature: bool = False) -> str:
    """Canonical query string: decoded then re-encoded, sorted, ``=`` always present."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = _requote_query_part(name)
        if exclude_signature and name == "X-Amz-Signature":
            continue
        pairs.append((name, _requote_query_part(value)))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def verbatim_query(raw_query: str, *, exclude_signature: bool = False) -> str:
    """The query as a client that signs its wire bytes verbatim sees it (botocore does)."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if exclude_signature and name == "X-Amz-Signature":
            continue
        pairs.append((name, value))
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def canonical_headers(headers: Headers, signed_headers: Sequence[str]) -> str:
    """``name:value\\n`` for each signed header, in the order of SignedHeaders."""
    return "".join(f"{name}:{headers.canonical_value(name)}\n" for name in signed_headers)


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers_block: str,
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    return "\n".join((method, uri, query, headers_block, ";".join(signed_headers), payload_hash))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{sha256_hex(_wire_bytes(canonical))}"


def chunk_string_to_sign(amz_date: str, scope: str, previous: str, chunk_sha256: str) -> str:
    return f"{CHUNK_ALGORITHM}\n{amz_date}\n{scope}\n{previous}\n{EMPTY_SHA256}\n{chunk_sha256}"


def trailer_string_to_sign(amz_date: str, scope: str, previous: str, trailer_sha256: str) -> str:
    return f"{TRAILER_ALGORITHM}\n{amz_date}\n{scope}\n{previous}\n{trailer_sha256}"


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning for (secret, YYYYMMDD, region, service); cached, it is the hot path."""
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("utf-8"), "sha256")
    for part in (region, service, TERMINATOR):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    return key


def sign(key: bytes, text: str) -> str:
    return hmac.new(key, _wire_bytes(text), hashlib.sha256).hexdigest()


def signatures_equal(expected: str, provided: str) -> bool:
    """Constant-time comparison of two hex signatures (case-insensitive)."""
    return hmac.compare_digest(expected.encode("ascii"), _wire_bytes(provided.lower()))
