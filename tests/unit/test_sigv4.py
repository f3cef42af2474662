"""SigV4 verification: AWS's published examples, botocore-signed requests, and tampering."""

from __future__ import annotations

from datetime import timedelta

import pytest

from s3api import sigv4_canonical as canon
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4 import (
    Headers,
    HttpRequestView,
    PayloadMode,
    parse_authorization_header,
)
from tests.unit.sigv4_support import (
    AK,
    EMPTY,
    HOST,
    NOW,
    SECRET,
    authorization,
    raises,
    replace,
    s3_path,
    signed_view,
    verify,
    with_headers,
)

# -- AWS's published examples (sig-v4-header-based-auth, sigv4-query-string-auth) -----------


def aws_get_object() -> HttpRequestView:
    return HttpRequestView(
        "GET",
        "/test.txt",
        "",
        {
            "Host": HOST,
            "Range": "bytes=0-9",
            "x-amz-content-sha256": EMPTY,
            "x-amz-date": "20130524T000000Z",
            "Authorization": authorization(
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        },
    )


def aws_presigned(query_extra: str = "") -> HttpRequestView:
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    return HttpRequestView("GET", "/test.txt", query + query_extra, {"Host": HOST})


def test_aws_example_get_object():
    result = verify(aws_get_object())
    assert result is not None
    assert result.access_key == AK
    assert result.payload_mode is PayloadMode.SIGNED_HEX
    assert result.declared_sha256 == EMPTY
    assert result.scope == "20130524/us-east-1/s3/aws4_request"
    assert result.amz_date == "20130524T000000Z"
    assert result.region == "us-east-1"
    assert result.seed_signature.startswith("f0e8bdb8")
    assert not result.presigned
    assert "signing_key" not in repr(result)


def test_aws_example_put_object_encodes_dollar_and_uses_x_amz_date():
    view = HttpRequestView(
        "PUT",
        "/test$file.text",
        "",
        {
            "Host": HOST,
            "Date": "Fri, 24 May 2013 00:00:00 GMT",
            "x-amz-date": "20130524T000000Z",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-content-sha256": (
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
            ),
            "Authorization": authorization(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
        },
    )
    assert canon.canonical_uri("/test$file.text") == "/test%24file.text"
    result = verify(view)
    assert result.declared_sha256 == (
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    )


@pytest.mark.parametrize(
    ("query", "signature"),
    [
        ("lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ("max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ],
)
def test_aws_example_bucket_queries(query, signature):
    view = HttpRequestView(
        "GET",
        "/",
        query,
        {
            "Host": HOST,
            "x-amz-content-sha256": EMPTY,
            "x-amz-date": "20130524T000000Z",
            "Authorization": authorization("host;x-amz-content-sha256;x-amz-date", signature),
        },
    )
    assert verify(view) is not None


def test_aws_example_presigned_url():
    result = verify(aws_presigned(), NOW + timedelta(hours=23))
    assert result.presigned
    assert result.payload_mode is PayloadMode.UNSIGNED
    assert result.declared_sha256 is None


def test_aws_example_presigned_url_expired():
    error = raises(S3ErrorCode.AccessDenied, aws_presigned(), NOW + timedelta(seconds=86401))
    assert error.message == "Request has expired"
    assert error.details["X-Amz-Expires"] == "86400"
    assert error.details["Expires"] == "2013-05-25T00:00:00Z"


def test_signing_key_is_cached():
    canon.signing_key.cache_clear()
    first = canon.signing_key(SECRET, "20130524", "us-east-1", "s3")
    assert canon.signing_key(SECRET, "20130524", "us-east-1", "s3") is first
    assert canon.signing_key.cache_info().hits == 1


def test_botocore_header_auth_with_body():
    body = b"hello world"
    view = signed_view("PUT", "/bucket/obj", headers={"x-amz-meta-a": "b"}, body=body)
    result = verify(view)
    assert result.payload_mode is PayloadMode.SIGNED_HEX
    assert result.declared_sha256 == canon.sha256_hex(body)
    assert "x-amz-meta-a" in result.signed_headers


def test_botocore_date_header_instead_of_x_amz_date():
    view = signed_view(headers={"Date": "placeholder"})
    assert "x-amz-date" not in view.headers
    assert verify(view).amz_date == "20130524T000000Z"


@pytest.mark.parametrize(
    "key",
    [
        "plain.txt",
        "ключ/日本語/ファイル",
        "with space and+plus",
        "tilde~and-dash_under.dot",
        "a%2Fb literally",
        "a/b//c/../d/./e",
        "!*'();:@&=$,?#[]",
        "x" * 1024,
        "é" * 512,
        "emoji 🪣 key",
    ],
)
@pytest.mark.parametrize("presign", [False, True])
def test_botocore_keys_verify(key, presign):
    view = signed_view("GET", s3_path("bucket", key), presign=presign)
    assert verify(view, NOW + timedelta(seconds=5)).access_key == AK


def test_encoded_slash_in_key_is_kept_distinct():
    # A client that sends '/' inside a key as %2F signs %2F; it must stay %2F.
    view = signed_view("GET", "/bucket/a%2Fb")
    assert canon.canonical_uri("/bucket/a%2Fb") == "/bucket/a%2Fb"
    assert verify(view) is not None
    raises(S3ErrorCode.SignatureDoesNotMatch, replace(view, raw_path="/bucket/a/b"))


def test_lowercase_percent_escapes_are_canonicalised():
    view = signed_view("GET", "/bucket/%E2%82%AC")
    assert verify(replace(view, raw_path="/bucket/%e2%82%ac")) is not None


def test_raw_characters_signed_verbatim_are_accepted():
    # botocore signs the wire path as it is; a client that leaves ! or + bare still verifies.
    assert verify(signed_view("GET", "/bucket/a!b(c)+d")) is not None
    assert verify(signed_view("GET", "/bucket/key", "prefix=a+b&x=%7e")) is not None


def test_query_parameters_sorted_and_blank_values():
    view = signed_view("GET", "/bucket", "versions&prefix=a%20b&delimiter=%2F&max-keys=3")
    assert verify(view) is not None
    assert canon.canonical_query("b=2&a=1&a=&c") == "a=&a=1&b=2&c="


def test_wrong_secret():
    view = signed_view(secret="not-the-secret")
    error = raises(S3ErrorCode.SignatureDoesNotMatch, view)
    assert error.details["AWSAccessKeyId"] == AK
    assert "CanonicalRequest" in error.details
    assert error.details["StringToSign"].startswith("AWS4-HMAC-SHA256\n20130524T000000Z\n")


def test_unknown_access_key():
    view = signed_view()
    auth = view.headers["authorization"].replace(AK, "AKIDUNKNOWN")
    error = raises(S3ErrorCode.InvalidAccessKeyId, with_headers(view, authorization=auth))
    assert error.details["AWSAccessKeyId"] == "AKIDUNKNOWN"


@pytest.mark.parametrize("presign", [False, True])
def test_tampering_is_detected(presign):
    view = signed_view("GET", "/bucket/key", "prefix=a", {"Range": "bytes=0-9"}, presign=presign)
    assert verify(view) is not None
    tampered = [
        replace(view, raw_path="/bucket/kez"),
        replace(view, raw_path="/bucket/key/"),
        replace(view, raw_query=view.raw_query.replace("prefix=a", "prefix=b")),
        replace(view, raw_query=view.raw_query + "&extra=1"),
        replace(view, method="DELETE"),
        with_headers(view, range="bytes=0-99"),
        with_headers(view, host="evil.test"),
    ]
    for candidate in tampered:
        raises(S3ErrorCode.SignatureDoesNotMatch, candidate)


@pytest.mark.parametrize("presign", [False, True])
def test_unsigned_amz_headers_are_refused(presign):
    view = signed_view("PUT", "/bucket/key", presign=presign)
    error = raises(S3ErrorCode.AccessDenied, with_headers(view, x_amz_acl="public-read"))
    assert error.message == "There were headers present in the request which were not signed"
    assert error.details["HeadersNotSigned"] == "x-amz-acl"


def test_multi_valued_header_joined_with_commas():
    view = signed_view("GET", headers={"X-Amz-Meta-Multi": "a,b"})
    pairs = [(k, v) for k, v in view.headers.items() if k != "x-amz-meta-multi"]
    pairs += [("X-Amz-Meta-Multi", "  a "), ("x-amz-meta-multi", "b")]
    split = replace(view, headers=Headers(pairs))
    assert split.headers["x-amz-meta-multi"] == "a,b"
    assert verify(split) is not None


def test_header_whitespace_is_collapsed():
    view = signed_view(headers={"X-Amz-Meta-Spaces": "a b c"})
    assert verify(with_headers(view, x_amz_meta_spaces="  a   b\tc  ")) is not None


@pytest.mark.parametrize("delta", [timedelta(minutes=16), -timedelta(minutes=16)])
def test_clock_skew(delta):
    view = signed_view()
    error = raises(S3ErrorCode.RequestTimeTooSkewed, view, NOW + delta)
    assert error.details["MaxAllowedSkewMilliseconds"] == "900000"
    assert error.details["RequestTime"] == "20130524T000000Z"
    assert verify(view, NOW + timedelta(minutes=14)) is not None


def test_missing_date_headers():
    view = with_headers(signed_view(), x_amz_date=None)
    error = raises(S3ErrorCode.AccessDenied, view)
    assert error.message == "AWS authentication requires a valid Date or x-amz-date header"
    raises(S3ErrorCode.AccessDenied, with_headers(signed_view(), x_amz_date="yesterday"))


def test_credential_date_must_match_request_date():
    view = with_headers(signed_view(), x_amz_date="20130525T000000Z")
    error = raises(S3ErrorCode.AuthorizationHeaderMalformed, view, NOW + timedelta(days=1))
    assert "Invalid credential date" in error.message


def test_missing_or_invalid_content_sha256():
    view = signed_view()
    error = raises(S3ErrorCode.InvalidRequest, with_headers(view, x_amz_content_sha256=None))
    assert error.message == "Missing required header for this request: x-amz-content-sha256"
    error = raises(S3ErrorCode.InvalidArgument, with_headers(view, x_amz_content_sha256="abc"))
    assert error.details["ArgumentName"] == "x-amz-content-sha256"
    ecdsa = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
    raises(S3ErrorCode.NotImplemented, with_headers(view, x_amz_content_sha256=ecdsa))


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("UNSIGNED-PAYLOAD", PayloadMode.UNSIGNED),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", PayloadMode.STREAMING_SIGNED),
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", PayloadMode.STREAMING_UNSIGNED_TRAILER),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", PayloadMode.STREAMING_SIGNED_TRAILER),
        (EMPTY.upper(), PayloadMode.SIGNED_HEX),
    ],
)
def test_payload_modes(value, mode):
    headers = {"X-Amz-Decoded-Content-Length": "10", "X-Amz-Trailer": "x-amz-checksum-crc32"}
    result = verify(signed_view("PUT", headers=headers, payload_hash=value))
    assert result.payload_mode is mode
    assert mode.is_streaming is value.startswith("STREAMING-")
    if mode is PayloadMode.SIGNED_HEX:
        assert result.declared_sha256 == EMPTY
    if mode.is_streaming:
        assert result.decoded_content_length == 10
        assert result.trailer_names == ("x-amz-checksum-crc32",)


