"""The pure CORS core: configuration parsing/validation, rendering, rule matching, headers."""

from __future__ import annotations

import pytest

from s3api import cors
from s3api.cors import CorsRule
from s3api.errors import S3Error

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
ORIGIN = "<AllowedOrigin>https://example.com</AllowedOrigin>"
METHOD = "<AllowedMethod>GET</AllowedMethod>"
MINIMAL = ORIGIN + METHOD


def configuration(*rules: str) -> bytes:
    inner = "".join(f"<CORSRule>{rule}</CORSRule>" for rule in rules)
    return f'<CORSConfiguration xmlns="{XMLNS}">{inner}</CORSConfiguration>'.encode()


def refused(body: bytes) -> tuple[str, str]:
    with pytest.raises(S3Error) as e:
        cors.parse_configuration(body)
    return e.value.code.name, e.value.message


def test_reads_every_element():
    body = configuration(
        "<ID>rule-1</ID><AllowedOrigin>https://example.com</AllowedOrigin>"
        "<AllowedOrigin>https://*.example.org</AllowedOrigin>"
        "<AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>"
        "<AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
        "<MaxAgeSeconds>3000</MaxAgeSeconds>",
        "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod>",
    )
    assert cors.parse_configuration(body) == [
        CorsRule(
            ("https://example.com", "https://*.example.org"),
            ("GET", "PUT"),
            ("x-amz-*",),
            ("ETag",),
            3000,
            "rule-1",
        ),
        CorsRule(("*",), ("HEAD",)),
    ]


def test_accepts_without_namespace_and_with_whitespace():
    body = (
        b"<CORSConfiguration>\n  <CORSRule>\n    <AllowedOrigin>*</AllowedOrigin>\n"
        b"    <AllowedMethod>GET</AllowedMethod>\n  </CORSRule>\n</CORSConfiguration>\n"
    )
    assert cors.parse_configuration(body) == [CorsRule(("*",), ("GET",))]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        configuration(),
        configuration(METHOD),  # no AllowedOrigin
        configuration(ORIGIN),  # no AllowedMethod
        configuration(MINIMAL + "<AllowedHeaders>*</AllowedHeaders>"),  # unknown element
        configuration(MINIMAL + "text"),
        configuration(MINIMAL + "<MaxAgeSeconds>-1</MaxAgeSeconds>"),
        configuration(MINIMAL + "<MaxAgeSeconds>1.5</MaxAgeSeconds>"),
        configuration(MINIMAL + "<MaxAgeSeconds>2147483648</MaxAgeSeconds>"),
        configuration(MINIMAL + "<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>1</MaxAgeSeconds>"),
        configuration(MINIMAL + "<ID>a</ID><ID>b</ID>"),
        configuration(MINIMAL + "<ID>" + "a" * 256 + "</ID>"),
        configuration(*[MINIMAL] * 101),
        b"<CORSRules><CORSRule>" + MINIMAL.encode() + b"</CORSRule></CORSRules>",
        configuration(f"<AllowedOrigin><Origin>*</Origin></AllowedOrigin>{METHOD}"),
    ],
)
def test_malformed_xml(body):
    assert refused(body)[0] == "MalformedXML"


@pytest.mark.parametrize(
    "rule, message",
    [
        (ORIGIN + "<AllowedMethod>PATCH</AllowedMethod>",
         "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"),
        (ORIGIN + "<AllowedMethod>get</AllowedMethod>",
         "Found unsupported HTTP method in CORS config. Unsupported method is get"),
        ("<AllowedOrigin>https://*.example.*</AllowedOrigin>" + METHOD,
         'AllowedOrigin "https://*.example.*" can not have more than one wildcard.'),
        (MINIMAL + "<AllowedHeader>x-*-*</AllowedHeader>",
         'AllowedHeader "x-*-*" can not have more than one wildcard.'),
        (MINIMAL + "<ExposeHeader>x-amz-*</ExposeHeader>",
         'ExposeHeader "x-amz-*" contains wildcard. '
         "We currently do not support wildcard for ExposeHeader."),
    ],
)
def test_invalid_values(rule, message):
    assert refused(configuration(MINIMAL, rule)) == ("InvalidRequest", message)


def test_structure_is_checked_before_values():
    body = configuration(ORIGIN + "<AllowedMethod>PATCH</AllowedMethod>", METHOD)
    assert refused(body)[0] == "MalformedXML"


def test_limits_are_accepted():
    body = configuration(*[MINIMAL + "<ID>" + "a" * 255 + "</ID>"] * 100)
    assert len(cors.parse_configuration(body)) == 100
    body = configuration(MINIMAL + "<MaxAgeSeconds>2147483647</MaxAgeSeconds>")
    assert cors.parse_configuration(body)[0].max_age == 2**31 - 1


def test_render_and_store_round_trip():
    rules = [
        CorsRule(("https://a.example", "*"), ("GET", "PUT"), ("*",), ("ETag",), 10, "r<1>"),
        CorsRule(("",), ("DELETE",)),
    ]
    rendered = cors.render_configuration(rules)
    assert rendered.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<CORSConfiguration xmlns=')
    assert b"<ID>r&lt;1&gt;</ID><AllowedMethod>GET</AllowedMethod>" in rendered
    assert cors.parse_configuration(rendered) == rules
    assert cors.decode(cors.encode(rules)) == rules


