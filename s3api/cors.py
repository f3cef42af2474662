"""CORS for S3 buckets (pure): the CORSConfiguration document and the rule evaluation.

``parse_configuration`` validates a PutBucketCors body the way AWS S3 does
(structure first, as MalformedXML, then the values, as InvalidRequest);
``render_configuration`` writes it back for GetBucketCors; ``encode`` and
``decode`` are the stored form. ``preflight_headers`` answers an OPTIONS
request and ``response_headers`` decorates an actual request that carries an
``Origin``. Rules are tried in order and the first one that allows the
origin, the method and (for a preflight) every requested header wins.

Origins compare case-sensitively, header names case-insensitively; both may
hold one ``*`` that matches any text, including none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from xml.etree.ElementTree import Element

from s3api import xml
from s3api.errors import S3Error, S3ErrorCode

METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
MAX_RULES = 100
MAX_ID_LENGTH = 255
MAX_AGE_LIMIT = 2**31 - 1
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
NOT_ALLOWED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution "
    "of Origin, request method / Access-Control-Request-Method or "
    "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."
)
NOT_ENABLED = "CORSResponse: CORS is not enabled for this bucket."
NO_ORIGIN = "Insufficient information. Origin request header needed."

# Child element -> (field, may repeat) of one CORSRule.
_RULE_ELEMENTS = {
    "ID": ("rule_id", False),
    "AllowedOrigin": ("allowed_origins", True),
    "AllowedMethod": ("allowed_methods", True),
    "AllowedHeader": ("allowed_headers", True),
    "ExposeHeader": ("expose_headers", True),
    "MaxAgeSeconds": ("max_age", False),
}


@dataclass(frozen=True, slots=True)
class CorsRule:
    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    rule_id: str | None = None


# -- the configuration document ------------------------------------------------


def _malformed() -> S3Error:
    return S3Error(S3ErrorCode.MalformedXML)


def _invalid(message: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidRequest, message)


def _only_whitespace(text: str | None) -> bool:
    return text is None or not text.strip()


def _read_rule(elem: Element) -> CorsRule:
    """One CORSRule's values; any structural fault is MalformedXML."""
    if not _only_whitespace(elem.text):
        raise _malformed()
    values: dict[str, list[str]] = {}
    for child in elem:
        name = xml.local_name(child.tag)
        if name not in _RULE_ELEMENTS or len(child) or not _only_whitespace(child.tail):
            raise _malformed()
        field, repeats = _RULE_ELEMENTS[name]
        if not repeats and field in values:
            raise _malformed()
        values.setdefault(field, []).append(child.text or "")
    if not values.get("allowed_origins") or not values.get("allowed_methods"):
        raise _malformed()
    rule_id = values.get("rule_id", [None])[0]
    if rule_id is not None and len(rule_id) > MAX_ID_LENGTH:
        raise _malformed()
    max_age = None
    if "max_age" in values:
        raw = values["max_age"][0]
        if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_AGE_LIMIT:
            raise _malformed()
        max_age = int(raw)
    return CorsRule(
        allowed_origins=tuple(values["allowed_origins"]),
        allowed_methods=tuple(values["allowed_methods"]),
        allowed_headers=tuple(values.get("allowed_headers", ())),
        expose_headers=tuple(values.get("expose_headers", ())),
        max_age=max_age,
        rule_id=rule_id,
    )


def _check_values(rule: CorsRule) -> None:
    """The InvalidRequest checks, in AWS's order: methods, origins, headers, expose headers."""
    for method in rule.allowed_methods:
        if method not in METHODS:
            raise _invalid(
                f"Found unsupported HTTP method in CORS config. Unsupported method is {method}"
            )
    for origin in rule.allowed_origins:
        if origin.count("*") > 1:
            raise _invalid(f'AllowedOrigin "{origin}" can not have more than one wildcard.')
    for header in rule.allowed_headers:
        if header.count("*") > 1:
            raise _invalid(f'AllowedHeader "{header}" can not have more than one wildcard.')
    for header in rule.expose_headers:
        if "*" in header:
            raise _invalid(
                f'ExposeHeader "{header}" contains wildcard. '
                "We currently do not support wildcard for ExposeHeader."
            )


def parse_configuration(body: bytes) -> list[CorsRule]:
    """The rules of a PutBucketCors body, or the S3Error AWS answers for it."""
    if not body.strip():
        raise _malformed()
    root = xml.parse(body)
    if xml.local_name(root.tag) != "CORSConfiguration" or not _only_whitespace(root.text):
        raise _malformed()
    rules: list[CorsRule] = []
    for child in root:
        if xml.local_name(child.tag) != "CORSRule" or not _only_whitespace(child.tail):
            raise _malformed()
        rules.append(_read_rule(child))
    if not rules or len(rules) > MAX_RULES:
        raise _malformed()
    for rule in rules:
        _check_values(rule)
    return rules


def render_configuration(rules: Sequence[CorsRule]) -> bytes:
    """GetBucketCors's document, elements in the order S3 writes them."""
    return xml.render("CORSConfiguration", [("CORSRule", _rule_nodes(rule)) for rule in rules])