def test_anonymous_request_returns_none():
    assert verify(HttpRequestView("GET", "/bucket/key", "prefix=a", {"Host": HOST})) is None


def test_sigv2_is_refused():
    sigv2 = HttpRequestView("GET", "/b/k", "", {"Authorization": "AWS AKID:c2lnbmF0dXJl"})
    error = raises(S3ErrorCode.InvalidRequest, sigv2)
    assert "Please use AWS4-HMAC-SHA256" in error.message
    query = HttpRequestView("GET", "/b/k", "AWSAccessKeyId=A&Expires=1&Signature=x", {})
    raises(S3ErrorCode.InvalidRequest, query)


def test_unknown_algorithm():
    view = HttpRequestView("GET", "/", "", {"Authorization": "Bearer abc"})
    error = raises(S3ErrorCode.InvalidArgument, view)
    assert error.message == "Unsupported Authorization Type"
    assert error.details["ArgumentName"] == "Authorization"


def test_header_and_query_auth_together():
    presigned = signed_view(presign=True)
    header = signed_view().headers["authorization"]
    raises(S3ErrorCode.InvalidArgument, with_headers(presigned, authorization=header))


@pytest.mark.parametrize(
    "value",
    [
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=AKID/2013052/us-east-1/s3/aws4_request,"
        " SignedHeaders=host, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20131324/us-east-1/s3/aws4_request,"
        " SignedHeaders=host, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/aws4_request,"
        " SignedHeaders=host, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws5_request,"
        " SignedHeaders=host, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,"
        " SignedHeaders=host;;date, Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,"
        " SignedHeaders=host, Signature=abc, Extra=1",
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,"
        " Credential=AKID/20130524/us-east-1/s3/aws4_request, Signature=abc",
    ],
)
def test_malformed_authorization_header(value):
    with pytest.raises(S3Error) as info:
        parse_authorization_header(value)
    assert info.value.code is S3ErrorCode.AuthorizationHeaderMalformed
    assert info.value.message.startswith("The authorization header is malformed; ")