@pytest.mark.parametrize(
    "pattern, origin, matches",
    [
        ("*", "https://example.com", True),
        ("https://example.com", "https://example.com", True),
        ("https://example.com", "https://example.com:8443", False),
        ("https://example.com", "https://EXAMPLE.com", False),
        ("http://*.example.com", "http://www.example.com", True),
        ("http://*.example.com", "http://a.b.example.com", True),
        ("http://*.example.com", "http://example.com", False),
        ("http://*.example.com", "https://www.example.com", False),
        ("https://example.com:*", "https://example.com:8443", True),
        ("*suffix", "foo.suffix", True),
        ("*suffix", "foo.suffix.get", False),
        ("start*end", "startend", True),
        ("start*end", "0start12end", False),
        ("ab*ba", "aba", False),
    ],
)
def test_origin_patterns(pattern, origin, matches):
    rules = [CorsRule((pattern,), ("GET",))]
    assert (cors.match_rule(rules, origin, "GET") is not None) is matches


@pytest.mark.parametrize(
    "allowed, requested, matches",
    [
        ((), [], True),
        ((), ["content-type"], False),
        (("Content-Type",), ["content-type"], True),
        (("x-amz-*",), ["x-amz-date", "x-amz-meta-a"], True),
        (("x-amz-*",), ["x-amzn-trace-id"], False),
        (("*",), ["anything", "authorization"], True),
        (("content-type",), ["content-type", "x-amz-date"], False),
    ],
)
def test_header_patterns(allowed, requested, matches):
    rules = [CorsRule(("*",), ("GET",), allowed)]
    assert (cors.match_rule(rules, "https://a", "GET", requested) is not None) is matches


def test_first_matching_rule_wins():
    exact = CorsRule(("https://example.com",), ("GET", "PUT"), rule_id="exact")
    anyone = CorsRule(("*",), ("GET", "HEAD"), rule_id="any")
    assert cors.match_rule([exact, anyone], "https://example.com", "GET")[0].rule_id == "exact"
    assert cors.match_rule([anyone, exact], "https://example.com", "GET")[0].rule_id == "any"
    assert cors.match_rule([exact, anyone], "https://example.com", "HEAD")[0].rule_id == "any"
    assert cors.match_rule([exact, anyone], "https://example.com", "DELETE") is None


RULES = [
    CorsRule(
        ("https://example.com", "https://*.example.com"),
        ("GET", "PUT", "DELETE"),
        ("Content-Type", "x-amz-*"),
        ("ETag", "x-amz-request-id"),
        3000,
    ),
    CorsRule(("*",), ("GET", "HEAD")),
]


def test_preflight_headers():
    got = cors.preflight_headers(
        RULES, "https://app.example.com", "PUT", "Content-Type, X-Amz-Date", "OBJECT"
    )
    assert got == {
        "Access-Control-Allow-Origin": "https://app.example.com",
        "Access-Control-Allow-Methods": "GET, PUT, DELETE",
        "Access-Control-Allow-Headers": "content-type, x-amz-date",
        "Access-Control-Expose-Headers": "ETag, x-amz-request-id",
        "Access-Control-Max-Age": "3000",
        "Access-Control-Allow-Credentials": "true",
        "Vary": cors.VARY,
    }
    assert cors.preflight_headers(RULES, "https://other.org", "HEAD", None, "BUCKET") == {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, HEAD",
        "Vary": cors.VARY,
    }


@pytest.mark.parametrize(
    "rules, origin, method, headers, code, message",
    [
        (RULES, None, "GET", None, "BadRequest",
         "Insufficient information. Origin request header needed."),
        (None, "https://a", "GET", None, "AccessForbidden",
         "CORSResponse: CORS is not enabled for this bucket."),
        (RULES, "https://a", None, None, "BadRequest",
         "Invalid Access-Control-Request-Method: null"),
        (RULES, "https://a", "PATCH", None, "BadRequest",
         "Invalid Access-Control-Request-Method: PATCH"),
        (RULES, "https://other.org", "PUT", None, "AccessForbidden", cors.NOT_ALLOWED),
        (RULES, "https://example.com", "PUT", "authorization", "AccessForbidden",
         cors.NOT_ALLOWED),
    ],
)
def test_preflight_refusals(rules, origin, method, headers, code, message):
    with pytest.raises(S3Error) as e:
        cors.preflight_headers(rules, origin, method, headers, "OBJECT")
    assert (e.value.code.name, e.value.message) == (code, message)
    if code == "AccessForbidden":
        assert e.value.details["Method"] == method


def test_actual_request_headers():
    got = cors.response_headers(RULES, "https://example.com", "DELETE")
    assert got["Access-Control-Allow-Origin"] == "https://example.com"
    assert "Access-Control-Allow-Headers" not in got
    assert cors.response_headers(RULES, "https://other.org", "PUT") == {}
    assert cors.response_headers(None, "https://example.com", "GET") == {}
    assert cors.response_headers([], "https://example.com", "GET") == {}