def _rule_nodes(rule: CorsRule) -> list[xml.Node]:
    nodes: list[xml.Node] = [("ID", rule.rule_id)]
    nodes += [("AllowedMethod", m) for m in rule.allowed_methods]
    nodes += [("AllowedOrigin", o) for o in rule.allowed_origins]
    nodes += [("AllowedHeader", h) for h in rule.allowed_headers]
    nodes.append(("MaxAgeSeconds", rule.max_age))
    nodes += [("ExposeHeader", h) for h in rule.expose_headers]
    return nodes


def encode(rules: Sequence[CorsRule]) -> bytes:
    return json.dumps([asdict(rule) for rule in rules], separators=(",", ":")).encode()


def decode(raw: bytes) -> list[CorsRule]:
    out = []
    for item in json.loads(raw):
        for name in ("allowed_origins", "allowed_methods", "allowed_headers", "expose_headers"):
            item[name] = tuple(item[name])
        out.append(CorsRule(**item))
    return out


# -- evaluation ---------------------------------------------------------------------


def wildcard_match(pattern: str, value: str) -> bool:
    """``pattern`` with at most one ``*`` (any text, possibly empty) against ``value``."""
    if "*" not in pattern:
        return pattern == value
    head, _, tail = pattern.partition("*")
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def _allowed_origin(rule: CorsRule, origin: str) -> str | None:
    """What Access-Control-Allow-Origin says for this rule: ``*``, the origin, or None."""
    if "*" in rule.allowed_origins:
        return "*"
    if any(wildcard_match(pattern, origin) for pattern in rule.allowed_origins):
        return origin
    return None


def _headers_allowed(rule: CorsRule, names: Sequence[str]) -> bool:
    patterns = [p.strip().lower() for p in rule.allowed_headers]
    return all(any(wildcard_match(p, name) for p in patterns) for name in names)


def match_rule(
    rules: Sequence[CorsRule], origin: str, method: str, request_headers: Sequence[str] = ()
) -> tuple[CorsRule, str] | None:
    """The first rule allowing origin, method and headers, with its Allow-Origin value."""
    for rule in rules:
        allow_origin = _allowed_origin(rule, origin)
        if allow_origin is None or method not in rule.allowed_methods:
            continue
        if _headers_allowed(rule, request_headers):
            return rule, allow_origin
    return None


def requested_header_names(value: str | None) -> list[str]:
    """Access-Control-Request-Headers as lowercase names, in the order requested."""
    if not value:
        return []
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def _rule_headers(rule: CorsRule, allow_origin: str, allow_headers: Sequence[str]) -> dict:
    headers = {
        "Access-Control-Allow-Origin": allow_origin,
        "Access-Control-Allow-Methods": ", ".join(rule.allowed_methods),
    }
    if allow_headers:
        headers["Access-Control-Allow-Headers"] = ", ".join(allow_headers)
    if rule.expose_headers:
        headers["Access-Control-Expose-Headers"] = ", ".join(rule.expose_headers)
    if rule.max_age is not None:
        headers["Access-Control-Max-Age"] = str(rule.max_age)
    if allow_origin != "*":
        headers["Access-Control-Allow-Credentials"] = "true"
    headers["Vary"] = VARY
    return headers


def _check_requested_method(method: str | None) -> None:
    """A preflight must name one of the methods CORS rules can allow."""
    if method not in METHODS:
        raise S3Error(
            S3ErrorCode.BadRequest,
            f"Invalid Access-Control-Request-Method: {'null' if method is None else method}",
        )


def forbidden(message: str, method: str | None, resource_type: str) -> S3Error:
    return S3Error(
        S3ErrorCode.AccessForbidden,
        message,
        Method=method or "OPTIONS",
        ResourceType=resource_type,
    )


def preflight_headers(
    rules: Sequence[CorsRule] | None,
    origin: str | None,
    method: str | None,
    request_headers: str | None,
    resource_type: str,
) -> dict[str, str]:
    """The headers of a 200 answer to an OPTIONS request, or the S3Error refusing it.

    ``rules`` is None when the bucket has no CORS configuration;
    ``resource_type`` is ``BUCKET`` or ``OBJECT`` (named in the 403 body).
    """
    if not origin:
        raise S3Error(S3ErrorCode.BadRequest, NO_ORIGIN)
    if rules is None:
        raise forbidden(NOT_ENABLED, method, "BUCKET")
    _check_requested_method(method)
    assert method is not None
    names = requested_header_names(request_headers)
    matched = match_rule(rules, origin, method, names)
    if matched is None:
        raise forbidden(NOT_ALLOWED, method, resource_type)
    rule, allow_origin = matched
    return _rule_headers(rule, allow_origin, names)


def response_headers(rules: Sequence[CorsRule] | None, origin: str, method: str) -> dict[str, str]:
    """CORS headers for an actual request from ``origin`` (none when no rule allows it).

    AllowedHeader plays no part here: only a preflight names request headers.
    """
    if not rules or not origin:
        return {}
    matched = match_rule(rules, origin, method)
    if matched is None:
        return {}
    rule, allow_origin = matched
    return _rule_headers(rule, allow_origin, ())