def test_parse_authorization_header():
    header = parse_authorization_header(
        "AWS4-HMAC-SHA256 Credential=AK/ID/20130524/eu-west-1/s3/aws4_request,"
        "SignedHeaders=Host;x-amz-date ,  Signature=abcd"
    )
    assert header.access_key == "AK/ID"
    assert (header.date, header.region, header.service) == ("20130524", "eu-west-1", "s3")
    assert header.signed_headers == ("host", "x-amz-date")
    assert header.signature == "abcd"
    assert header.scope == "20130524/eu-west-1/s3/aws4_request"


def test_scope_service_and_region():
    view = signed_view()
    error = raises(S3ErrorCode.AuthorizationHeaderMalformed, view, region="eu-west-1")
    assert error.details["Region"] == "eu-west-1"
    assert verify(view, region="us-east-1") is not None
    ec2 = with_headers(view, authorization=view.headers["authorization"].replace("/s3/", "/ec2/"))
    error = raises(S3ErrorCode.AuthorizationHeaderMalformed, ec2)
    assert 'incorrect service "ec2"' in error.message
    presigned = signed_view(presign=True)
    error = raises(S3ErrorCode.AuthorizationQueryParametersError, presigned, region="eu-west-1")
    assert error.message.startswith("Error parsing the X-Amz-Credential parameter; the region")
